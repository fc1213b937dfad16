// Schema migrations: the numbered SQL files in migrations/, applied in order, one transaction
// each, tracked by PRAGMA user_version. An existing database is copied before it is changed,
// and a database written by a newer Graft is refused rather than misread.
import fs from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';

import { appRoot } from '../appPaths.ts';
import { embeddedMigrationFiles } from './embeddedMigrations.ts';

/** The checkout's migrations/ (read when running from source; bundles carry their own copy). */
export const migrationsDir = path.join(appRoot, 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations in order: from `dir` when given, else the bundle's copy or migrations/. */
export function loadMigrations(dir?: string): Migration[] {
  const embedded = dir === undefined ? embeddedMigrationFiles : null;
  const folder = dir ?? migrationsDir;
  const migrations = (embedded ? Object.keys(embedded) : fs.readdirSync(folder))
    .map((file) => /^(\d{4})_([\w-]+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), name: m[2]!, sql: embedded ? embedded[m[0]]! : fs.readFileSync(path.join(folder, m[0]), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 0001, 0002, … without gaps; found ${String(m.version).padStart(4, '0')} at place ${i + 1}`);
  });
  return migrations;
}

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the database to `target` (default: the latest migration). Returns the versions
 * applied. `file` is the database's path, for the backup copy (none for a new database).
 */
export function migrate(db: Database.Database, file: string | null, options: { target?: number; migrations?: Migration[] } = {}): number[] {
  const migrations = options.migrations ?? loadMigrations();
  const latest = migrations.length;
  const target = options.target ?? latest;
  const current = schemaVersion(db);
  if (current > latest) {
    throw new Error(`the database ${file ?? ''} was written by a newer Graft (schema ${current}; this one knows up to ${latest}); update Graft instead of opening it with this version`);
  }
  if (current >= target) return [];
  if (file && current > 0) {
    const backup = `${file}.backup-v${current}`;
    if (!fs.existsSync(backup)) {
      db.pragma('wal_checkpoint(TRUNCATE)');
      fs.copyFileSync(file, `${backup}.tmp`);
      fs.renameSync(`${backup}.tmp`, backup);
    }
  }
  const applied: number[] = [];
  for (const m of migrations.slice(current, target)) {
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
    applied.push(m.version);
  }
  return applied;
}
