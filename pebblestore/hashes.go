package pebblestore

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/mod/sumdb/tlog"

	"domicile/internal/hashtile"
)

// loadTail opens the log's Merkle tiles, recomputes those a crash may
// have lost (and drops any beyond the log), and rebuilds the partial tiles
// from the last events.
func (s *Store) loadTail() (*hashtile.Tail, error) {
	tiles, err := hashtile.OpenFiles(filepath.Join(s.dir, "hashes"))
	if err != nil {
		return nil, err
	}
	s.tiles = tiles
	if err := tiles.Repair(s.size, s.leafHashes); err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	t, err := tiles.Restore(s.size, s.leafHashes)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: load log hashes: %w", err)
	}
	return t, nil
}

// leafHashes returns the record hashes of the events [from, to), which
// must all be stored.
func (s *Store) leafHashes(from, to int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, to-from)
	err := s.scan(eventKey(from), eventKey(to), func(k, v []byte) (bool, error) {
		idx := int64(beUint64(k[1:]))
		if idx != from+int64(len(out)) {
			return false, fmt.Errorf("event %d missing", from+int64(len(out)))
		}
		ev, err := decEvent(idx, v)
		if err != nil {
			return false, fmt.Errorf("event %d: %w", idx, err)
		}
		out = append(out, tlog.RecordHash(ev.Leaf))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if int64(len(out)) != to-from {
		return nil, fmt.Errorf("events %d-%d: %d found", from, to, len(out))
	}
	return out, nil
}

// ReadHashes returns stored Merkle hashes (tlog.StoredHashIndex order) of
// durable events: from the partial tiles, a bounded cache of stored tiles,
// or the tile files, one read per tile.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	limit := tlog.StoredHashIndex(0, s.committed.Load())
	for _, id := range indexes {
		if id >= limit {
			return nil, fmt.Errorf("pebblestore: read hashes: hash %d is beyond the committed log", id)
		}
	}
	hs, err := s.tail.Read(indexes, s.tiles.View)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: read hashes: %w", err)
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

// CheckDatabase runs Pebble's own consistency check (DB.CheckLevels: every
// level's keys in order, no overlapping tables, every block readable and
// its checksum right). It returns the problem found, or "" when the
// database is sound.
func (s *Store) CheckDatabase(ctx context.Context) (string, error) {
	err := s.db.CheckLevels(&pebble.CheckLevelsStats{})
	// The check read every block through the cache: return what that
	// left free in the C allocator (see releaseMalloc).
	releaseMalloc(true)
	if err != nil {
		return err.Error(), nil
	}
	return "", nil
}

// RebuildHashes recomputes every Merkle tile of the log from the events,
// replacing the tile files, and rebuilds the partial tiles. Commits wait
// while it runs; readers asking for a hash meanwhile may get an error. A
// cell calls it on open, before it serves, when the tiles disagree with
// the events (tlog.Check).
func (s *Store) RebuildHashes(ctx context.Context) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if err := s.tiles.Rebuild(s.size, s.leafHashes); err != nil {
		return fmt.Errorf("pebblestore: rebuild tiles: %w", err)
	}
	t, err := s.tiles.Restore(s.size, s.leafHashes)
	if err != nil {
		return fmt.Errorf("pebblestore: rebuild tiles: %w", err)
	}
	s.tail.Reset(t)
	return nil
}
