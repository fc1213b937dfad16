-- The curve of a batch or sequential run (`--curve`): after each batch, the efficacy of every
-- request edited so far on the stack as it then stood, mean P(new), the sentence-perplexity ratio
-- and the norm growth. A point is written as soon as its batch is measured, so a run that crashes
-- or is cancelled keeps the points of the batches it finished, a resumed run adds the rest, and
-- the app can draw the curve of a run made from the command line later.
CREATE TABLE batch_run_points (
  run_id              INTEGER NOT NULL REFERENCES batch_runs(id) ON DELETE CASCADE,
  batch_index         INTEGER NOT NULL CHECK (batch_index >= 0),
  edits               INTEGER NOT NULL CHECK (edits > 0),   -- requests edited so far
  efficacy            REAL NOT NULL,
  p_new               REAL NOT NULL,
  sentence_ppl_ratio  REAL,                                 -- null when the run measured no probes
  norm_growth         REAL,                                 -- null when no edited matrix was measured
  -- one point per batch: the measurement belongs to the stack right after that batch
  PRIMARY KEY (run_id, batch_index)
);
