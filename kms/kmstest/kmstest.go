// Package kmstest is the conformance suite every kms.KEK implementation runs.
//
// A backend's test calls [Run] with a constructor that returns a fresh KEK
// (one with a single version) for each subtest:
//
//	func TestConformance(t *testing.T) {
//		kmstest.Run(t, func(t *testing.T) kms.KEK { return newTestKEK(t) })
//	}
//
// Custodians with a policy must allow unwraps that present [Access].
package kmstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"domicile/kms"
)

// Access is the access the suite presents with every unwrap. A custodian with
// a policy must allow it (and, for keyd, its client certificate must name
// Access.Cell).
var Access = kms.Access{
	Cell:         "test-cell",
	Role:         kms.RoleApp,
	Jurisdiction: "CN",
	Reason:       "service:conformance",
	Subject:      "psn-0001",
}

// Run runs the conformance suite against KEKs made by newKEK.
func Run(t *testing.T, newKEK func(t *testing.T) kms.KEK) {
	t.Run("ID", func(t *testing.T) {
		if id := newKEK(t).ID(); id == "" {
			t.Error("ID() = \"\", want a stable non-empty id")
		}
	})
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newKEK(t)) })
	t.Run("Limits", func(t *testing.T) { testLimits(t, newKEK(t)) })
	t.Run("AADBinding", func(t *testing.T) { testAADBinding(t, newKEK(t)) })
	t.Run("Tampering", func(t *testing.T) { testTampering(t, newKEK(t)) })
	t.Run("Rotate", func(t *testing.T) { testRotate(t, newKEK(t)) })
	t.Run("Retire", func(t *testing.T) { testRetire(t, newKEK(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newKEK(t)) })
}

func key(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// MustWrap wraps plaintext and fails the test on error.
func MustWrap(tb testing.TB, k kms.KEK, plaintext, aad []byte) (uint32, []byte) {
	tb.Helper()
	v, ct, err := k.Wrap(context.Background(), plaintext, aad)
	if err != nil {
		tb.Fatalf("Wrap(%d bytes) = %v", len(plaintext), err)
	}
	return v, ct
}

func testRoundTrip(t *testing.T, k kms.KEK) {
	ctx := context.Background()
	cur, _, err := k.Versions(ctx)
	if err != nil {
		t.Fatalf("Versions() = %v", err)
	}
	for _, tc := range []struct {
		name string
		pt   []byte
		aad  []byte
	}{
		{"32-byte key, no aad", key(32, 1), nil},
		{"32-byte key with aad", key(32, 2), []byte("cell=cn-gz1;subject=psn-1;v=1")},
		{"one byte", []byte{0}, []byte("a")},
		{"largest plaintext and aad", key(kms.MaxPlaintextBytes, 3), key(kms.MaxAADBytes, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ct, err := k.Wrap(ctx, tc.pt, tc.aad)
			if err != nil {
				t.Fatalf("Wrap = %v", err)
			}
			if v != cur {
				t.Errorf("Wrap version = %d, want current %d", v, cur)
			}
			if bytes.Contains(ct, tc.pt) && len(tc.pt) >= 8 {
				t.Errorf("ciphertext contains the plaintext")
			}
			got, err := k.Unwrap(ctx, Access, v, ct, tc.aad)
			if err != nil {
				t.Fatalf("Unwrap = %v", err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Errorf("Unwrap = %x, want %x", got, tc.pt)
			}
			_, ct2 := MustWrap(t, k, tc.pt, tc.aad)
			if bytes.Equal(ct, ct2) {
				t.Errorf("two wraps of the same plaintext gave the same ciphertext")
			}
		})
	}
}

func testLimits(t *testing.T, k kms.KEK) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		pt, aad []byte
	}{
		{"empty plaintext", nil, nil},
		{"plaintext too long", key(kms.MaxPlaintextBytes+1, 1), nil},
		{"aad too long", key(32, 1), key(kms.MaxAADBytes+1, 2)},
	} {
		t.Run(tc.name+" refused", func(t *testing.T) {
			if _, _, err := k.Wrap(ctx, tc.pt, tc.aad); err == nil {
				t.Errorf("Wrap(%d bytes, %d bytes aad) = nil error, want refusal", len(tc.pt), len(tc.aad))
			}
		})
	}
	v, ct := MustWrap(t, k, key(32, 5), nil)
	bad := []struct {
		name string
		a    kms.Access
	}{
		{"no cell", kms.Access{Role: kms.RoleApp, Reason: "service:x"}},
		{"unknown role", kms.Access{Cell: Access.Cell, Role: "root", Reason: kms.ReasonSupport}},
		{"free-text reason", kms.Access{Cell: Access.Cell, Role: kms.RoleOperator, Reason: "because"}},
		{"app without purpose", kms.Access{Cell: Access.Cell, Role: kms.RoleApp, Reason: "service:"}},
	}
	for _, tc := range bad {
		t.Run("access "+tc.name+" refused", func(t *testing.T) {
			pt, err := k.Unwrap(ctx, tc.a, v, ct, nil)
			if err == nil || pt != nil {
				t.Errorf("Unwrap(%+v) = %x, %v; want nil, error", tc.a, pt, err)
			}
		})
	}
}

