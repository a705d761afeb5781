package postgres

import (
	"context"
)

// gcBlobs removes temporary blobs and blobs that no object row references:
// the leftovers of writes that crashed or lost a race. It runs at Open,
// before the writer starts; one process serves a cell at a time.
func (s *Store) gcBlobs(ctx context.Context) error {
	live := map[string]bool{}
	rows, err := s.pool.Query(ctx, `SELECT blob FROM objects WHERE blob IS NOT NULL`)
	if err != nil {
		return wrap("gc blobs", err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return wrap("gc blobs", err)
		}
		live[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap("gc blobs", err)
	}
	return s.blobs.GC(live)
}
