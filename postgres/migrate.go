package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// The schema of each kind of store is the sequence of its migrations:
// migrations/<set>/NNNN_name.sql, numbered from 0001 without gaps. A
// released migration never changes; a change of schema is a new file.
//
//go:embed migrations
var migrationFiles embed.FS

// A migration is one versioned SQL file of a set.
type migration struct {
	Version int64
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// migrations returns the migrations of set ("cell", "keys", "control")
// in order. It panics if the embedded files are misnamed or numbered with
// a gap: that is a build error, caught by every test that opens a store.
func migrations(set string) []migration {
	dir := path.Join("migrations", set)
	ents, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		panic("postgres: no migrations for " + set)
	}
	var ms []migration
	for _, e := range ents {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			panic("postgres: misnamed migration " + dir + "/" + e.Name())
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return int(a.Version - b.Version) })
	for i, m := range ms {
		if m.Version != int64(i+1) {
			panic(fmt.Sprintf("postgres: migrations of %s: version %d where %d was expected", set, m.Version, i+1))
		}
	}
	return ms
}

// migrationLockKey is the advisory lock that serialises the migrations
// of one schema: the first 8 bytes of SHA-256("domicile migrate " +
// schema), so that processes migrating different schemas of one server
// do not wait for each other.
func migrationLockKey(schema string) int64 {
	h := sha256.Sum256([]byte("domicile migrate " + schema))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// SchemaVersionError reports a schema that a newer binary migrated past
// what this one knows: this binary must not write to it.
type SchemaVersionError struct {
	Schema, Set string
	// Have is the schema's version, Know the last this binary has.
	Have, Know int64
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("postgres: schema %s (%s) is at version %d, and this binary knows versions up to %d: run the newer binary", e.Schema, e.Set, e.Have, e.Know)
}

// migrate creates schema if absent and applies the migrations of set
// that it lacks, up to version upTo (all when negative), on c, whose
// search_path is schema. It runs in one transaction under an advisory
// transaction lock (pg_advisory_xact_lock; on CockroachDB, which has no
// advisory locks, the row lock of the schema's row in
// public.domicile_migration_lock), so that processes starting at once
// apply each migration exactly once: the second waits for the first's
// commit, then finds the migrations recorded in schema_migrations. A
// serialization failure runs it again, up to retries times. It returns
// the versions it applied.
func migrate(ctx context.Context, c *pgx.Conn, schema, set string, crdb bool, retries int, upTo int64) ([]int64, error) {
	all := migrations(set)
	if upTo >= 0 && upTo < int64(len(all)) {
		all = all[:upTo]
	}
	if crdb {
		// The lock table lives outside the schema, which may not exist
		// yet; creating it concurrently is safe on CockroachDB.
		if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.domicile_migration_lock(schema_name TEXT PRIMARY KEY)`); err != nil {
			return nil, wrap("migrate: lock table", err)
		}
	}
	for try := 0; ; try++ {
		var applied []int64
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			applied = nil
			if crdb {
				if _, err := tx.Exec(ctx, `INSERT INTO public.domicile_migration_lock(schema_name) VALUES($1) ON CONFLICT (schema_name) DO NOTHING`, schema); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `SELECT schema_name FROM public.domicile_migration_lock WHERE schema_name=$1 FOR UPDATE`, schema); err != nil {
					return err
				}
			} else if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey(schema)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations(
				store TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, applied BIGINT NOT NULL,
				PRIMARY KEY(store, version))`); err != nil {
				return err
			}
			var have int64
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE store=$1`, set).Scan(&have); err != nil {
				return err
			}
			if know := int64(len(migrations(set))); have > know {
				return &SchemaVersionError{Schema: schema, Set: set, Have: have, Know: know}
			}
			for _, m := range all {
				if m.Version <= have {
					continue
				}
				// No arguments: the simple protocol, which runs a file of
				// several statements.
				if _, err := tx.Exec(ctx, m.SQL); err != nil {
					return fmt.Errorf("migration %s/%04d_%s: %w", set, m.Version, m.Name, err)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations(store, version, name, applied) VALUES($1,$2,$3,$4)`,
					set, m.Version, m.Name, time.Now().UnixNano()); err != nil {
					return err
				}
				applied = append(applied, m.Version)
			}
			return nil
		})
		if err == nil {
			return applied, nil
		}
		if _, ok := err.(*SchemaVersionError); ok {
			return nil, err
		}
		if !retryable(err) || try >= retries {
			return nil, wrap("migrate "+schema, err)
		}
	}
}
