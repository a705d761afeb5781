package sqlite

import (
	"context"
	"fmt"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"

	"domicile/internal/hashtile"
)

// loadTail opens the log's Merkle tiles, recomputes those a crash may
// have lost (or all of them, for a database written before tiles existed,
// which kept a row per hash, dropped here), and rebuilds the writer's
// partial tiles from the last events.
func (s *Store) loadTail(ctx context.Context) (*hashtile.Tail, error) {
	tiles, err := hashtile.OpenFiles(filepath.Join(filepath.Dir(s.path), "hashes"))
	if err != nil {
		return nil, err
	}
	s.tiles = tiles
	leaves := func(from, to int64) ([]tlog.Hash, error) { return s.leafHashes(ctx, from, to) }
	if err := tiles.Repair(s.size, leaves); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if _, err := s.wdb.ExecContext(ctx, `DROP TABLE IF EXISTS hashes`); err != nil {
		return nil, fmt.Errorf("sqlite: drop old hash rows: %w", err)
	}
	t, err := tiles.Restore(s.size, leaves)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load log hashes: %w", err)
	}
	s.committed.Store(s.size)
	return t, nil
}

// leafHashes returns the record hashes of the events [from, to).
func (s *Store) leafHashes(ctx context.Context, from, to int64) ([]tlog.Hash, error) {
	rows, err := s.wdb.QueryContext(ctx, `SELECT idx, leaf FROM events WHERE idx>=? AND idx<? ORDER BY idx`, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]tlog.Hash, 0, to-from)
	for rows.Next() {
		var idx int64
		var leaf []byte
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, err
		}
		if idx != from+int64(len(out)) {
			return nil, fmt.Errorf("event %d missing", from+int64(len(out)))
		}
		out = append(out, tlog.RecordHash(leaf))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if int64(len(out)) != to-from {
		return nil, fmt.Errorf("events %d-%d: %d found", from, to, len(out))
	}
	return out, nil
}

// ReadHashes returns stored Merkle hashes (tlog.StoredHashIndex order) of
// committed events: from the writer's partial tiles, a bounded cache of
// stored tiles, or the tile files, one read per tile.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	limit := tlog.StoredHashIndex(0, s.committed.Load())
	for _, id := range indexes {
		if id >= limit {
			return nil, fmt.Errorf("sqlite: read hashes: hash %d is beyond the committed log", id)
		}
	}
	hs, err := s.tail.Read(indexes, s.tiles.View)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read hashes: %w", err)
	}
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out, nil
}

// CachesHashes reports that the store keeps in memory the hashes worth
// keeping (its partial tiles and the tiles above level 0), so a
// transparency log over it needs no cache of its own.
func (s *Store) CachesHashes() bool { return true }