func testAADBinding(t *testing.T, k kms.KEK) {
	ctx := context.Background()
	aad := []byte("cell=cn-gz1;subject=psn-1;kind=profile;v=3")
	v, ct := MustWrap(t, k, key(32, 9), aad)
	for _, wrong := range [][]byte{nil, []byte("cell=cn-gz1;subject=psn-2;kind=profile;v=3"), aad[:len(aad)-1], append(slices.Clone(aad), 0)} {
		pt, err := k.Unwrap(ctx, Access, v, ct, wrong)
		if !errors.Is(err, kms.ErrInvalidCiphertext) || pt != nil {
			t.Errorf("Unwrap with aad %q = %x, %v; want nil, ErrInvalidCiphertext", wrong, pt, err)
		}
	}
}

func testTampering(t *testing.T, k kms.KEK) {
	ctx := context.Background()
	aad := []byte("aad")
	v, ct := MustWrap(t, k, key(32, 11), aad)
	for i := range len(ct) * 8 {
		c := slices.Clone(ct)
		c[i/8] ^= 1 << (i % 8)
		if pt, err := k.Unwrap(ctx, Access, v, c, aad); !errors.Is(err, kms.ErrInvalidCiphertext) || pt != nil {
			t.Fatalf("Unwrap with bit %d flipped = %x, %v; want nil, ErrInvalidCiphertext", i, pt, err)
		}
	}
	for n := range len(ct) {
		if pt, err := k.Unwrap(ctx, Access, v, ct[:n], aad); err == nil || pt != nil {
			t.Fatalf("Unwrap of ciphertext truncated to %d bytes = %x, %v; want nil, error", n, pt, err)
		}
	}
	if pt, err := k.Unwrap(ctx, Access, v, append(slices.Clone(ct), 0), aad); err == nil || pt != nil {
		t.Errorf("Unwrap with a byte appended = %x, %v; want nil, error", pt, err)
	}
	var ve *kms.VersionError
	if pt, err := k.Unwrap(ctx, Access, v+7, ct, aad); !errors.As(err, &ve) || pt != nil {
		t.Errorf("Unwrap with unknown version %d = %x, %v; want nil, *VersionError", v+7, pt, err)
	}
}

