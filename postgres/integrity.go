package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CheckDatabase is PostgreSQL's counterpart of SQLite's quick_check,
// cheap enough for every open: the events table must hold exactly the
// indexes 0 to n-1 (its count equals its largest index plus one), there
// must be exactly the stored hashes a log of n leaves has, and no
// checkpoint may sign more events than the table holds. When the amcheck
// extension is installed in the database (CREATE EXTENSION amcheck; the
// store never installs it), the B-tree indexes of the events, hashes and
// checkpoints tables are verified with bt_index_check, which takes only
// an AccessShareLock. It returns the problems found, one a line.
func (s *Store) CheckDatabase(ctx context.Context) (string, error) {
	var problems []string
	var count, next int64
	var cp *int64
	err := s.pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM events), (SELECT COALESCE(MAX(idx)+1, 0) FROM events),
		(SELECT MAX(size) FROM checkpoints)`).Scan(&count, &next, &cp)
	if err != nil {
		return "", wrap("check", err)
	}
	if count != next {
		problems = append(problems, fmt.Sprintf("events: %d rows but indexes up to %d: some are missing", count, next-1))
	}
	counts, err := tileCounts(ctx, s.pool)
	if err != nil {
		return "", wrap("check", err)
	}
	problems = append(problems, tileProblems(counts, next)...)
	if cp != nil && *cp > next {
		problems = append(problems, fmt.Sprintf("checkpoints: one signs %d events, the table holds %d", *cp, next))
	}
	var amcheck bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname='amcheck')`).Scan(&amcheck); err != nil {
		return "", wrap("check", err)
	}
	if amcheck {
		rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am a ON a.oid = c.relam
			WHERE n.nspname = $1 AND t.relname IN ('events','tiles','checkpoints') AND a.amname = 'btree' ORDER BY c.relname`, s.schema)
		if err != nil {
			return "", wrap("check", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return "", wrap("check", err)
		}
		for _, name := range names {
			if _, err := s.pool.Exec(ctx, `SELECT bt_index_check($1::regclass)`, pgx.Identifier{s.schema, name}.Sanitize()); err != nil {
				problems = append(problems, fmt.Sprintf("index %s: %v", name, err))
			}
		}
	}
	return strings.Join(problems, "\n"), nil
}

// rebuildChunk is how many events RebuildHashes reads at a time.
const rebuildChunk = 4096

// RebuildHashes replaces every stored Merkle tile by one recomputed from
// the events, in one transaction on the writer's connection, between
// groups; the writer then reloads its partial tiles. A cell calls it on
// open, before it serves, when the tiles disagree with the events
// (tlog.Check).
func (s *Store) RebuildHashes(ctx context.Context) error {
	return s.gc.Do(ctx, func() error {
		s.stale = true
		if err := s.resync(ctx); err != nil {
			return err
		}
		err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error { return rebuildTiles(ctx, tx, s.size) })
		s.stale = true
		if rerr := s.resync(ctx); err == nil {
			err = rerr
		}
		if err != nil {
			return wrap("rebuild hashes", err)
		}
		return nil
	})
}
