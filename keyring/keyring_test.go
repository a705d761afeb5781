package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"domicile"
	"domicile/keyring"
	"domicile/kms"
	"domicile/kms/filekms"
	"domicile/sqlite"
)

// counting wraps a real KEK and counts unwraps, so tests can see which
// accesses reached the custodian.
type counting struct {
	kms.KEK
	unwraps atomic.Int64
}

func (c *counting) Unwrap(ctx context.Context, a kms.Access, v uint32, ct, aad []byte) ([]byte, error) {
	c.unwraps.Add(1)
	return c.KEK.Unwrap(ctx, a, v, ct, aad)
}

func newKeyring(t *testing.T, cache int) (*keyring.Keyring, *counting, *sqlite.KeyStore) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "kek.json"), ID: "c1/kek"})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sqlite.OpenKeyStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	c := &counting{KEK: kek}
	return keyring.New(keyring.Config{Cell: "c1", KEK: c, Store: ks, CacheSize: cache}), c, ks
}

func ref(b byte) domicile.SubjectRef {
	var r domicile.SubjectRef
	r[0] = b
	return r
}

var (
	app = kms.Access{Cell: "c1", Role: kms.RoleApp, Jurisdiction: "CN", Reason: "service:service"}
	op  = kms.Access{Cell: "c1", Role: kms.RoleOperator, Jurisdiction: "CN", Reason: kms.ReasonSupport, Reference: "T-1"}
)

// TestOperatorsBypassCache: app accesses hit the cache after the first;
// every operator access reaches the custodian.
func TestOperatorsBypassCache(t *testing.T) {
	ctx := context.Background()
	kr, c, _ := newKeyring(t, 10)
	if err := kr.Create(ctx, ref(1), 0); err != nil {
		t.Fatal(err)
	}
	dk, err := kr.DataKey(ctx, app, ref(1), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		got, err := kr.DataKey(ctx, app, ref(1), 0)
		if err != nil || !bytes.Equal(got, dk) {
			t.Fatalf("app DataKey: %v", err)
		}
	}
	if n := c.unwraps.Load(); n != 0 {
		t.Fatalf("app accesses unwrapped %d times, want 0 (created keys are cached)", n)
	}
	for i := 0; i < 3; i++ {
		got, err := kr.DataKey(ctx, op, ref(1), 0)
		if err != nil || !bytes.Equal(got, dk) {
			t.Fatalf("operator DataKey: %v", err)
		}
	}
	if n := c.unwraps.Load(); n != 3 {
		t.Fatalf("operator accesses unwrapped %d times, want 3", n)
	}
	size, hits, _ := kr.CacheStats()
	if size != 1 || hits != 6 {
		t.Fatalf("cache size %d hits %d", size, hits)
	}
}

func TestCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	kr, c, _ := newKeyring(t, 4)
	for i := byte(0); i < 10; i++ {
		if err := kr.Create(ctx, ref(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if size, _, _ := kr.CacheStats(); size != 4 {
		t.Fatalf("cache holds %d keys, want 4", size)
	}
	if _, err := kr.DataKey(ctx, app, ref(0), 0); err != nil {
		t.Fatal(err)
	}
	if c.unwraps.Load() != 1 {
		t.Fatal("an evicted key was not unwrapped from custody")
	}
}

// TestCreateBatch: keys created in one batch are each subject's own, stored
// wrapped in custody (they unwrap to what the cache holds); a batch that
// repeats a stored subject's key creates none.
func TestCreateBatch(t *testing.T) {
	ctx := context.Background()
	kr, c, ks := newKeyring(t, 100)
	refs := []domicile.SubjectRef{ref(1), ref(2), ref(3)}
	if err := kr.CreateBatch(ctx, refs, 0); err != nil {
		t.Fatal(err)
	}
	cold := keyring.New(keyring.Config{Cell: "c1", KEK: c.KEK, Store: ks, CacheSize: -1})
	seen := map[string]bool{}
	for _, r := range refs {
		cached, err := kr.DataKey(ctx, app, r, 0)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := cold.DataKey(ctx, app, r, 0)
		if err != nil {
			t.Fatalf("DataKey from custody: %v", err)
		}
		if !bytes.Equal(cached, stored) {
			t.Errorf("subject %x: the cached key is not the one stored wrapped", r[:1])
		}
		if seen[string(stored)] {
			t.Errorf("subject %x shares a data key", r[:1])
		}
		seen[string(stored)] = true
	}
	if n := c.unwraps.Load(); n != 0 {
		t.Errorf("the batch's keys were unwrapped %d times through the cached keyring, want 0 (cached on creation)", n)
	}
	if err := kr.CreateBatch(ctx, []domicile.SubjectRef{ref(4), ref(2)}, 0); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Fatalf("CreateBatch with an existing key = %v, want ErrVersionMismatch", err)
	}
	if _, err := cold.DataKey(ctx, app, ref(4), 0); domicile.ErrorCode(err) != keyring.ENoKey {
		t.Errorf("DataKey of a refused batch's new subject = %v, want %s", err, keyring.ENoKey)
	}
	if _, err := kr.DataKey(ctx, app, ref(4), 0); domicile.ErrorCode(err) != keyring.ENoKey {
		t.Errorf("DataKey of a refused batch's new subject through the cache = %v, want %s: nothing was cached", err, keyring.ENoKey)
	}
	if err := kr.CreateBatch(ctx, make([]domicile.SubjectRef, domicile.MaxKeysPerBatch+1), 0); domicile.ErrorCode(err) != domicile.EInvalid {
		t.Errorf("CreateBatch over the bound = %v, want %s", err, domicile.EInvalid)
	}
}

// TestRewrapKeepsKeys: after rotation and re-wrap every key is under the
// new version and unwraps to the same key; the old version retires.
func TestRewrapKeepsKeys(t *testing.T) {
	ctx := context.Background()
	kr, _, ks := newKeyring(t, -1)
	keys := map[byte][]byte{}
	for i := byte(0); i < 50; i++ {
		kr.Create(ctx, ref(i), 0)
		keys[i], _ = kr.DataKey(ctx, app, ref(i), 0)
	}
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := kr.Rewrap(ctx, nil)
	if err != nil || n != 50 {
		t.Fatalf("Rewrap = %d, %v", n, err)
	}
	counts, _ := ks.CountByVersion(ctx)
	if counts[1] != 0 || counts[2] != 50 {
		t.Fatalf("counts after rewrap: %v", counts)
	}
	retired, err := kr.RetireUnused(ctx)
	if err != nil || len(retired) != 1 || retired[0] != 1 {
		t.Fatalf("RetireUnused = %v, %v", retired, err)
	}
	for i, want := range keys {
		got, err := kr.DataKey(ctx, app, ref(i), 0)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("key %d after rewrap: %v", i, err)
		}
	}
}

