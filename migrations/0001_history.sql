-- Graft's history: models, workspaces (a base model plus an ordered stack of edits), edits
-- with everything needed to rebuild any export (request, settings, prefixes, factors), the
-- statistics files they used, exports, notes and tags. Timestamps are UTC ISO-8601.

CREATE TABLE models (
  id          INTEGER PRIMARY KEY,
  path        TEXT NOT NULL,
  sha256      TEXT NOT NULL UNIQUE,
  arch        TEXT NOT NULL,
  n_layer     INTEGER NOT NULL,
  n_embd      INTEGER NOT NULL,
  n_ff        INTEGER NOT NULL,
  n_vocab     INTEGER NOT NULL,
  file_type   TEXT,
  size_bytes  INTEGER NOT NULL,
  added_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE workspaces (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  model_id    INTEGER NOT NULL REFERENCES models(id),
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE edits (
  id              INTEGER PRIMARY KEY,
  workspace_id    INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  position        INTEGER NOT NULL,                 -- order in the workspace's stack
  method          TEXT NOT NULL,                    -- rome, memit, …
  request_json    TEXT NOT NULL,
  layers_json     TEXT NOT NULL,
  hparams_json    TEXT NOT NULL,
  templates_json  TEXT NOT NULL DEFAULT '[]',       -- context prefixes, as used
  seed            INTEGER NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
  enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  computed_on     TEXT NOT NULL DEFAULT '[]',       -- ids of the enabled edits it was computed on
  timings_json    TEXT,
  preflight_json  TEXT,
  metrics_json    TEXT,
  error           TEXT,
  adapter_path    TEXT,
  created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (workspace_id, position)
);

-- ΔW = U·Vᵀ of one layer, the exact record every export is rebuilt from:
-- u is rank × n_embd and v is rank × n_ff little-endian float32, vector by vector.
CREATE TABLE edit_factors (
  edit_id  INTEGER NOT NULL REFERENCES edits(id) ON DELETE CASCADE,
  layer    INTEGER NOT NULL,
  rank     INTEGER NOT NULL CHECK (rank > 0),
  n_embd   INTEGER NOT NULL,
  n_ff     INTEGER NOT NULL,
  u        BLOB NOT NULL CHECK (length(u) = 4 * rank * n_embd),
  v        BLOB NOT NULL CHECK (length(v) = 4 * rank * n_ff),
  PRIMARY KEY (edit_id, layer)
);

CREATE TABLE statistics_files (
  id             INTEGER PRIMARY KEY,
  model_id       INTEGER NOT NULL REFERENCES models(id),
  layer          INTEGER NOT NULL,
  corpus_sha256  TEXT NOT NULL,
  token_count    INTEGER NOT NULL,
  context_size   INTEGER NOT NULL,
  path           TEXT NOT NULL,
  created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (model_id, layer, corpus_sha256, token_count, context_size)
);

CREATE TABLE edit_statistics (
  edit_id        INTEGER NOT NULL REFERENCES edits(id) ON DELETE CASCADE,
  statistics_id  INTEGER NOT NULL REFERENCES statistics_files(id),
  PRIMARY KEY (edit_id, statistics_id)
);

CREATE TABLE exports (
  id                 INTEGER PRIMARY KEY,
  workspace_id       INTEGER NOT NULL REFERENCES workspaces(id),
  kind               TEXT NOT NULL CHECK (kind IN ('lora', 'gguf', 'log', 'card')),
  path               TEXT NOT NULL,
  sha256             TEXT,
  verified           INTEGER CHECK (verified IN (0, 1)),
  verification_json  TEXT,
  created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE export_edits (
  export_id  INTEGER NOT NULL REFERENCES exports(id) ON DELETE CASCADE,
  edit_id    INTEGER NOT NULL REFERENCES edits(id),
  PRIMARY KEY (export_id, edit_id)
);

CREATE TABLE notes (
  id            INTEGER PRIMARY KEY,
  workspace_id  INTEGER REFERENCES workspaces(id) ON DELETE CASCADE,
  edit_id       INTEGER REFERENCES edits(id) ON DELETE CASCADE,
  body          TEXT NOT NULL,
  created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  CHECK ((workspace_id IS NULL) <> (edit_id IS NULL))
);

CREATE TABLE tags (
  edit_id  INTEGER NOT NULL REFERENCES edits(id) ON DELETE CASCADE,
  tag      TEXT NOT NULL CHECK (length(trim(tag)) > 0),
  PRIMARY KEY (edit_id, tag)
);

CREATE INDEX edits_by_workspace ON edits (workspace_id, position);
