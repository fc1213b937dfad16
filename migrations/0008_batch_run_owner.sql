-- Which process works on a running batch run, so a run whose process died (killed, crashed,
-- power lost) is marked as interrupted when the history is next opened instead of showing as
-- running forever; starting it again with the same file and settings continues it.
ALTER TABLE batch_runs ADD COLUMN owner_pid INTEGER;
