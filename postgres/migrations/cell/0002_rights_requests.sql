-- Data subjects' rights requests, and the receipts of erasures (which
-- name no one).
CREATE TABLE requests(
  ref BYTEA NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
  received BIGINT NOT NULL, deadline BIGINT NOT NULL, version BIGINT NOT NULL,
  body BYTEA NOT NULL, updated BIGINT NOT NULL,
  PRIMARY KEY(ref, id));
CREATE TABLE receipts(id TEXT PRIMARY KEY, time BIGINT NOT NULL, log_index BIGINT NOT NULL, body BYTEA NOT NULL);
