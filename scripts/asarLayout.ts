// Reads an app.asar's header and checks the packaged layout Graft needs at run time (used by
// `npm run pack:check`). The archive starts with two Chromium pickles: the first holds the
// size of the second, whose payload is a length-prefixed JSON tree of the files; file data
// follows, and entries moved out by asarUnpack carry `unpacked: true` instead of an offset.
import fs from 'node:fs';
import path from 'node:path';

export interface AsarEntry {
  size?: number;
  offset?: string;
  unpacked?: boolean;
  link?: string;
  files?: Record<string, AsarEntry>;
}

export interface AsarFile {
  /** Slash-separated path inside the archive. */
  path: string;
  size: number;
  unpacked: boolean;
  offset: number | null;
}

export interface AsarArchive {
  file: string;
  /** Where file data starts (offsets in the header are relative to it). */
  dataStart: number;
  files: Map<string, AsarFile>;
}

export function readAsar(file: string): AsarArchive {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(16);
    if (fs.readSync(fd, head, 0, 16, 0) !== 16) throw new Error(`${file} is too short to be an asar archive`);
    const headerPickleSize = head.readUInt32LE(4);
    const jsonSize = head.readUInt32LE(12);
    const json = Buffer.alloc(jsonSize);
    fs.readSync(fd, json, 0, jsonSize, 16);
    const root = JSON.parse(json.toString('utf8')) as AsarEntry;
    const files = new Map<string, AsarFile>();
    const walk = (entry: AsarEntry, prefix: string) => {
      for (const [name, child] of Object.entries(entry.files ?? {})) {
        const p = prefix ? `${prefix}/${name}` : name;
        if (child.files) walk(child, p);
        else if (child.link === undefined) {
          files.set(p, { path: p, size: child.size ?? 0, unpacked: child.unpacked === true, offset: child.offset === undefined ? null : Number(child.offset) });
        }
      }
    };
    walk(root, '');
    return { file, dataStart: 8 + headerPickleSize, files };
  } finally {
    fs.closeSync(fd);
  }
}

/** A packed file's bytes, or the unpacked copy's beside the archive. */
export function readAsarFile(archive: AsarArchive, p: string): Buffer {
  const f = archive.files.get(p);
  if (!f) throw new Error(`${p} is not in ${archive.file}`);
  if (f.unpacked) return fs.readFileSync(path.join(`${archive.file}.unpacked`, ...p.split('/')));
  const out = Buffer.alloc(f.size);
  const fd = fs.openSync(archive.file, 'r');
  try {
    fs.readSync(fd, out, 0, f.size, archive.dataStart + f.offset!);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

export interface LayoutExpectations {
  /** name → SQL of every migration the bundle must carry (migrations/ is not shipped). */
  migrations: Record<string, string>;
  /** node-llama-cpp platform prefix of this build, e.g. 'linux-x64'. */
  platform: string;
}

/** Everything wrong with the archive's layout (empty when it is as Graft needs it). */
export function layoutProblems(archive: AsarArchive, expect: LayoutExpectations): string[] {
  const problems: string[] = [];
  const all = [...archive.files.values()];
  const unpackedDir = `${archive.file}.unpacked`;
  for (const f of all) {
    if (/\.(gguf|safetensors|moments)$/i.test(f.path)) problems.push(`model or statistics file packaged: ${f.path}`);
    if (/^(models|statistics|e2e|migrations|electron|renderer|bench|scratch)\//.test(f.path)) problems.push(`source or data folder packaged: ${f.path}`);
    if (/^native\/build\/(llama\.cpp|cmake)\//.test(f.path)) problems.push(`native build tree packaged: ${f.path}`);
    const nativeCode = f.path.endsWith('.node') || /^node_modules\/(@node-llama-cpp\/[^/]+\/bins|node-llama-cpp\/bins)\//.test(f.path);
    if (nativeCode && !f.unpacked) problems.push(`native code inside the archive (cannot be loaded from there): ${f.path}`);
    if (f.unpacked && !fs.existsSync(path.join(unpackedDir, ...f.path.split('/')))) problems.push(`marked unpacked but missing from app.asar.unpacked: ${f.path}`);
    const bins = /^node_modules\/(?:@node-llama-cpp\/([^/]+)\/bins|node-llama-cpp\/bins\/([^/]+))\//.exec(f.path);
    const binPlatform = bins && (bins[1] ?? bins[2]!);
    if (binPlatform && !binPlatform.startsWith(expect.platform)) problems.push(`another platform's node-llama-cpp binary packaged: ${f.path}`);
  }
  for (const required of ['package.json', 'out/main/index.js', 'out/preload/index.cjs', 'out/renderer/index.html', 'node_modules/better-sqlite3/package.json', 'node_modules/node-llama-cpp/package.json']) {
    if (!archive.files.has(required)) problems.push(`missing: ${required}`);
  }
  if (!all.some((f) => /^native\/build\/Release\/graft_native-[\w-]+\.node$/.test(f.path))) problems.push('missing: native/build/Release/graft_native-*.node');
  if (!all.some((f) => f.path.startsWith('node_modules/better-sqlite3/') && f.path.endsWith('.node'))) problems.push("missing: better-sqlite3's .node binary");
  if (!all.some((f) => f.path.startsWith(`node_modules/@node-llama-cpp/${expect.platform}`) || f.path.startsWith(`node_modules/node-llama-cpp/bins/${expect.platform}`))) {
    problems.push(`missing: node-llama-cpp's ${expect.platform} binaries`);
  }
  // The bundle embeds each migration's text (electron/core/store/embeddedMigrations.ts).
  if (archive.files.has('out/main/index.js')) {
    const bundle = readAsarFile(archive, 'out/main/index.js').toString('utf8');
    for (const [name, sql] of Object.entries(expect.migrations)) {
      if (!bundle.includes(JSON.stringify(sql))) problems.push(`out/main/index.js does not carry migration ${name}`);
    }
  }
  return problems;
}

/**
 * What is wrong with the demo model beside the archive (resources/demo-model, electron-builder's
 * extraResources), where shippedDemoModelDir() looks for it: each file present, and a GGUF that
 * is one (a Git LFS pointer or an empty file would make every install start without it).
 */
export function demoModelProblems(resourcesDir: string, required: readonly string[]): string[] {
  const problems: string[] = [];
  for (const name of required) {
    const file = path.join(resourcesDir, 'demo-model', name);
    if (!fs.existsSync(file)) {
      problems.push(`missing beside the archive: demo-model/${name}`);
      continue;
    }
    if (name.endsWith('.gguf')) {
      const magic = Buffer.alloc(4);
      const fd = fs.openSync(file, 'r');
      try {
        fs.readSync(fd, magic, 0, 4, 0);
      } finally {
        fs.closeSync(fd);
      }
      if (magic.toString('latin1') !== 'GGUF') problems.push(`not a GGUF file (a Git LFS pointer?): demo-model/${name}`);
    }
  }
  return problems;
}
