#!/usr/bin/env node
// Builds native/ (the graft_native addon) offline: headers come from the llama.cpp source
// that node-llama-cpp ships as a git bundle, libraries are node-llama-cpp's prebuilt ones,
// so that the process holds a single copy of ggml. One module is linked per variant found
// (cpu, cuda, vulkan); the runtime loads the one matching the variant node-llama-cpp picked.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const nativeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rootDir = path.resolve(nativeDir, '..');
const buildDir = path.join(nativeDir, 'build');
const outputDir = path.join(buildDir, 'Release');
const llamaSrcDir = path.join(buildDir, 'llama.cpp');
const REQUIRED_NODE_LLAMA_CPP = '3.21.1';
const force = process.argv.includes('--force');
const require = createRequire(path.join(rootDir, 'package.json'));

function fail(message) {
  console.error(`\ngraft native build failed: ${message}\n`);
  process.exit(1);
}

function has(command, args = ['--version']) {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.status === 0;
}

function checkToolchain() {
  const missing = [];
  if (!has('cmake')) missing.push('cmake');
  if (!has('c++') && !has('g++')) missing.push('g++');
  if (!has('git')) missing.push('git');
  const generator = has('ninja') ? 'Ninja' : has('make') ? 'Unix Makefiles' : null;
  if (!generator) missing.push('make');
  if (missing.length) {
    fail(`missing build tools: ${missing.join(', ')}.\n` +
      `On Debian/Ubuntu install them with:  sudo apt-get install -y ${missing.join(' ')}\n` +
      `then run:  npm run build:native`);
  }
  return generator;
}

function nodeLlamaCppDir() {
  const pkgPath = path.join(rootDir, 'node_modules', 'node-llama-cpp', 'package.json');
  if (!fs.existsSync(pkgPath)) fail('node-llama-cpp is not installed; run `npm install` first');
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  if (pkg.version !== REQUIRED_NODE_LLAMA_CPP) {
    fail(`node-llama-cpp ${pkg.version} is installed but Graft is pinned to ${REQUIRED_NODE_LLAMA_CPP}; run \`npm ci\``);
  }
  return path.dirname(pkgPath);
}

