package filekms_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile/kms"
	"domicile/kms/filekms"
	"domicile/kms/kmstest"
)

func MustOpen(tb testing.TB, cfg filekms.Config) *filekms.Keyring {
	tb.Helper()
	k, err := filekms.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open(%q) = %v", cfg.Path, err)
	}
	return k
}

func TestConformance(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kms.KEK {
		return MustOpen(t, filekms.Config{Path: filepath.Join(t.TempDir(), "kek.json"), ID: "test/kek"})
	})
}

func TestCreateModeAndFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cn-gz1.json")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k := MustOpen(t, filekms.Config{Path: path, Now: func() time.Time { return now }})
	if k.ID() != "cn-gz1" {
		t.Errorf("ID() = %q, want default from the file name %q", k.ID(), "cn-gz1")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new keyring mode = %04o, want 0600", st.Mode().Perm())
	}
	var doc struct {
		Format   string
		Current  uint32
		Versions []struct {
			Version uint32
			Created time.Time
			Key     []byte
		}
	}
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Format != filekms.Format || doc.Current != 1 || len(doc.Versions) != 1 ||
		len(doc.Versions[0].Key) != 32 || !doc.Versions[0].Created.Equal(now) {
		t.Fatalf("keyring file = %s, want one 32-byte version 1 created %v", b, now)
	}
	// The format is what the package doc says: AES-256-GCM, nonce || sealed.
	pt := bytes.Repeat([]byte{7}, 32)
	v, ct := kmstest.MustWrap(t, k, pt, []byte("aad"))
	block, _ := aes.NewCipher(doc.Versions[0].Key)
	aead, _ := cipher.NewGCM(block)
	got, err := aead.Open(nil, ct[:12], ct[12:], []byte("aad"))
	if v != 1 || err != nil || !bytes.Equal(got, pt) {
		t.Errorf("independent AES-GCM open of version %d ciphertext = %x, %v; want %x", v, got, err, pt)
	}
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kek.json")
	k := MustOpen(t, filekms.Config{Path: path, ID: "cell/kek"})
	v1, ct1 := kmstest.MustWrap(t, k, []byte("key-one-key-one-key-one-key-one!"), nil)
	v2, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, ct2 := kmstest.MustWrap(t, k, []byte("key-two-key-two-key-two-key-two!"), nil)

	k2 := MustOpen(t, filekms.Config{Path: path, ID: "cell/kek"})
	cur, all, _ := k2.Versions(ctx)
	if cur != v2 || len(all) != 2 {
		t.Fatalf("reopened Versions() = %d, %v; want %d, [%d %d]", cur, all, v2, v1, v2)
	}
	for _, c := range []struct {
		v  uint32
		ct []byte
	}{{v1, ct1}, {v2, ct2}} {
		if _, err := k2.Unwrap(ctx, kmstest.Access, c.v, c.ct, nil); err != nil {
			t.Errorf("reopened Unwrap(version %d) = %v", c.v, err)
		}
	}
	if err := k2.Retire(ctx, v1); err != nil {
		t.Fatal(err)
	}
	k3 := MustOpen(t, filekms.Config{Path: path})
	var ve *kms.VersionError
	if _, err := k3.Unwrap(ctx, kmstest.Access, v1, ct1, nil); !errors.As(err, &ve) || ve.Problem != "retired" {
		t.Errorf("Unwrap(retired) after reopen = %v, want *VersionError retired", err)
	}
	b, _ := os.ReadFile(path)
	if strings.Count(string(b), `"key"`) != 1 {
		t.Errorf("keyring file after Retire holds %d keys, want 1:\n%s", strings.Count(string(b), `"key"`), b)
	}
	if _, err := filekms.Open(ctx, filekms.Config{Path: path, ID: "other/kek"}); err == nil {
		t.Errorf("Open with a different ID = nil error, want mismatch")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("keyring directory holds %d entries, want only the keyring (no temp files)", len(entries))
	}
}

func TestOpenRefuses(t *testing.T) {
	valid := func(t *testing.T) []byte {
		path := filepath.Join(t.TempDir(), "k.json")
		MustOpen(t, filekms.Config{Path: path})
		b, _ := os.ReadFile(path)
		return b
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		data func(t *testing.T) []byte
	}{
		{"group readable", 0o640, valid},
		{"world readable", 0o604, valid},
		{"group writable", 0o620, valid},
		{"not json", 0o600, func(*testing.T) []byte { return []byte("hello") }},
		{"unknown field", 0o600, func(t *testing.T) []byte {
			return bytes.Replace(valid(t), []byte(`"current"`), []byte(`"extra": 1, "current"`), 1)
		}},
		{"wrong format", 0o600, func(t *testing.T) []byte {
			return bytes.Replace(valid(t), []byte(filekms.Format), []byte("domicile-filekms/9"), 1)
		}},
		{"current missing", 0o600, func(t *testing.T) []byte {
			return bytes.Replace(valid(t), []byte(`"current": 1`), []byte(`"current": 2`), 1)
		}},
		{"trailing data", 0o600, func(t *testing.T) []byte { return append(valid(t), "{}"...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kek.json")
			if err := os.WriteFile(path, tc.data(t), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			if _, err := filekms.Open(context.Background(), filekms.Config{Path: path}); err == nil {
				t.Errorf("Open(%s) = nil error, want refusal", tc.name)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o700)
		if _, err := filekms.Open(context.Background(), filekms.Config{Path: dir}); err == nil {
			t.Errorf("Open(directory) = nil error, want refusal")
		}
	})
}

func TestErrorsHoldNoKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	MustOpen(t, filekms.Config{Path: path})
	b, _ := os.ReadFile(path)
	var doc struct{ Versions []struct{ Key string } }
	json.Unmarshal(b, &doc)
	keyB64 := doc.Versions[0].Key
	broken := bytes.Replace(b, []byte(`"current": 1`), []byte(`"current": "x"`), 1)
	os.WriteFile(path, broken, 0o600)
	_, err := filekms.Open(context.Background(), filekms.Config{Path: path})
	if err == nil || strings.Contains(err.Error(), keyB64) {
		t.Errorf("Open(malformed) = %v; want an error that does not echo the key", err)
	}
}

func BenchmarkWrap32(b *testing.B) {
	k := MustOpen(b, filekms.Config{Path: filepath.Join(b.TempDir(), "kek.json")})
	pt := make([]byte, 32)
	aad := []byte("cell=cn-gz1;subject=psn-1")
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := k.Wrap(ctx, pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap32(b *testing.B) {
	k := MustOpen(b, filekms.Config{Path: filepath.Join(b.TempDir(), "kek.json")})
	aad := []byte("cell=cn-gz1;subject=psn-1")
	v, ct := kmstest.MustWrap(b, k, make([]byte, 32), aad)
	ctx := context.Background()
	for b.Loop() {
		if _, err := k.Unwrap(ctx, kmstest.Access, v, ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}
