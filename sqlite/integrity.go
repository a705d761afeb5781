package sqlite

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// maxQuickCheckLines bounds the problems quick_check reports.
const maxQuickCheckLines = 20

// CheckDatabase runs SQLite's PRAGMA quick_check on the cell database: it
// reads every page and checks the b-trees' structure and the records'
// format (not that indexes match their tables, which integrity_check
// adds at several times the cost). It returns the problems found, one a
// line, or "" when the database is sound.
func (s *Store) CheckDatabase(ctx context.Context) (string, error) {
	rows, err := s.rdb.QueryContext(ctx, fmt.Sprintf(`PRAGMA quick_check(%d)`, maxQuickCheckLines))
	if err != nil {
		// A database damaged enough that the check cannot start is
		// reported as a problem, not as a failure to check.
		if isCorrupt(err) {
			return err.Error(), nil
		}
		return "", fmt.Errorf("sqlite: quick_check: %w", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return "", fmt.Errorf("sqlite: quick_check: %w", err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		if isCorrupt(err) {
			return err.Error(), nil
		}
		return "", fmt.Errorf("sqlite: quick_check: %w", err)
	}
	if len(lines) == 1 && lines[0] == "ok" {
		return "", nil
	}
	if len(lines) == 0 {
		return "quick_check returned nothing", nil
	}
	return strings.Join(lines, "\n"), nil
}

// isCorrupt reports whether err is SQLite's "database disk image is
// malformed" (SQLITE_CORRUPT) or "file is not a database" (SQLITE_NOTADB).
func isCorrupt(err error) bool {
	m := err.Error()
	return strings.Contains(m, "malformed") || strings.Contains(m, "not a database") || strings.Contains(m, "SQLITE_CORRUPT") || strings.Contains(m, "SQLITE_NOTADB")
}

// RebuildHashes recomputes every Merkle tile of the log from the events,
// replacing the tile files, and rebuilds the writer's partial tiles. It
// runs on the writer, between commits; readers asking for a hash while it
// runs may get an error. A cell calls it on open, before it serves, when
// the tiles disagree with the events (tlog.Check).
func (s *Store) RebuildHashes(ctx context.Context) error {
	return s.gc.Do(ctx, func() error {
		leaves := func(from, to int64) ([]tlog.Hash, error) { return s.leafHashes(ctx, from, to) }
		if err := s.tiles.Rebuild(s.size, leaves); err != nil {
			return fmt.Errorf("sqlite: rebuild tiles: %w", err)
		}
		t, err := s.tiles.Restore(s.size, leaves)
		if err != nil {
			return fmt.Errorf("sqlite: rebuild tiles: %w", err)
		}
		s.tail.Reset(t)
		return nil
	})
}
