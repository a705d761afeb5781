-- Wrapped data keys: the custody records that erasure destroys.
CREATE TABLE keys(
  ref BYTEA NOT NULL, gen BIGINT NOT NULL, kek_version BIGINT NOT NULL, wrapped BYTEA NOT NULL,
  fingerprint TEXT NOT NULL, created BIGINT NOT NULL, PRIMARY KEY(ref, gen));
CREATE INDEX keys_version ON keys(kek_version, ref);
