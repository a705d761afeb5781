package sqlite

import (
	"context"
	"fmt"
)

// gcBlobs removes temporary blobs and blobs that no object row references:
// the leftovers of writes that crashed or lost a race.
func (s *Store) gcBlobs(ctx context.Context) error {
	live := map[string]bool{}
	rows, err := s.wdb.QueryContext(ctx, `SELECT blob FROM objects WHERE blob IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("sqlite: gc blobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return fmt.Errorf("sqlite: gc blobs: %w", err)
		}
		live[k] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: gc blobs: %w", err)
	}
	return s.blobs.GC(live)
}