function git(args, cwd) {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function prepareLlamaSource(nlcDir, commit) {
  const bundle = path.join(nlcDir, 'llama', 'gitRelease.bundle');
  if (!fs.existsSync(bundle)) fail(`the llama.cpp source bundle is missing: ${bundle}`);
  let head = null;
  if (fs.existsSync(path.join(llamaSrcDir, '.git'))) {
    try { head = git(['rev-parse', 'HEAD'], llamaSrcDir); } catch { head = null; }
  }
  if (head !== commit) {
    fs.rmSync(llamaSrcDir, { recursive: true, force: true });
    fs.mkdirSync(buildDir, { recursive: true });
    execFileSync('git', ['clone', '--quiet', '--no-checkout', bundle, llamaSrcDir], { stdio: 'inherit' });
    execFileSync('git', ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', 'HEAD'], { cwd: llamaSrcDir, stdio: 'inherit' });
    head = git(['rev-parse', 'HEAD'], llamaSrcDir);
  }
  if (head !== commit) {
    fail(`node-llama-cpp's bundled llama.cpp is at ${head}, but native/LLAMA_CPP_COMMIT pins ${commit}`);
  }
}

function nodeIncludeDir() {
  const candidates = [
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
    path.join(process.env.HOME ?? '', '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ].filter(Boolean);
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
  if (!found) fail(`Node's headers (node_api.h) were not found in: ${candidates.join(', ')}`);
  return found;
}

// Prebuilt binaries: @node-llama-cpp/<platform>-<arch>[-gpu]/bins/<name>/ holding libggml-base
// and a libllama*.so. The folder suffix names the variant.
function findVariants() {
  const prefix = `${process.platform}-${process.arch}`;
  const scopeDir = path.join(rootDir, 'node_modules', '@node-llama-cpp');
  const variants = [];
  if (!fs.existsSync(scopeDir)) return variants;
  for (const pkg of fs.readdirSync(scopeDir).sort()) {
    if (pkg !== prefix && !pkg.startsWith(`${prefix}-`)) continue;
    const binsRoot = path.join(scopeDir, pkg, 'bins');
    if (!fs.existsSync(binsRoot)) continue;
    for (const name of fs.readdirSync(binsRoot)) {
      const dir = path.join(binsRoot, name);
      const files = fs.existsSync(dir) && fs.statSync(dir).isDirectory() ? fs.readdirSync(dir) : [];
      const base = files.find((f) => f === 'libggml-base.so');
      const ggml = files.find((f) => /^libggml(\.[a-z]+)?\.v[\d.]+\.so$/.test(f));
      const llama = files.find((f) => /^libllama(\.[a-z]+)?\.v[\d.]+\.so$/.test(f));
      if (!base || !ggml || !llama) continue;
      const variant = name === prefix ? 'cpu' : name.slice(prefix.length + 1);
      if (variants.some((v) => v.variant === variant)) continue;
      variants.push({ variant, dir, libs: [base, ggml, llama].map((f) => path.join(dir, f)) });
    }
  }
  return variants;
}

function sourceHash(extra) {
  const h = createHash('sha256');
  const srcDir = path.join(nativeDir, 'src');
  for (const f of fs.readdirSync(srcDir).sort()) h.update(f).update(fs.readFileSync(path.join(srcDir, f)));
  h.update(fs.readFileSync(path.join(nativeDir, 'CMakeLists.txt')));
  h.update(fs.readFileSync(fileURLToPath(import.meta.url)));
  h.update(JSON.stringify(extra));
  return h.digest('hex');
}

function main() {
  if (process.platform !== 'linux') {
    fail(`building native/ is only scripted for Linux so far (this is ${process.platform}-${process.arch})`);
  }
  const generator = checkToolchain();
  const nlcDir = nodeLlamaCppDir();
  const commit = fs.readFileSync(path.join(nativeDir, 'LLAMA_CPP_COMMIT'), 'utf8').trim();
  const variants = findVariants();
  if (!variants.length) {
    fail(`no prebuilt node-llama-cpp binaries for ${process.platform}-${process.arch} were found under node_modules/@node-llama-cpp`);
  }
  const config = { commit, variants, node: process.versions.node, generator };
  const hash = sourceHash(config);
  const manifestPath = path.join(outputDir, 'manifest.json');
  if (!force && fs.existsSync(manifestPath)) {
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    const allBuilt = manifest.variants?.every((v) => fs.existsSync(path.join(outputDir, v.file)));
    if (manifest.hash === hash && allBuilt) {
      console.log('graft native: up to date');
      return;
    }
  }
  const started = Date.now();
  prepareLlamaSource(nlcDir, commit);
  const napiInclude = path.dirname(require.resolve('node-addon-api/package.json'));
  const cmakeBuild = path.join(buildDir, 'cmake');
  fs.mkdirSync(outputDir, { recursive: true });
  const variantSpecs = variants.map((v) =>
    `${v.variant}=${v.libs.join(',')}=$ORIGIN/${path.relative(outputDir, v.dir)}`);
  const configure = spawnSync('cmake', [
    '-S', nativeDir, '-B', cmakeBuild, '-G', generator,
    '-DCMAKE_BUILD_TYPE=Release',
    `-DGRAFT_NODE_INCLUDE=${nodeIncludeDir()}`,
    `-DGRAFT_NAPI_INCLUDE=${napiInclude}`,
    `-DGRAFT_LLAMA_SRC=${llamaSrcDir}`,
    `-DGRAFT_LLAMA_COMMIT=${commit}`,
    `-DGRAFT_OUTPUT_DIR=${outputDir}`,
    `-DGRAFT_VARIANTS=${variantSpecs.join(';')}`,
  ], { stdio: 'inherit' });
  if (configure.status !== 0) fail('cmake configure failed (see above)');
  const jobs = String(Math.max(1, Number(process.env.GRAFT_BUILD_JOBS) || 2));
  const build = spawnSync('cmake', ['--build', cmakeBuild, '--parallel', jobs], { stdio: 'inherit' });
  if (build.status !== 0) fail('compilation failed (see above)');
  const manifest = {
    hash, commit, builtAt: new Date().toISOString(),
    variants: variants.map((v) => ({ variant: v.variant, file: `graft_native-${v.variant}.node`, libDir: v.dir })),
  };
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  console.log(`graft native: built ${variants.map((v) => v.variant).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main();
