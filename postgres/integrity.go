package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
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
	var count, next, hashes int64
	var cp *int64
	err := s.pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM events), (SELECT COALESCE(MAX(idx)+1, 0) FROM events),
		(SELECT COUNT(*) FROM hashes), (SELECT MAX(size) FROM checkpoints)`).Scan(&count, &next, &hashes, &cp)
	if err != nil {
		return "", wrap("check", err)
	}
	if count != next {
		problems = append(problems, fmt.Sprintf("events: %d rows but indexes up to %d: some are missing", count, next-1))
	}
	if want := tlog.StoredHashCount(next); hashes != want {
		problems = append(problems, fmt.Sprintf("hashes: %d rows, a log of %d leaves stores %d", hashes, next, want))
	}
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
			WHERE n.nspname = $1 AND t.relname IN ('events','hashes','checkpoints') AND a.amname = 'btree' ORDER BY c.relname`, s.schema)
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

// RebuildHashes replaces every stored Merkle hash by one recomputed from
// the events, in one transaction on the writer's connection, between
// groups; the writer then reloads its state. A cell calls it on open,
// before it serves, when the hashes disagree with the events
// (tlog.Check).
func (s *Store) RebuildHashes(ctx context.Context) error {
	return s.gc.Do(ctx, func() error {
		s.stale = true
		if err := s.resync(ctx); err != nil {
			return err
		}
		err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM hashes`); err != nil {
				return err
			}
			var frontier [64]tlog.Hash
			for start := int64(0); start < s.size; start += rebuildChunk {
				end := min(start+rebuildChunk, s.size)
				rows, err := tx.Query(ctx, `SELECT leaf FROM events WHERE idx >= $1 AND idx < $2 ORDER BY idx`, start, end)
				if err != nil {
					return err
				}
				leaves, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
				if err != nil {
					return err
				}
				if int64(len(leaves)) != end-start {
					return fmt.Errorf("events [%d, %d): %d found", start, end, len(leaves))
				}
				var ids []int64
				var hs [][]byte
				for k, l := range leaves {
					i := start + int64(k)
					h := tlog.RecordHash(l)
					ids, hs = append(ids, tlog.StoredHashIndex(0, i)), append(hs, bytesOf(h))
					level := 0
					for idx := i; idx&1 == 1; idx >>= 1 {
						h = tlog.NodeHash(frontier[level], h)
						level++
						ids, hs = append(ids, tlog.StoredHashIndex(level, idx>>1)), append(hs, bytesOf(h))
					}
					frontier[level] = h
				}
				if _, err := tx.Exec(ctx, `INSERT INTO hashes(id, hash) SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[])`, ids, hs); err != nil {
					return err
				}
			}
			return nil
		})
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

// bytesOf returns a copy of h's bytes: each stored hash needs its own
// slice, as the loop's h changes.
func bytesOf(h tlog.Hash) []byte { return append([]byte(nil), h[:]...) }
