// Where Graft's own files are at run time. The same backend code runs from three layouts:
//   - from source (tsx: CLI, tests, web mode): this module is electron/core/appPaths.ts;
//   - bundled by electron-vite: all of main is one file, out/main/index.js;
//   - packaged by electron-builder: that bundle inside resources/app.asar, with native code
//     unpacked beside it into resources/app.asar.unpacked (native code cannot load from an asar).
// A path computed as "N folders up from this source file" is right in only one of them, so
// the root is found by looking for the package.json that all three keep at their top.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The first folder at or above `start` that holds a package.json. */
export function findAppRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    // Electron's fs reads inside app.asar, so this also finds the archive's own package.json.
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json at or above ${start}: Graft's files are not where they should be`);
  }
}

/** The checkout's root, out/main's parent, or resources/app.asar. */
export const appRoot = findAppRoot(path.dirname(fileURLToPath(import.meta.url)));

/**
 * The real file behind a path inside app.asar that electron-builder's asarUnpack moved to
 * app.asar.unpacked. Electron redirects reads of unpacked files, but a native module's own
 * dependencies (RUNPATH $ORIGIN/…) are resolved by the system loader, which knows nothing of
 * the archive, so the module is loaded from its real place.
 */
export function unpackedPath(p: string): string {
  const parts = p.split(path.sep);
  const i = parts.lastIndexOf('app.asar');
  if (i < 0) return p;
  parts[i] = 'app.asar.unpacked';
  return parts.join(path.sep);
}
