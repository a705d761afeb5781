// Package filekms implements a [kms.KEK] kept in a local keyring file: the
// custody of domicile's embedded default.
//
// # File format
//
// The keyring is one JSON document, created on first use with mode 0600:
//
//	{
//	  "format": "domicile-filekms/1",
//	  "id": "cn-gz1/kek",
//	  "current": 2,
//	  "versions": [
//	    {"version": 1, "created": "2026-01-02T03:04:05Z", "retired": "2026-03-01T00:00:00Z"},
//	    {"version": 2, "created": "2026-02-01T00:00:00Z", "key": "<base64 of 32 random bytes>"}
//	  ]
//	}
//
// A retired version keeps its number and dates but loses its key, so that it
// can never be reused nor unwrap again. Every change is written atomically:
// a temporary file in the same directory, fsync, rename, fsync of the directory.
//
// # Wrapping
//
// Wrap seals with AES-256-GCM under the current version's key, a random 96-bit
// nonce and the caller's associated data; the ciphertext is nonce || sealed.
// Random nonces are safe for up to 2^32 wraps per version (NIST SP 800-38D
// §8.3); rotate well before that.
//
// # Security
//
// The file holds the KEK in the clear. Whoever can read it (the process owner,
// root, anyone with a backup of it) can unwrap every data key of the cell.
// Open refuses a file that the group or others may access, but file modes do
// not stop root. Unwrap receives an Access but applies no policy.
package filekms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"domicile/kms"
)

// Format is the value of the "format" member of a keyring file.
const Format = "domicile-filekms/1"

const (
	keyBytes   = 32
	nonceBytes = 12
	// maxFileBytes bounds how much of a keyring file is read.
	maxFileBytes = 1 << 20
	// maxVersions bounds the number of versions a keyring may hold.
	maxVersions = 10000
)

// Config configures a keyring. Zero fields take the defaults noted.
type Config struct {
	// Path is the keyring file. Required.
	Path string
	// ID is the KEK id written into a new keyring (for example "cn-gz1/kek").
	// When opening an existing keyring, a non-empty ID must match the file's.
	// Default for a new keyring: the file name without its extension.
	ID string
	// Rand is the source of keys and nonces. Default crypto/rand.Reader.
	Rand io.Reader
	// Now is the clock stamped on versions. Default time.Now.
	Now func() time.Time
}

// Keyring is a KEK stored in a local file. It is safe for concurrent use by
// one process; two processes must not share a keyring file.
type Keyring struct {
	path string
	id   string
	rand io.Reader
	now  func() time.Time

	// mu guards the fields below.
	mu      sync.RWMutex
	file    fileData
	aeads   map[uint32]cipher.AEAD
	current uint32
}

var _ kms.KEK = (*Keyring)(nil)

type fileData struct {
	Format   string        `json:"format"`
	ID       string        `json:"id"`
	Current  uint32        `json:"current"`
	Versions []fileVersion `json:"versions"`
}

type fileVersion struct {
	Version uint32     `json:"version"`
	Created time.Time  `json:"created"`
	Retired *time.Time `json:"retired,omitempty"`
	Key     []byte     `json:"key,omitempty"`
}

