-- sha256 of files Graft reads again and again (base models, corpora), remembered with the
-- stat signature they had when hashed: size, mtime, ctime, inode and device. ctime cannot be
-- set back by a user, so any change to the file changes the signature and forces a rehash.
CREATE TABLE file_hashes (
  path       TEXT PRIMARY KEY,
  signature  TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  hashed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
