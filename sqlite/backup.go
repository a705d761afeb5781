package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"domicile"
)

var _ domicile.Backuper = (*Store)(nil)

// Backup writes a consistent copy of the store, while it serves, into dir
// (which must not exist): the database as of one transaction's snapshot
// (VACUUM INTO, which also leaves out the pages erasures freed) in
// dir/cell.db, and the blobs in dir/blobs (see blobdir.Dir.CopyTo), with
// blob removals held from before the snapshot until the blobs are
// copied. The log's hash tiles are not copied: Open rebuilds them from
// the events.
func (s *Store) Backup(ctx context.Context, dir string) (domicile.BackupStats, error) {
	var st domicile.BackupStats
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return st, errClosed
	}
	if _, err := os.Lstat(dir); err == nil {
		return st, fmt.Errorf("sqlite: backup: %s exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return st, fmt.Errorf("sqlite: backup: %w", err)
	}
	release := s.blobs.HoldRemovals()
	defer release()
	// Every event committed now is in the snapshot, which is taken after.
	st.LogSize = s.committed.Load()
	db := filepath.Join(dir, CellFile)
	if _, err := s.cdb.ExecContext(ctx, `VACUUM INTO ?`, db); err != nil {
		return st, fmt.Errorf("sqlite: backup: %w", err)
	}
	fi, err := syncFile(db)
	if err != nil {
		return st, fmt.Errorf("sqlite: backup: %w", err)
	}
	n, b, err := s.blobs.CopyTo(ctx, filepath.Join(dir, "blobs"))
	if err != nil {
		return st, fmt.Errorf("sqlite: backup: %w", err)
	}
	st.Files, st.Bytes = n+1, b+fi.Size()
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
