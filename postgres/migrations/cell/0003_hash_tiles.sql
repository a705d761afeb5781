-- The log's Merkle hashes as tiles (internal/hashtile): one row per
-- complete tile of 256 leaves, written in the transaction of the events
-- that complete it, instead of a row per stored hash. The store builds
-- the tiles of a log written before this migration from its events when
-- it opens.
CREATE TABLE tiles(level INT NOT NULL, n BIGINT NOT NULL, tile BYTEA NOT NULL, PRIMARY KEY(level, n));
DROP TABLE hashes;
