-- The cell's data and its log. Strings that must order as Go orders them
-- (kinds, ids, names) are BYTEA: its comparison is bytewise on
-- PostgreSQL and CockroachDB alike, whatever the database's collation.
CREATE TABLE subjects(
  ref BYTEA PRIMARY KEY, jurisdiction TEXT NOT NULL, created BIGINT NOT NULL, key_gen BIGINT NOT NULL);
CREATE TABLE records(
  ref BYTEA NOT NULL, kind BYTEA NOT NULL, id BYTEA NOT NULL, version BIGINT NOT NULL,
  body BYTEA, fields TEXT[] NOT NULL, updated BIGINT NOT NULL,
  PRIMARY KEY(ref, kind, id));
CREATE TABLE objects(
  ref BYTEA NOT NULL, name BYTEA NOT NULL, version BIGINT NOT NULL, content_type TEXT NOT NULL,
  size BIGINT NOT NULL, sha256 TEXT NOT NULL, blob TEXT, key_gen BIGINT NOT NULL, updated BIGINT NOT NULL,
  PRIMARY KEY(ref, name));
CREATE TABLE events(
  idx BIGINT PRIMARY KEY, ref BYTEA, time BIGINT NOT NULL,
  leaf BYTEA NOT NULL, committed BYTEA, salt BYTEA);
CREATE INDEX events_ref ON events(ref, idx) WHERE ref IS NOT NULL;
CREATE TABLE hashes(id BIGINT PRIMARY KEY, hash BYTEA NOT NULL);
CREATE TABLE checkpoints(size BIGINT PRIMARY KEY, note BYTEA NOT NULL);
CREATE TABLE meta(k TEXT PRIMARY KEY, v BYTEA NOT NULL);
