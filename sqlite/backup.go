package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"domicile"
)

var _ domicile.Backuper = (*Store)(nil)

// Backup writes a consistent copy of the store, while it serves, into dir
// (which must not exist): the database as of one transaction's snapshot
// (VACUUM INTO, which also leaves out the pages erasures freed) in
// dir/cell.db, and the blobs in dir/blobs (blobdir.Dir.Backup). The log's
// hash tiles are not copied: Open rebuilds them from the events.
func (s *Store) Backup(ctx context.Context, dir string) (domicile.BackupStats, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return domicile.BackupStats{}, errClosed
	}
	st, err := s.blobs.Backup(ctx, dir, func() (domicile.BackupStats, error) {
		// Every event committed now is in the snapshot, taken after.
		st := domicile.BackupStats{LogSize: s.committed.Load()}
		db := filepath.Join(dir, CellFile)
		if _, err := s.cdb.ExecContext(ctx, `VACUUM INTO ?`, db); err != nil {
			return st, err
		}
		fi, err := syncFile(db)
		if err != nil {
			return st, err
		}
		st.Files, st.Bytes = 1, fi.Size()
		return st, nil
	})
	if err != nil {
		return st, fmt.Errorf("sqlite: %w", err)
	}
	return st, nil
}

// syncFile makes the file at path durable and returns its description.
func syncFile(path string) (os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return f.Stat()
}
