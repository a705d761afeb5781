-- Token lifecycle: expiry, revocation, notes, and the hash-chained
-- control log of every mint, rotation and revocation (doc/tokens.md);
-- the directory keeps each registration's reference.
ALTER TABLE directory ADD COLUMN reg BYTEA;
ALTER TABLE tokens ADD COLUMN revoked BIGINT;
ALTER TABLE tokens ADD COLUMN expires BIGINT;
ALTER TABLE tokens ADD COLUMN note TEXT NOT NULL DEFAULT '';
CREATE TABLE control_log(seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, action TEXT NOT NULL,
  token TEXT NOT NULL, role TEXT NOT NULL, jurisdiction TEXT NOT NULL, expires BIGINT, replaces TEXT NOT NULL,
  count INT NOT NULL, actor TEXT NOT NULL, prev BYTEA NOT NULL, hash BYTEA NOT NULL);
CREATE INDEX control_log_revocations ON control_log(seq) WHERE action <> 'mint';
-- Its one row's lock serialises appends across connections and processes.
CREATE TABLE control_head(id INT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash BYTEA NOT NULL);
INSERT INTO control_head(id, seq, hash) VALUES(1, 0, '');
