// Package blobdir keeps the contents of a cell's objects as files: the
// blob store both the SQLite and the PostgreSQL cell stores use.
//
// Blobs are files named by random keys, fanned out into 256 directories. A
// blob is written under tmp/, synced, and renamed into place (with its
// directory synced) before its key is returned: a crash leaves at worst an
// unreferenced file, which GC removes at the next start. The 256
// directories are made, and the root synced, at Open, so placing a blob
// never creates a directory whose entry a crash could lose.
package blobdir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"domicile"
)

// Dir is a blob directory. It implements domicile.BlobStore and is safe
// for concurrent use.
type Dir struct {
	root string
	// rm is held for reading by each removal and for writing by a copy
	// (CopyTo), so that no blob a store's backup names goes between the
	// backup's snapshot of the rows and the copy of the blobs.
	rm sync.RWMutex
}

// Open opens (creating if needed) the blob directory root.
func Open(root string) (*Dir, error) {
	// Create every fan-out directory up front and sync the root, so that a
	// blob's durability depends only on syncing its own directory.
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("blobdir: blobs: %w", err)
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return nil, fmt.Errorf("blobdir: blobs: %w", err)
		}
	}
	if err := SyncDir(root); err != nil {
		return nil, err
	}
	if err := SyncDir(filepath.Dir(root)); err != nil {
		return nil, err
	}
	return &Dir{root: root}, nil
}

func (d *Dir) path(key string) (string, error) {
	if len(key) != 32 || strings.Trim(key, "0123456789abcdef") != "" {
		return "", fmt.Errorf("blobdir: malformed blob key")
	}
	return filepath.Join(d.root, key[:2], key), nil
}

type blobWriter struct {
	d   *Dir
	f   *os.File
	key string
}

// Create starts a blob in tmp/.
func (d *Dir) Create(ctx context.Context) (domicile.BlobWriter, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	key := hex.EncodeToString(b[:])
	f, err := os.OpenFile(filepath.Join(d.root, "tmp", key), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blobdir: create blob: %w", err)
	}
	return &blobWriter{d: d, f: f, key: key}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// Commit syncs the blob and moves it into place durably.
func (w *blobWriter) Commit() (string, error) {
	tmp := w.f.Name()
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return "", fmt.Errorf("blobdir: sync blob: %w", err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("blobdir: close blob: %w", err)
	}
	dst, _ := w.d.path(w.key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("blobdir: blob dir: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("blobdir: place blob: %w", err)
	}
	if err := SyncDir(dir); err != nil {
		return "", err
	}
	return w.key, nil
}

// Abort discards the blob.
func (w *blobWriter) Abort() error {
	w.f.Close()
	return os.Remove(w.f.Name())
}

// SyncDir fsyncs a directory, making the entries in it durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blobdir: sync dir: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blobdir: sync dir: %w", err)
	}
	return nil
}

type blobReader struct {
	*os.File
	size int64
}

func (r *blobReader) Size() int64 { return r.size }

// Open opens a blob for reading.
func (d *Dir) Open(ctx context.Context, key string) (domicile.BlobReader, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("blobdir: open blob: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobdir: stat blob: %w", err)
	}
	return &blobReader{File: f, size: st.Size()}, nil
}

// Remove deletes a blob; a missing blob is not an error.
func (d *Dir) Remove(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	d.rm.RLock()
	defer d.rm.RUnlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blobdir: remove blob: %w", err)
	}
	return nil
}

// GC removes temporary blobs, and every blob whose key live does not
// hold: the leftovers of writes that crashed or lost a race. It must run
// before the store serves, when no blob is being written.
func (d *Dir) GC(live map[string]bool) error {
	tmp := filepath.Join(d.root, "tmp")
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		os.Remove(filepath.Join(tmp, e.Name()))
	}
	dirs, err := os.ReadDir(d.root)
	if err != nil {
		return fmt.Errorf("blobdir: gc: %w", err)
	}
	for _, sub := range dirs {
		if !sub.IsDir() || sub.Name() == "tmp" {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(d.root, sub.Name()))
		for _, f := range files {
			if !live[f.Name()] {
				os.Remove(filepath.Join(d.root, sub.Name(), f.Name()))
			}
		}
	}
	return nil
}

// Backup is what the cell stores' backups share: it makes dir (which
// must not exist), holds removals (HoldRemovals), has snapshot write the
// store's own files into dir as of one moment and report them (with the
// log size they cover), and then copies the blobs into dir/blobs
// (CopyTo), so every blob the snapshot names is copied.
func (d *Dir) Backup(ctx context.Context, dir string, snapshot func() (domicile.BackupStats, error)) (domicile.BackupStats, error) {
	var st domicile.BackupStats
	if _, err := os.Lstat(dir); err == nil {
		return st, fmt.Errorf("backup: %s exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("backup: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return st, fmt.Errorf("backup: %w", err)
	}
	release := d.HoldRemovals()
	defer release()
	st, err := snapshot()
	if err != nil {
		return st, fmt.Errorf("backup: %w", err)
	}
	n, b, err := d.CopyTo(ctx, filepath.Join(dir, "blobs"))
	if err != nil {
		return st, fmt.Errorf("backup: %w", err)
	}
	st.Files += n
	st.Bytes += b
	return st, nil
}

// HoldRemovals makes removals wait until release is called: a store's
// backup holds them from before it takes its snapshot of the rows until
// CopyTo has copied the blobs, so every blob the snapshot names is copied.
// A blob written meanwhile may be copied too; the copy's store removes it
// at its first open (GC), as no row names it.
func (d *Dir) HoldRemovals() (release func()) {
	d.rm.Lock()
	return d.rm.Unlock
}

// CopyTo copies every blob (not the temporary ones) into a new blob
// directory dst, as hard links where dst is on the same file system
// (blobs are never written in place, so a link is a copy) and as synced
// copies where it is not. Call it with removals held (HoldRemovals). It
// returns the number of blobs and their bytes.
func (d *Dir) CopyTo(ctx context.Context, dst string) (files int, bytes int64, err error) {
	if _, err := Open(dst); err != nil {
		return 0, 0, err
	}
	for i := 0; i < 256; i++ {
		sub := fmt.Sprintf("%02x", i)
		ents, err := os.ReadDir(filepath.Join(d.root, sub))
		if err != nil {
			return files, bytes, fmt.Errorf("blobdir: copy: %w", err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return files, bytes, err
			}
			from, to := filepath.Join(d.root, sub, e.Name()), filepath.Join(dst, sub, e.Name())
			n, err := linkOrCopy(from, to)
			if errors.Is(err, os.ErrNotExist) {
				// Removed before the hold by a write that replaced it:
				// no row of the backup names it.
				continue
			}
			if err != nil {
				return files, bytes, fmt.Errorf("blobdir: copy: %w", err)
			}
			files++
			bytes += n
		}
		if err := SyncDir(filepath.Join(dst, sub)); err != nil {
			return files, bytes, err
		}
	}
	return files, bytes, nil
}

// linkOrCopy links from at to, or copies it (synced) where a link cannot
// be made, and returns its size.
func linkOrCopy(from, to string) (int64, error) {
	st, err := os.Stat(from)
	if err != nil {
		return 0, err
	}
	if os.Link(from, to) == nil {
		return st.Size(), nil
	}
	in, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
