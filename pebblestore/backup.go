package pebblestore

import (
	"context"
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
// dir/blobs (blobdir.Dir.Backup). The log's hash tiles are not copied:
// Open rebuilds them from the events.
func (s *Store) Backup(ctx context.Context, dir string) (domicile.BackupStats, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return domicile.BackupStats{}, errClosed
	}
	st, err := s.blobs.Backup(ctx, dir, func() (domicile.BackupStats, error) {
		// Every event durable now is in the checkpoint, taken after.
		st := domicile.BackupStats{LogSize: s.committed.Load()}
		db := filepath.Join(dir, DirName)
		if err := s.db.Checkpoint(db, pebble.WithFlushedWAL()); err != nil {
			return st, fmt.Errorf("checkpoint: %w", err)
		}
		err := filepath.WalkDir(db, func(p string, d os.DirEntry, err error) error {
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
		return st, err
	})
	if err != nil {
		return st, fmt.Errorf("pebblestore: %w", err)
	}
	return st, nil
}
