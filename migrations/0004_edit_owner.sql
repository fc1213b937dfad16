-- Which process computes a running edit, so an edit whose process died (killed, crashed, power
-- lost) is marked as interrupted instead of showing as running forever.
ALTER TABLE edits ADD COLUMN owner_pid INTEGER;
