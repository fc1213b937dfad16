-- Batch and sequential editing (MEMIT, EMMET, AlphaEdit): a run works through a request file in
-- batches, one edit per batch, so a run stopped by a crash or a cancel is resumed by redoing only
-- the batches that have no completed edit: the database says what is done.
CREATE TABLE batch_runs (
  id               INTEGER PRIMARY KEY,
  workspace_id     INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  method           TEXT NOT NULL,
  requests_path    TEXT NOT NULL,                    -- as given; the run is identified by its sha256
  requests_sha256  TEXT NOT NULL,
  request_count    INTEGER NOT NULL CHECK (request_count > 0),
  batch_size       INTEGER NOT NULL CHECK (batch_size > 0),
  sequential       INTEGER NOT NULL CHECK (sequential IN (0, 1)),
  hparams_json     TEXT NOT NULL,                    -- canonical (sorted keys): part of the resume key
  status           TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
  error            TEXT,
  created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  finished_at      TEXT
);

CREATE INDEX batch_runs_by_key ON batch_runs (workspace_id, requests_sha256, method, batch_size, sequential);

-- An edit may now hold a whole batch: which run, which batch of it, and which requests of the file.
-- Deleting a run keeps its edits (they are in the stack on their own).
ALTER TABLE edits ADD COLUMN batch_run_id INTEGER REFERENCES batch_runs(id) ON DELETE SET NULL;
ALTER TABLE edits ADD COLUMN batch_index INTEGER CHECK (batch_index IS NULL OR batch_index >= 0);
ALTER TABLE edits ADD COLUMN request_indices_json TEXT;

-- at most one completed edit per batch, so a resumed run cannot apply a batch twice
CREATE UNIQUE INDEX edits_done_per_batch ON edits (batch_run_id, batch_index) WHERE status = 'done' AND batch_run_id IS NOT NULL;

-- The MLP keys (inputs of blk.L.ffn_down.weight) an edit was computed for: AlphaEdit projects
-- later updates away from the keys of the edits before them. count × n_ff little-endian float32.
CREATE TABLE edit_keys (
  edit_id  INTEGER NOT NULL REFERENCES edits(id) ON DELETE CASCADE,
  layer    INTEGER NOT NULL,
  count    INTEGER NOT NULL CHECK (count > 0),
  n_ff     INTEGER NOT NULL CHECK (n_ff > 0),
  keys     BLOB NOT NULL CHECK (length(keys) = 4 * count * n_ff),
  PRIMARY KEY (edit_id, layer)
);
