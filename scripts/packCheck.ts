// `npm run pack:check`: packages the app unpacked (electron-builder's `dir` target for Linux)
// offline, against a stand-in Electron folder, and checks the archive's layout
// (scripts/asarLayout.ts). `npm run pack:check -- --asar PATH` checks an existing app.asar
// instead (e.g. one built in CI with a real Electron).
//
// Why the stand-in works (app-notes §0.4, §6): electron-builder copies the Electron folder and
// writes resources/app.asar into it; a real binary is only needed for the fuses (which look
// for a sentinel in it), so they are left out of this check's config, and native modules are
// not rebuilt (npmRebuild: false, as in electron-builder.yml).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { parse, stringify } from 'yaml';

import { appRoot } from '../electron/core/appPaths.ts';
import { demoModelFiles } from '../electron/core/demo/demoModel.ts';
import { demoModelProblems, layoutProblems, readAsar } from './asarLayout.ts';

// The part of electron-builder's API used here, typed locally: the package may be absent,
// and the check must then say so instead of failing to compile.
interface ElectronBuilder {
  Arch: { x64: number };
  Platform: { LINUX: { createTarget(type: string, ...archs: number[]): unknown } };
  build(options: { targets: unknown; config: string; projectDir: string; publish: 'never' }): Promise<string[]>;
}

const { values } = parseArgs({ options: { asar: { type: 'string' }, platform: { type: 'string' } } });
const workDir = path.join(appRoot, '.pack-check');

function fail(message: string): never {
  console.error(`pack:check: ${message}`);
  process.exit(1);
}

function migrationTexts(): Record<string, string> {
  const dir = path.join(appRoot, 'migrations');
  return Object.fromEntries(fs.readdirSync(dir).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
}

async function packageUnpacked(): Promise<string> {
  let builder: ElectronBuilder;
  const name = 'electron-builder';
  try {
    // resolved from the project first, so a missing package is reported as such
    createRequire(path.join(appRoot, 'package.json')).resolve(name);
    builder = await import(name) as ElectronBuilder;
  } catch (error) {
    fail(`electron-builder is not installed here (${(error as Error).message.split('\n')[0]}), so the app cannot be packaged and nothing was checked.\n`
      + 'Add it with `npm install --save-dev electron-builder@26` (its @electron/rebuild dependency declares Node >= 22.12; this is Node '
      + `${process.versions.node}), or check an archive built elsewhere with \`npm run pack:check -- --asar path/to/app.asar\`.`);
  }
  const build = spawnSync('npx', ['electron-vite', 'build', '--logLevel', 'warn'], { cwd: appRoot, stdio: 'inherit' });
  if (build.status !== 0) fail('`npx electron-vite build` failed');

  fs.rmSync(workDir, { recursive: true, force: true });
  const stub = path.join(workDir, 'electron-stub');
  fs.mkdirSync(stub, { recursive: true });
  // No resources/*.asar in the stand-in: electron-builder would hash it for the integrity fuse and fail.
  fs.writeFileSync(path.join(stub, 'electron'), '#!/bin/sh\necho "stand-in Electron for pack:check" >&2\nexit 1\n', { mode: 0o755 });
  const config = parse(fs.readFileSync(path.join(appRoot, 'electron-builder.yml'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(stub, 'version'), String(config.electronVersion ?? '45.5.0'));
  delete config.electronFuses;
  Object.assign(config, {
    electronDist: stub, npmRebuild: false, electronVersion: config.electronVersion ?? '45.5.0',
    directories: { ...(config.directories as object), output: path.join(workDir, 'release') },
  });
  const configFile = path.join(workDir, 'electron-builder.yml');
  fs.writeFileSync(configFile, stringify(config));
  await builder.build({ targets: builder.Platform.LINUX.createTarget('dir', builder.Arch.x64), config: configFile, projectDir: appRoot, publish: 'never' });
  return path.join(workDir, 'release', 'linux-unpacked', 'resources', 'app.asar');
}

const asarFile = values.asar ? path.resolve(values.asar) : await packageUnpacked();
// node-llama-cpp's name for the packaged platform: this check builds linux-x64; --platform for another archive
const platform = values.platform ?? (values.asar ? `${({ darwin: 'mac', win32: 'win' } as Record<string, string>)[process.platform] ?? process.platform}-${process.arch}` : 'linux-x64');
if (!fs.existsSync(asarFile)) fail(`${asarFile} does not exist`);
const archive = readAsar(asarFile);
// the backend needs the model and its ground truth; the other files are the record of its training
const problems = [...layoutProblems(archive, { migrations: migrationTexts(), platform }), ...demoModelProblems(path.dirname(asarFile), [demoModelFiles.f32, demoModelFiles.groundTruth])];
const unpacked = [...archive.files.values()].filter((f) => f.unpacked).length;
console.log(`pack:check: ${asarFile}: ${archive.files.size} files, ${unpacked} unpacked`);
if (problems.length > 0) fail(`${problems.length} layout problem(s):\n  ${problems.join('\n  ')}`);
console.log('pack:check: layout ok (no models or statistics, native code unpacked, main/preload/renderer present, migrations embedded, demo model beside the archive)');