func TestEraseDestroysKeys(t *testing.T) {
	ctx := context.Background()
	kr, _, ks := newKeyring(t, 10)
	kr.Create(ctx, ref(7), 0)
	kr.Create(ctx, ref(7), 1)
	fps, err := kr.Erase(ctx, ref(7), 1)
	if err != nil || len(fps) != 2 {
		t.Fatalf("Erase = %v, %v", fps, err)
	}
	_, err = kr.DataKey(ctx, app, ref(7), 0)
	if domicile.ErrorCode(err) != domicile.ENotFound {
		t.Fatalf("DataKey after erase: %v", err)
	}
	if _, err := ks.Key(ctx, ref(7), 1); !errors.Is(err, domicile.ErrNotFound) {
		t.Fatalf("custody still holds the key: %v", err)
	}
}

// failing is a real KEK whose custodian goes down (or refuses) on demand.
type failing struct {
	kms.KEK
	err atomic.Pointer[error]
}

func (f *failing) Unwrap(ctx context.Context, a kms.Access, v uint32, ct, aad []byte) ([]byte, error) {
	if err := f.err.Load(); err != nil {
		return nil, *err
	}
	return f.KEK.Unwrap(ctx, a, v, ct, aad)
}

// TestCustodyErrorsAreLogged: a custodian that is down or refuses is a
// user error without its cause (503, 403), and the cause is in the
// server log, with the cell and the KEK.
func TestCustodyErrorsAreLogged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "kek.json"), ID: "c1/kek"})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sqlite.OpenKeyStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	var logBuf bytes.Buffer
	f := &failing{KEK: kek}
	kr := keyring.New(keyring.Config{Cell: "c1", KEK: f, Store: ks, CacheSize: -1, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err := kr.Create(ctx, ref(1), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		err            error
		code, level    string
		cause, message string
	}{
		{fmt.Errorf("%w: dial tcp 10.0.0.7:8443: connect: connection refused", kms.ErrUnavailable), domicile.EUnavailable, "ERROR", "connection refused", "unavailable"},
		{&kms.DeniedError{Clause: "no-night-reads", Reason: "outside office hours"}, domicile.EForbidden, "WARN", "no-night-reads", "refused"},
	}
	for _, tt := range tests {
		logBuf.Reset()
		f.err.Store(&tt.err)
		_, err := kr.DataKey(ctx, op, ref(1), 0)
		if domicile.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.message) {
			t.Errorf("DataKey with the custodian failing %v = %v, want code %s", tt.err, err, tt.code)
		}
		if tt.code == domicile.EUnavailable && strings.Contains(err.Error(), "10.0.0.7") {
			t.Errorf("the user's error %q shows the custodian's address", err)
		}
		line := logBuf.String()
		for _, want := range []string{"level=" + tt.level, `msg="key custody error"`, "cell=c1", "kek=c1/kek", "op=unwrap", tt.cause} {
			if !strings.Contains(line, want) {
				t.Errorf("the log of %v = %q, want %s in it", tt.err, line, want)
			}
		}
	}
}
