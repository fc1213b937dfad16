-- Collapse watch (G5): each run of the probes on a set of enabled edits, with the verdict, the
-- numbers behind it and the thresholds used. The base model's run (edit_set '[]') for a probe
-- configuration is computed once and reused as the baseline.
CREATE TABLE probe_runs (
  id             INTEGER PRIMARY KEY,
  model_id       INTEGER NOT NULL REFERENCES models(id),
  workspace_id   INTEGER REFERENCES workspaces(id) ON DELETE CASCADE,
  edit_id        INTEGER REFERENCES edits(id) ON DELETE CASCADE,  -- the edit this run judged, if any
  edit_set       TEXT NOT NULL,                                   -- JSON ids of the enabled edits measured
  config_sha256  TEXT NOT NULL,                                   -- probe sets, corpus and options
  config_json    TEXT NOT NULL,
  results_json   TEXT NOT NULL,
  verdict        TEXT CHECK (verdict IN ('ok', 'degraded', 'collapsed')),
  verdict_json   TEXT,                                            -- reasons, numbers, thresholds
  auto_disabled  INTEGER NOT NULL DEFAULT 0 CHECK (auto_disabled IN (0, 1)),
  seconds        REAL,
  created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX probe_runs_by_config ON probe_runs (model_id, config_sha256, edit_set);
CREATE INDEX probe_runs_by_edit ON probe_runs (edit_id);