func testRotate(t *testing.T, k kms.KEK) {
	ctx := context.Background()
	pt1 := key(32, 21)
	v1, ct1 := MustWrap(t, k, pt1, nil)
	v2, err := k.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	if v2 <= v1 {
		t.Fatalf("Rotate() = %d, want > %d", v2, v1)
	}
	cur, all, err := k.Versions(ctx)
	if err != nil {
		t.Fatalf("Versions() = %v", err)
	}
	if cur != v2 || !slices.Contains(all, v1) || !slices.Contains(all, v2) || !slices.IsSorted(all) {
		t.Errorf("Versions() = %d, %v; want current %d and ascending versions with %d and %d", cur, all, v2, v1, v2)
	}
	pt2 := key(32, 22)
	gotV, ct2 := MustWrap(t, k, pt2, nil)
	if gotV != v2 {
		t.Errorf("Wrap after Rotate used version %d, want %d", gotV, v2)
	}
	for _, c := range []struct {
		v      uint32
		ct, pt []byte
	}{{v1, ct1, pt1}, {v2, ct2, pt2}} {
		got, err := k.Unwrap(ctx, Access, c.v, c.ct, nil)
		if err != nil || !bytes.Equal(got, c.pt) {
			t.Errorf("Unwrap(version %d) = %x, %v; want %x", c.v, got, err, c.pt)
		}
	}
	// A ciphertext presented under the wrong version does not authenticate.
	if pt, err := k.Unwrap(ctx, Access, v2, ct1, nil); err == nil || pt != nil {
		t.Errorf("Unwrap(version %d) of a version %d ciphertext = %x, %v; want error", v2, v1, pt, err)
	}
}

func testRetire(t *testing.T, k kms.KEK) {
	ctx := context.Background()
	v1, ct1 := MustWrap(t, k, key(32, 31), nil)
	var ve *kms.VersionError
	if err := k.Retire(ctx, v1); !errors.As(err, &ve) {
		t.Errorf("Retire(current %d) = %v, want *VersionError", v1, err)
	}
	v2, err := k.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	if err := k.Retire(ctx, v1); err != nil {
		t.Fatalf("Retire(%d) = %v", v1, err)
	}
	if pt, err := k.Unwrap(ctx, Access, v1, ct1, nil); !errors.As(err, &ve) || pt != nil {
		t.Errorf("Unwrap(retired %d) = %x, %v; want nil, *VersionError", v1, pt, err)
	}
	cur, all, err := k.Versions(ctx)
	if err != nil {
		t.Fatalf("Versions() = %v", err)
	}
	if cur != v2 || slices.Contains(all, v1) || !slices.Contains(all, v2) {
		t.Errorf("Versions() = %d, %v; want current %d, without retired %d", cur, all, v2, v1)
	}
	if err := k.Retire(ctx, v1); err == nil {
		t.Errorf("Retire(%d) twice = nil, want error", v1)
	}
	if err := k.Retire(ctx, v2+10); err == nil {
		t.Errorf("Retire(unknown %d) = nil, want error", v2+10)
	}
	pt := key(32, 32)
	v, ct := MustWrap(t, k, pt, nil)
	if got, err := k.Unwrap(ctx, Access, v, ct, nil); v != v2 || err != nil || !bytes.Equal(got, pt) {
		t.Errorf("after Retire: Wrap version %d, Unwrap = %x, %v; want version %d, %x", v, got, err, v2, pt)
	}
	// Versions are never reused after a retirement.
	v3, err := k.Rotate(ctx)
	if err != nil || v3 <= v2 {
		t.Errorf("Rotate() after Retire = %d, %v; want > %d", v3, err, v2)
	}
}

func testConcurrent(t *testing.T, k kms.KEK) {
	ctx := context.Background()
	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds+1)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				pt := key(32, byte(w*rounds+r))
				aad := fmt.Appendf(nil, "w%d-r%d", w, r)
				v, ct, err := k.Wrap(ctx, pt, aad)
				if err != nil {
					errs <- fmt.Errorf("worker %d: Wrap = %v", w, err)
					return
				}
				got, err := k.Unwrap(ctx, Access, v, ct, aad)
				if err != nil || !bytes.Equal(got, pt) {
					errs <- fmt.Errorf("worker %d: Unwrap(version %d) = %x, %v; want %x", w, v, got, err, pt)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := k.Rotate(ctx); err != nil {
			errs <- fmt.Errorf("Rotate() = %v", err)
		}
		if _, _, err := k.Versions(ctx); err != nil {
			errs <- fmt.Errorf("Versions() = %v", err)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
