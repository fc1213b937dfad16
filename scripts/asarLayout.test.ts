// The layout checker against small archives written here in the asar format (the real
// archive needs electron-builder, which pack:check runs where it is installed).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { demoModelProblems, layoutProblems, readAsar, readAsarFile, type AsarEntry } from './asarLayout.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-asar-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Writes `files` (path → text; null: unpacked beside the archive) as NAME.asar. */
function writeAsar(name: string, files: Record<string, string | null>): string {
  const root: AsarEntry = { files: {} };
  const data: Buffer[] = [];
  let offset = 0;
  const file = path.join(dir, `${name}.asar`);
  for (const [p, text] of Object.entries(files)) {
    const parts = p.split('/');
    let node = root;
    for (const part of parts.slice(0, -1)) node = (node.files![part] ??= { files: {} });
    const bytes = Buffer.from(text ?? 'unpacked');
    if (text === null) {
      node.files![parts.at(-1)!] = { size: bytes.length, unpacked: true };
      fs.mkdirSync(path.join(`${file}.unpacked`, ...parts.slice(0, -1)), { recursive: true });
      fs.writeFileSync(path.join(`${file}.unpacked`, ...parts), bytes);
    } else {
      node.files![parts.at(-1)!] = { size: bytes.length, offset: String(offset) };
      data.push(bytes);
      offset += bytes.length;
    }
  }
  const json = Buffer.from(JSON.stringify(root));
  const payload = Buffer.alloc(4 + json.length + ((4 - (json.length % 4)) % 4));
  payload.writeUInt32LE(json.length, 0);
  json.copy(payload, 4);
  const header = Buffer.concat([Buffer.alloc(4), payload]);
  header.writeUInt32LE(payload.length, 0);
  const size = Buffer.alloc(8);
  size.writeUInt32LE(4, 0);
  size.writeUInt32LE(header.length, 4);
  fs.writeFileSync(file, Buffer.concat([size, header, ...data]));
  return file;
}

const migrations = { '0001_first.sql': 'CREATE TABLE t (x TEXT); -- “quoted”\n' };
const good: Record<string, string | null> = {
  'package.json': '{"name":"graft"}',
  'out/main/index.js': `const m = { "../../../migrations/0001_first.sql": ${JSON.stringify(migrations['0001_first.sql'])} };`,
  'out/preload/index.cjs': '',
  'out/renderer/index.html': '<script type="module" src="./assets/index.js"></script>',
  'native/build/Release/graft_native-cpu.node': null,
  'node_modules/better-sqlite3/package.json': '{}',
  'node_modules/better-sqlite3/build/Release/better_sqlite3.node': null,
  'node_modules/node-llama-cpp/package.json': '{}',
  'node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.so': null,
};

test('a good layout has no problems, and packed and unpacked files read back', () => {
  const archive = readAsar(writeAsar('good', good));
  assert.deepEqual(layoutProblems(archive, { migrations, platform: 'linux-x64' }), []);
  assert.equal(readAsarFile(archive, 'package.json').toString(), '{"name":"graft"}');
  assert.equal(readAsarFile(archive, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node').toString(), 'unpacked');
  assert.equal(archive.files.get('native/build/Release/graft_native-cpu.node')?.unpacked, true);
});

test('models, packed native code, other platforms, missing files and migrations are reported', () => {
  const bad = { ...good };
  bad['models/tiny.gguf'] = 'GGUF';
  bad['node_modules/better-sqlite3/build/Release/better_sqlite3.node'] = 'packed';
  bad['node_modules/@node-llama-cpp/mac-arm64-metal/bins/mac-arm64-metal/libllama.dylib'] = null;
  bad['out/main/index.js'] = 'no migrations here';
  delete bad['out/preload/index.cjs'];
  const problems = layoutProblems(readAsar(writeAsar('bad', bad)), { migrations, platform: 'linux-x64' });
  assert.deepEqual(problems.sort(), [
    'model or statistics file packaged: models/tiny.gguf',
    'source or data folder packaged: models/tiny.gguf',
    'native code inside the archive (cannot be loaded from there): node_modules/better-sqlite3/build/Release/better_sqlite3.node',
    "another platform's node-llama-cpp binary packaged: node_modules/@node-llama-cpp/mac-arm64-metal/bins/mac-arm64-metal/libllama.dylib",
    'missing: out/preload/index.cjs',
    'out/main/index.js does not carry migration 0001_first.sql',
  ].sort());
});

test('the demo model beside the archive: missing files and a GGUF that is not one are reported', () => {
  const resources = path.join(dir, 'resources');
  fs.mkdirSync(path.join(resources, 'demo-model'), { recursive: true });
  const required = ['demo.gguf', 'ground-truth.json'];
  fs.writeFileSync(path.join(resources, 'demo-model', 'demo.gguf'), Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(12)]));
  fs.writeFileSync(path.join(resources, 'demo-model', 'ground-truth.json'), '{}');
  assert.deepEqual(demoModelProblems(resources, required), []);
  fs.writeFileSync(path.join(resources, 'demo-model', 'demo.gguf'), 'version https://git-lfs.github.com/spec/v1\n');
  fs.rmSync(path.join(resources, 'demo-model', 'ground-truth.json'));
  assert.deepEqual(demoModelProblems(resources, required), [
    'not a GGUF file (a Git LFS pointer?): demo-model/demo.gguf',
    'missing beside the archive: demo-model/ground-truth.json',
  ]);
});
