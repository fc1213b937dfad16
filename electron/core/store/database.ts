// Opening Graft's SQLite history: WAL, foreign keys, a busy timeout, migrated to the latest
// schema, edits and batch runs orphaned by a dead process marked interrupted. The file lives in the user-data folder unless --db or GRAFT_DB names another.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import Database from 'better-sqlite3';

import { reapInterruptedBatchRuns } from './batchRuns.ts';
import { migrate } from './migrate.ts';
import { reapInterruptedEdits } from './repository.ts';

export function defaultDatabasePath(): string {
  if (process.env.GRAFT_DB) return path.resolve(process.env.GRAFT_DB);
  const base = process.platform === 'darwin' ? path.join(os.homedir(), 'Library', 'Application Support')
    : process.platform === 'win32' ? (process.env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming'))
      : (process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'));
  return path.join(base, 'Graft', 'graft.sqlite');
}

export function openDatabase(file = defaultDatabasePath()): Database.Database {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (error) {
    throw new Error(`cannot open the database ${file}: ${(error as Error).message}`);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, file);
    reapInterruptedEdits(db);
    reapInterruptedBatchRuns(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
