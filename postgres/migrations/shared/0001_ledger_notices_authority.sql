-- The deployment-wide stores that every process of a deployment shares
-- (doc/postgres.md): the transfer ledger, the change notices and the
-- authority requests. Subjects appear by reference only, never by id.

-- The transfer ledger: each distinct count (its id the first 8 bytes of
-- the SHA-256 of its key, assigned by the store), the references counted
-- in it, the transfer records, the headroom warnings given, the
-- mechanisms held and subjects' consents.
CREATE TABLE counts(id BIGINT PRIMARY KEY, entity TEXT NOT NULL, year INT NOT NULL, source TEXT NOT NULL,
  class TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL, n BIGINT NOT NULL,
  UNIQUE(entity, year, source, class, dim, value));
CREATE TABLE members(count BIGINT NOT NULL, ref BYTEA NOT NULL, PRIMARY KEY(count, ref));
CREATE TABLE transfers(id TEXT PRIMARY KEY, time BIGINT NOT NULL, body BYTEA NOT NULL);
CREATE INDEX transfers_time ON transfers(time, id);
CREATE TABLE warnings(entity TEXT NOT NULL, year INT NOT NULL, fact TEXT NOT NULL, threshold BIGINT NOT NULL,
  percent INT NOT NULL, PRIMARY KEY(entity, year, fact, threshold, percent));
CREATE TABLE mechanisms(id TEXT PRIMARY KEY, body BYTEA NOT NULL);
CREATE TABLE consents(ref BYTEA NOT NULL, kind TEXT NOT NULL, version TEXT NOT NULL, granted BOOLEAN NOT NULL,
  time BIGINT NOT NULL, PRIMARY KEY(ref, kind));

-- Change plans, their notices' delivery and acknowledgement, and the
-- changes that took effect, numbered in order under applied_head's lock.
CREATE TABLE plans(id TEXT PRIMARY KEY, created BIGINT NOT NULL, doc BYTEA NOT NULL);
CREATE TABLE notices(id TEXT PRIMARY KEY, plan TEXT NOT NULL, ref TEXT NOT NULL, cell TEXT NOT NULL,
  created BIGINT NOT NULL, doc BYTEA NOT NULL, attempts INT NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
  delivered BIGINT, acknowledged BIGINT);
CREATE INDEX notices_ref ON notices(ref, created, id);
CREATE INDEX notices_plan ON notices(plan, id);
CREATE TABLE applied(seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, cell TEXT NOT NULL, field TEXT NOT NULL,
  before TEXT NOT NULL, after TEXT NOT NULL);
CREATE TABLE applied_head(id INT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
INSERT INTO applied_head(id, seq) VALUES(1, 0);

-- Authority requests.
CREATE TABLE requests(id TEXT PRIMARY KEY, received BIGINT NOT NULL, doc BYTEA NOT NULL);
CREATE INDEX requests_received ON requests(received, id);

-- The rows whose locks serialise the transfer decisions of an entity on
-- CockroachDB, which has no advisory locks (PostgreSQL uses
-- pg_advisory_lock instead).
CREATE TABLE entity_locks(entity TEXT PRIMARY KEY);