// Open opens the keyring at cfg.Path, creating it with one fresh version if it
// does not exist. It refuses a file whose mode grants the group or others any
// access, and a file that is not a well-formed keyring.
func Open(ctx context.Context, cfg Config) (*Keyring, error) {
	if cfg.Path == "" {
		return nil, errors.New("filekms: no keyring path")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := &Keyring{path: cfg.Path, rand: cfg.Rand, now: cfg.Now}
	data, err := readKeyring(cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data, err = k.create(cfg.ID)
		if errors.Is(err, fs.ErrExist) {
			// Another opener created it first: use theirs.
			data, err = readKeyring(cfg.Path)
		}
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if cfg.ID != "" && cfg.ID != data.ID {
		return nil, fmt.Errorf("filekms: keyring %s holds KEK %q, not %q", cfg.Path, data.ID, cfg.ID)
	}
	k.id = data.ID // immutable from here on: ID reads it without locking
	if err := k.load(data); err != nil {
		return nil, err
	}
	return k, nil
}

// LogValue implements slog.LogValuer: the id and path, never key material.
func (k *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kek", k.id), slog.String("path", k.path))
}

// ID implements kms.KEK.
func (k *Keyring) ID() string { return k.id }

// Path returns the keyring file's path.
func (k *Keyring) Path() string { return k.path }

func readKeyring(path string) (fileData, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileData{}, fmt.Errorf("filekms: open keyring: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fileData{}, fmt.Errorf("filekms: stat keyring: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fileData{}, fmt.Errorf("filekms: keyring %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fileData{}, fmt.Errorf("filekms: keyring %s has mode %04o; it must not be accessible to group or others (chmod 600)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return fileData{}, fmt.Errorf("filekms: read keyring: %w", err)
	}
	if len(b) > maxFileBytes {
		return fileData{}, fmt.Errorf("filekms: keyring %s is larger than %d bytes", path, maxFileBytes)
	}
	return parseKeyring(b)
}

// errMalformed is returned for any keyring that does not parse; it never
// echoes the file's content, which holds keys.
var errMalformed = errors.New("filekms: malformed keyring")

func parseKeyring(b []byte) (fileData, error) {
	var d fileData
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return fileData{}, errMalformed
	}
	if dec.More() {
		return fileData{}, fmt.Errorf("%w: trailing data", errMalformed)
	}
	if d.Format != Format {
		return fileData{}, fmt.Errorf("%w: format is not %q", errMalformed, Format)
	}
	if d.ID == "" {
		return fileData{}, fmt.Errorf("%w: no id", errMalformed)
	}
	if len(d.Versions) == 0 || len(d.Versions) > maxVersions {
		return fileData{}, fmt.Errorf("%w: %d versions", errMalformed, len(d.Versions))
	}
	currentOK := false
	for i, v := range d.Versions {
		if v.Version == 0 || (i > 0 && v.Version <= d.Versions[i-1].Version) {
			return fileData{}, fmt.Errorf("%w: versions not strictly ascending from 1", errMalformed)
		}
		switch {
		case v.Retired != nil && len(v.Key) != 0:
			return fileData{}, fmt.Errorf("%w: retired version %d still holds a key", errMalformed, v.Version)
		case v.Retired == nil && len(v.Key) != keyBytes:
			return fileData{}, fmt.Errorf("%w: version %d key is not %d bytes", errMalformed, v.Version, keyBytes)
		}
		if v.Version == d.Current {
			currentOK = v.Retired == nil
		}
	}
	if !currentOK {
		return fileData{}, fmt.Errorf("%w: current version %d is missing or retired", errMalformed, d.Current)
	}
	return d, nil
}

func (k *Keyring) create(id string) (fileData, error) {
	if id == "" {
		base := filepath.Base(k.path)
		id = base[:len(base)-len(filepath.Ext(base))]
	}
	key, err := k.newKey()
	if err != nil {
		return fileData{}, err
	}
	d := fileData{
		Format:   Format,
		ID:       id,
		Current:  1,
		Versions: []fileVersion{{Version: 1, Created: k.now().UTC(), Key: key}},
	}
	if err := writeAtomic(k.path, d, false); err != nil {
		return fileData{}, err
	}
	return d, nil
}

func (k *Keyring) newKey() ([]byte, error) {
	key := make([]byte, keyBytes)
	if _, err := io.ReadFull(k.rand, key); err != nil {
		return nil, fmt.Errorf("filekms: generate key: %v", err)
	}
	return key, nil
}

// load installs d as the keyring state. k.mu must be held or k unpublished.
func (k *Keyring) load(d fileData) error {
	aeads := make(map[uint32]cipher.AEAD, len(d.Versions))
	for _, v := range d.Versions {
		if v.Retired != nil {
			continue
		}
		block, err := aes.NewCipher(v.Key)
		if err != nil {
			return fmt.Errorf("filekms: version %d: %v", v.Version, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("filekms: version %d: %v", v.Version, err)
		}
		aeads[v.Version] = aead
	}
	k.file = d
	k.aeads = aeads
	k.current = d.Current
	return nil
}

// writeAtomic writes d to path through a temporary file. With replace false it
// fails with fs.ErrExist if path already exists.
func writeAtomic(path string, d fileData, replace bool) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("filekms: encode keyring: %v", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("filekms: write keyring: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after a successful rename or link
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("filekms: write keyring: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("filekms: write keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("filekms: sync keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("filekms: write keyring: %w", err)
	}
	if replace {
		err = os.Rename(tmpName, path)
	} else {
		// Link fails if path exists, so two first starts cannot both create.
		err = os.Link(tmpName, path)
	}
	if err != nil {
		return fmt.Errorf("filekms: install keyring: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("filekms: sync keyring directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filekms: sync keyring directory: %w", err)
	}
	return nil
}

// Wrap implements kms.KEK.
func (k *Keyring) Wrap(ctx context.Context, plaintext, aad []byte) (uint32, []byte, error) {
	if err := kms.CheckWrap(plaintext, aad); err != nil {
		return 0, nil, err
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	k.mu.RLock()
	version, aead := k.current, k.aeads[k.current]
	k.mu.RUnlock()
	out := make([]byte, nonceBytes, nonceBytes+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(k.rand, out); err != nil {
		return 0, nil, fmt.Errorf("filekms: nonce: %v", err)
	}
	out = aead.Seal(out, out, plaintext, aad)
	return version, out, nil
}

// Unwrap implements kms.KEK. It validates a but applies no policy.
func (k *Keyring) Unwrap(ctx context.Context, a kms.Access, version uint32, ciphertext, aad []byte) ([]byte, error) {
	if err := kms.CheckUnwrap(a, version, ciphertext, aad); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.RLock()
	aead, ok := k.aeads[version]
	current := k.current
	k.mu.RUnlock()
	if !ok {
		problem := "unknown"
		if version < current {
			problem = "retired"
		}
		return nil, &kms.VersionError{KEK: k.id, Version: version, Problem: problem}
	}
	if len(ciphertext) < nonceBytes+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", kms.ErrInvalidCiphertext)
	}
	pt, err := aead.Open(nil, ciphertext[:nonceBytes], ciphertext[nonceBytes:], aad)
	if err != nil {
		return nil, kms.ErrInvalidCiphertext
	}
	return pt, nil
}

// Rotate implements kms.KEK: it adds a version with a fresh random key, makes
// it current and persists the keyring before returning.
func (k *Keyring) Rotate(ctx context.Context) (uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	key, err := k.newKey()
	if err != nil {
		return 0, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.copyFile()
	next := d.Versions[len(d.Versions)-1].Version + 1
	if len(d.Versions) >= maxVersions || next == 0 {
		return 0, errors.New("filekms: keyring holds too many versions")
	}
	d.Versions = append(d.Versions, fileVersion{Version: next, Created: k.now().UTC(), Key: key})
	d.Current = next
	if err := k.commit(d); err != nil {
		return 0, err
	}
	return next, nil
}

// Versions implements kms.KEK.
func (k *Keyring) Versions(ctx context.Context) (uint32, []uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	var all []uint32
	for _, v := range k.file.Versions {
		if v.Retired == nil {
			all = append(all, v.Version)
		}
	}
	return k.current, all, nil
}

// Retire implements kms.KEK: it erases version's key from the keyring file.
// Copies of the file made before (backups) still hold it.
func (k *Keyring) Retire(ctx context.Context, version uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if version == k.current {
		return &kms.VersionError{KEK: k.id, Version: version, Problem: "current"}
	}
	d := k.copyFile()
	i := slices.IndexFunc(d.Versions, func(v fileVersion) bool { return v.Version == version })
	if i < 0 {
		return &kms.VersionError{KEK: k.id, Version: version, Problem: "unknown"}
	}
	if d.Versions[i].Retired != nil {
		return &kms.VersionError{KEK: k.id, Version: version, Problem: "retired"}
	}
	now := k.now().UTC()
	d.Versions[i].Retired = &now
	d.Versions[i].Key = nil
	return k.commit(d)
}

// copyFile returns a copy of k.file that may be modified. k.mu must be held.
func (k *Keyring) copyFile() fileData {
	d := k.file
	d.Versions = slices.Clone(d.Versions)
	return d
}

// commit persists d and then installs it. k.mu must be held for writing.
func (k *Keyring) commit(d fileData) error {
	if err := writeAtomic(k.path, d, true); err != nil {
		return err
	}
	return k.load(d)
}
