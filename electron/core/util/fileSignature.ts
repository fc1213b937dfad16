// A file's identity and state without reading it: size, mtime, ctime, inode and device. Any
// write moves ctime (which no user can set back) and a replacement changes the inode, so an
// unchanged signature means unchanged bytes.
import fs from 'node:fs';

export function statSignature(file: string): string {
  const s = fs.statSync(file, { bigint: true });
  return [s.size, s.mtimeNs, s.ctimeNs, s.ino, s.dev].join(':');
}
