package tlog_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"domicile"
	"domicile/checkpoint"
	"domicile/merkle"
	"domicile/sqlite"
	"domicile/tlog"
	"domicile/witness"
)

func newLog(t *testing.T, origin string) (*tlog.Log, *sqlite.Store, string) {
	return newLogB(t, origin)
}

func newLogB(t testing.TB, origin string) (*tlog.Log, *sqlite.Store, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skey, vkey, err := checkpoint.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := checkpoint.NewSigner(skey)
	l := tlog.New(tlog.Config{Store: st, Origin: origin, Signer: signer, Verifier: vkey, Interval: 20 * time.Millisecond})
	return l, st, vkey
}

func appendLeaves(t *testing.T, st *sqlite.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		e := &domicile.LogEntry{Time: time.Now(), Leaf: []byte(fmt.Sprintf("leaf %d", i))}
		if err := st.Commit(context.Background(), &domicile.Batch{Events: []*domicile.LogEntry{e}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPublishAndProve: the log signs a checkpoint of each new size, and
// its inclusion and consistency proofs verify against the signed roots.
func TestPublishAndProve(t *testing.T) {
	ctx := context.Background()
	l, st, vkey := newLog(t, "example/log")
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	appendLeaves(t, st, 0, 37)
	h1, err := l.Latest(ctx)
	if err != nil || h1.Size != 37 {
		t.Fatalf("Latest = %+v, %v", h1, err)
	}
	v, _ := checkpoint.NewVerifier(vkey)
	if _, err := checkpoint.Open(h1.Signed, v); err != nil {
		t.Fatalf("checkpoint does not verify: %v", err)
	}
	for i := int64(0); i < 37; i++ {
		p, err := l.ProveInclusion(ctx, i, 37)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyInclusion(p, i, 37, merkle.LeafHash([]byte(fmt.Sprintf("leaf %d", i))), h1.Root); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
	}
	appendLeaves(t, st, 37, 20)
	// The background publisher signs the new size within its interval.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, err := l.Cosigned()
		if err == nil && h.Size == 57 {
			p, err := l.ProveConsistency(ctx, 37, 57)
			if err != nil {
				t.Fatal(err)
			}
			if err := merkle.VerifyConsistency(p, 37, 57, h1.Root, h.Root); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of the grown log within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCosigning: a witness cosigns the log's checkpoints as it grows, and
// the cosignature verifies.
func TestCosigning(t *testing.T) {
	ctx := context.Background()
	l, st, vkey := newLog(t, "example/cosigned")
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	wskey, wvkey, err := checkpoint.GenerateCosignerKey(rand.Reader, "witness/test")
	if err != nil {
		t.Fatal(err)
	}
	cos, _ := checkpoint.NewCosigner(wskey, time.Now)
	w, err := witness.New(witness.Config{Cosigner: cos, Logs: []string{vkey}, State: witness.NewFileState(filepath.Join(t.TempDir(), "state"))})
	if err != nil {
		t.Fatal(err)
	}
	co := &tlog.Cosigning{Name: "witness/test", Witness: w}
	for _, n := range []int{5, 11} {
		appendLeaves(t, st, 0, n)
		if _, err := l.Latest(ctx); err != nil {
			t.Fatal(err)
		}
		if err := co.CosignOnce(ctx, l); err != nil {
			t.Fatalf("cosign: %v", err)
		}
		h, _ := l.Cosigned()
		v, _ := checkpoint.NewVerifier(vkey)
		wv, _ := checkpoint.NewCosignatureVerifier(wvkey)
		if _, err := checkpoint.Open(h.Signed, v, wv); err != nil {
			t.Fatalf("cosigned checkpoint of size %d does not verify: %v", h.Size, err)
		}
	}
}
