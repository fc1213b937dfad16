// Disk and database failures told in words that say what to do, for every surface (CLI, app).
// Graft's own errors already say it; Node's and SQLite's carry only a code.

const systemAdvice: Record<string, string> = {
  ENOSPC: 'no space left on the device; free some disk space and try again',
  EDQUOT: 'disk quota exceeded; free some space and try again',
  EROFS: 'the file system is read-only; choose a writable folder',
  EACCES: 'permission denied; choose a folder you can write to',
  EPERM: 'permission denied; choose a folder you can write to',
};

const sqliteAdvice: Record<string, string> = {
  SQLITE_FULL: 'the disk holding the history database is full; free some space and run again (everything saved before is kept)',
  SQLITE_READONLY: 'the history database is read-only; check the permissions of its folder or choose another with --db',
  SQLITE_CORRUPT: 'the history database is damaged; restore the backup next to it (graft.sqlite.backup-v*) or choose another with --db',
  SQLITE_NOTADB: 'the --db file is not a Graft history database',
  SQLITE_BUSY: 'the history database is busy in another Graft process; close it or wait and try again',
};

export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const first = error.message.split('\n')[0] ?? '';
  if (typeof code === 'string') {
    const sqlite = sqliteAdvice[code] ?? (code.startsWith('SQLITE_') ? sqliteAdvice[code.replace(/^(SQLITE_[A-Z]+).*$/, '$1')] : undefined);
    if (sqlite) return sqlite;
    const system = systemAdvice[code];
    const file = (error as { path?: unknown }).path;
    if (system) return typeof file === 'string' ? `cannot write ${file}: ${system}` : system;
  }
  return first;
}
