package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"domicile"
)

// Backup is the answer to POST /v1/cells/{cell}/backup: where the backup
// of a cell's store was written and what it holds.
type Backup struct {
	Cell string `json:"cell"`
	// Dir is the backup's directory on the cell's machine.
	Dir   string    `json:"dir"`
	Taken time.Time `json:"taken"`
	// Files and Bytes count what the backup holds (object contents
	// included; on the same file system they are hard links).
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// LogSize is the cell's log size the backup covers: every event
	// below it is in the backup.
	LogSize int64 `json:"log_size"`
	TookMS  int64 `json:"took_ms"`
}

// backupName is the layout of a backup directory's name: its time, UTC,
// to the second, sortable.
const backupName = "20060102T150405Z"

// backup writes a consistent copy of a cell's store, while it serves,
// into Config.BackupDir/<cell>/<time> (admin only). Custody is not in it.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if a.Role != domicile.RoleAdmin {
		return domicile.Errorf(domicile.EForbidden, "backups are taken with admin tokens")
	}
	c := s.router.CellByID(r.PathValue("cell"))
	if c == nil {
		return domicile.Errorf(domicile.ENotFound, "no cell %q", truncate(r.PathValue("cell"), 32))
	}
	if s.cfg.BackupDir == "" {
		return domicile.Errorf(domicile.ENotImplemented, "this process takes no backups (serve --backup-dir)")
	}
	// One backup at a time: they are rare, heavy on the disk, and the
	// check that a directory is free holds only so.
	s.backupMu.Lock()
	defer s.backupMu.Unlock()
	start := s.cfg.Now()
	parent := filepath.Join(s.cfg.BackupDir, c.ID())
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	dir := filepath.Join(parent, start.UTC().Format(backupName))
	if _, err := os.Lstat(dir); err == nil {
		return domicile.Errorf(domicile.EConflict, "a backup of cell %s was taken this second (%s); take the next one a second later", c.ID(), filepath.Base(dir))
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st, err := c.Backup(r.Context(), dir)
	if err != nil {
		// What a failed backup left is not a backup.
		os.RemoveAll(dir)
		return err
	}
	took := s.cfg.Now().Sub(start)
	s.log.InfoContext(r.Context(), "backup taken", slog.String("cell", c.ID()), slog.String("dir", dir),
		slog.Int("files", st.Files), slog.Int64("bytes", st.Bytes), slog.Int64("log_size", st.LogSize),
		slog.Duration("took", took), slog.String("by", a.TokenID))
	writeJSON(w, http.StatusCreated, Backup{Cell: c.ID(), Dir: dir, Taken: start.UTC(), Files: st.Files, Bytes: st.Bytes, LogSize: st.LogSize, TookMS: took.Milliseconds()})
	return nil
}
