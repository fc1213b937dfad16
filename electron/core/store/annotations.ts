// A researcher's notes and tags on recorded edits (tables from 0001_history.sql).
import type Database from 'better-sqlite3';

export interface NoteRecord {
  id: number;
  body: string;
  createdAt: string;
}

function requireEdit(db: Database.Database, editId: number): void {
  if (!db.prepare('SELECT 1 FROM edits WHERE id = ?').get(editId)) throw new Error(`edit ${editId} is not in the history`);
}

export function addNote(db: Database.Database, editId: number, body: string): number {
  if (body.trim() === '') throw new Error('the note is empty');
  requireEdit(db, editId);
  return Number(db.prepare('INSERT INTO notes (edit_id, body) VALUES (?, ?)').run(editId, body).lastInsertRowid);
}

export function notesOf(db: Database.Database, editId: number): NoteRecord[] {
  return (db.prepare('SELECT id, body, created_at FROM notes WHERE edit_id = ? ORDER BY id').all(editId) as { id: number; body: string; created_at: string }[])
    .map((r) => ({ id: r.id, body: r.body, createdAt: r.created_at }));
}

/** Replaces the edit's tags (trimmed, blanks and duplicates dropped) in one transaction. */
export function setTags(db: Database.Database, editId: number, tags: string[]): string[] {
  const clean = [...new Set(tags.map((t) => t.trim()).filter((t) => t !== ''))];
  db.transaction(() => {
    requireEdit(db, editId);
    db.prepare('DELETE FROM tags WHERE edit_id = ?').run(editId);
    const insert = db.prepare('INSERT INTO tags (edit_id, tag) VALUES (?, ?)');
    for (const t of clean) insert.run(editId, t);
  })();
  return clean;
}

/** Tags sorted by name (the table keeps no order). */
export function tagsOf(db: Database.Database, editId: number): string[] {
  return (db.prepare('SELECT tag FROM tags WHERE edit_id = ? ORDER BY tag').all(editId) as { tag: string }[]).map((r) => r.tag);
}
