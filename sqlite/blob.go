package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"domicile"
)

// blobDir keeps blobs as files named by random keys, fanned out into 256
// directories. A blob is written under tmp/, synced, and renamed into place
// (with the directory synced) before its key is returned: a crash leaves at
// worst an unreferenced file, which gcBlobs removes at the next Open.
type blobDir struct{ root string }

func openBlobDir(root string) (*blobDir, error) {
	// Create every fan-out directory up front and sync the root, so that a
	// blob's durability depends only on syncing its own directory.
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: blobs: %w", err)
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: blobs: %w", err)
		}
	}
	if err := syncDir(root); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(root)); err != nil {
		return nil, err
	}
	return &blobDir{root: root}, nil
}

func (d *blobDir) path(key string) (string, error) {
	if len(key) != 32 || strings.Trim(key, "0123456789abcdef") != "" {
		return "", fmt.Errorf("sqlite: malformed blob key")
	}
	return filepath.Join(d.root, key[:2], key), nil
}

type blobWriter struct {
	d   *blobDir
	f   *os.File
	key string
}

// Create starts a blob in tmp/.
func (d *blobDir) Create(ctx context.Context) (domicile.BlobWriter, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	key := hex.EncodeToString(b[:])
	f, err := os.OpenFile(filepath.Join(d.root, "tmp", key), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: create blob: %w", err)
	}
	return &blobWriter{d: d, f: f, key: key}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// Commit syncs the blob and moves it into place durably.
func (w *blobWriter) Commit() (string, error) {
	tmp := w.f.Name()
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return "", fmt.Errorf("sqlite: sync blob: %w", err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("sqlite: close blob: %w", err)
	}
	dst, _ := w.d.path(w.key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("sqlite: blob dir: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("sqlite: place blob: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return w.key, nil
}

// Abort discards the blob.
func (w *blobWriter) Abort() error {
	w.f.Close()
	return os.Remove(w.f.Name())
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sqlite: sync dir: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sqlite: sync dir: %w", err)
	}
	return nil
}

type blobReader struct {
	*os.File
	size int64
}

func (r *blobReader) Size() int64 { return r.size }

// Open opens a blob for reading.
func (d *blobDir) Open(ctx context.Context, key string) (domicile.BlobReader, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open blob: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sqlite: stat blob: %w", err)
	}
	return &blobReader{File: f, size: st.Size()}, nil
}

// Remove deletes a blob; a missing blob is not an error.
func (d *blobDir) Remove(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlite: remove blob: %w", err)
	}
	return nil
}

// gcBlobs removes temporary blobs and blobs that no object row references:
// the leftovers of writes that crashed or lost a race.
func (s *Store) gcBlobs(ctx context.Context) error {
	tmp := filepath.Join(s.blobs.root, "tmp")
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		os.Remove(filepath.Join(tmp, e.Name()))
	}
	live := map[string]bool{}
	rows, err := s.wdb.QueryContext(ctx, `SELECT blob FROM objects WHERE blob IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("sqlite: gc blobs: %w", err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: gc blobs: %w", err)
		}
		live[k] = true
	}
	rows.Close()
	dirs, _ := os.ReadDir(s.blobs.root)
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "tmp" {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(s.blobs.root, d.Name()))
		for _, f := range files {
			if !live[f.Name()] {
				os.Remove(filepath.Join(s.blobs.root, d.Name(), f.Name()))
			}
		}
	}
	return nil
}
