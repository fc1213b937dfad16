-- Facts Graft keeps about a data folder that are neither history nor the researcher's settings,
-- e.g. that the shipped demo model was offered once (so a model the researcher removed stays
-- removed). settings.json is not used for them: writing it would freeze the machine-dependent
-- defaults of a folder that has none.
CREATE TABLE app_state (
  key         TEXT PRIMARY KEY,
  value_json  TEXT NOT NULL,
  updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
