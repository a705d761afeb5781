package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"domicile"
)

var _ domicile.Backuper = (*Store)(nil)

// Backup writes a consistent copy of the store, while it serves, into dir
// (which must not exist): a Pebble checkpoint of the database (its tables
// hard-linked, its write-ahead log flushed and copied, so the copy holds
// every batch committed before it) in dir/pebble, and the blobs in
// dir/blobs (see blobdir.Dir.CopyTo), with blob removals held from before
// the checkpoint until the blobs are copied. The log's hash tiles are not
// copied: Open rebuilds them from the events.
func (s *Store) Backup(ctx context.Context, dir string) (domicile.BackupStats, error) {
	var st domicile.BackupStats
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return st, errClosed
	}
	if _, err := os.Lstat(dir); err == nil {
		return st, fmt.Errorf("pebblestore: backup: %s exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("pebblestore: backup: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return st, fmt.Errorf("pebblestore: backup: %w", err)
	}
	release := s.blobs.HoldRemovals()
	defer release()
	// Every event durable now is in the checkpoint, which is taken after.
	st.LogSize = s.committed.Load()
	if err := s.db.Checkpoint(filepath.Join(dir, DirName), pebble.WithFlushedWAL()); err != nil {
		return st, fmt.Errorf("pebblestore: backup: checkpoint: %w", err)
	}
	n, b, err := s.blobs.CopyTo(ctx, filepath.Join(dir, "blobs"))
	if err != nil {
		return st, fmt.Errorf("pebblestore: backup: %w", err)
	}
	st.Files, st.Bytes = n, b
	err = filepath.WalkDir(filepath.Join(dir, DirName), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st.Files++
		st.Bytes += fi.Size()
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("pebblestore: backup: %w", err)
	}
	return st, nil
}
