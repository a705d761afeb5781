-- Migrations of subjects between cells (doc/migration.md), beside the
-- directory whose entries they switch, so that a subject's switch of home
-- and its state commit in one transaction.
CREATE TABLE migrations(id TEXT PRIMARY KEY, plan BYTEA NOT NULL, state TEXT NOT NULL,
  created BIGINT NOT NULL, started BIGINT, finished BIGINT, options BYTEA, report BYTEA);
CREATE TABLE migration_subjects(plan TEXT NOT NULL, key BYTEA NOT NULL, ref BYTEA NOT NULL,
  src TEXT NOT NULL, dst TEXT NOT NULL, jurisdiction TEXT NOT NULL, state TEXT NOT NULL,
  src_digest TEXT NOT NULL, dst_digest TEXT NOT NULL, out_index BIGINT NOT NULL, in_index BIGINT NOT NULL,
  records INT NOT NULL, objects INT NOT NULL, bytes BIGINT NOT NULL, transfer TEXT NOT NULL,
  switched BIGINT, updated BIGINT NOT NULL, PRIMARY KEY(plan, key));
-- The homes of one cell, by key: a plan lists them.
CREATE INDEX directory_cell ON directory(cell, ref);
