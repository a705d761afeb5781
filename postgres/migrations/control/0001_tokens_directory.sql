-- Tokens by the hash of their secret, and the subject directory (keyed
-- hashes of subject ids to home cells).
CREATE TABLE tokens(id TEXT PRIMARY KEY, hash BYTEA NOT NULL UNIQUE, role TEXT NOT NULL,
  jurisdiction TEXT NOT NULL, subject TEXT NOT NULL, created BIGINT NOT NULL);
CREATE TABLE directory(ref BYTEA PRIMARY KEY, cell TEXT NOT NULL);
