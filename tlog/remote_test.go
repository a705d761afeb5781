package tlog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"domicile/checkpoint"
	"domicile/sqlite"
	"domicile/tlog"
	"domicile/witness"
)

// testClock is a clock tests move forward by hand.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// syncLog collects a logger's output.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitFor polls ok until it holds or 10 s pass.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newRequiredLog(t *testing.T, clock *testClock, required ...*checkpoint.CosignatureVerifier) (*tlog.Log, *sqlite.Store, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skey, vkey, err := checkpoint.GenerateKey(rand.Reader, "example/witnessed")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := checkpoint.NewSigner(skey)
	l := tlog.New(tlog.Config{Store: st, Origin: "example/witnessed", Signer: signer, Verifier: vkey,
		Interval: 10 * time.Millisecond, Now: clock.Now, Required: required, WitnessWait: time.Hour})
	return l, st, vkey
}

func runWitnessing(t *testing.T, w *tlog.Witnessing) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestWitnessingRequired: a log that requires two witnesses serves a new
// checkpoint only once both cosigned it. When one witness comes back with
// another key, the log keeps serving the last checkpoint both cosigned
// while the new one waits, then, after WitnessWait, serves the new one
// with the one cosignature it has: a verifier demanding both is told
// which one is missing.
func TestWitnessingRequired(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := &testClock{}
	// The witnesses need the log's key, and the log the witnesses' keys:
	// make the log with the keys, then the witnesses with its key.
	w1key, w2key := newKeyPair(t, "w1.example"), newKeyPair(t, "w2.example")
	l, st, vkey := newRequiredLog(t, clock, w1key.v, w2key.v)
	w1 := w1key.witness(t, vkey, filepath.Join(dir, "w1.state"))
	w2 := w2key.witness(t, vkey, filepath.Join(dir, "w2.state"))
	appendLeaves(t, st, 0, 3)
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if _, err := l.Cosigned(); !errors.Is(err, tlog.ErrNotWitnessed) {
		t.Fatalf("Cosigned() before any witness = %v, want ErrNotWitnessed", err)
	}
	logOut := &syncLog{}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&tlog.Witnessing{Log: l, Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logOut, nil)), Witnesses: []tlog.RemoteWitness{
			{Name: "w1", Key: w1key.v, Witness: w1}, {Name: "w2", Key: w2key.v, Witness: w2}}}).Run(wctx)
	}()
	lv, _ := checkpoint.NewVerifier(vkey)
	served := func() *tlog.Head {
		h, err := l.Cosigned()
		if err != nil {
			return nil
		}
		return h
	}
	waitFor(t, "a checkpoint of 3 cosigned by both", func() bool { h := served(); return h != nil && h.Size == 3 })
	if _, err := checkpoint.Open(served().Signed, lv, w1key.v, w2key.v); err != nil {
		t.Fatalf("served checkpoint lacks a required cosignature: %v", err)
	}
	appendLeaves(t, st, 3, 4)
	waitFor(t, "a checkpoint of 7 cosigned by both", func() bool { h := served(); return h != nil && h.Size == 7 })
	cancel()
	<-done

	// w2 restarts with a new key but its state, under its old name.
	w2new := newKeyPair(t, "w2.example").witness(t, vkey, filepath.Join(dir, "w2.state"))
	runWitnessing(t, &tlog.Witnessing{Log: l, Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logOut, nil)), Witnesses: []tlog.RemoteWitness{
		{Name: "w1", Key: w1key.v, Witness: w1}, {Name: "w2", Key: w2key.v, Witness: w2new}}})
	appendLeaves(t, st, 7, 2)
	if _, err := l.Latest(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "w1's cosignature on 9 and w2's answer refused", func() bool {
		h, err := l.Latest(ctx)
		if err != nil || h.Size != 9 {
			return false
		}
		_, err = checkpoint.Open(h.Signed, lv, w1key.v)
		return err == nil && strings.Contains(logOut.String(), "no valid cosignature by its key w2.example+")
	})
	if h := served(); h == nil || h.Size != 7 {
		t.Fatalf("served while 9 waits for w2 = %+v, want the checkpoint of 7 both cosigned", h)
	}
	clock.Advance(time.Hour)
	h := served()
	if h == nil || h.Size != 9 {
		t.Fatalf("served after WitnessWait = %+v, want the checkpoint of 9", h)
	}
	_, err := checkpoint.OpenQuorum(h.Signed, lv, 2, w1key.v, w2key.v)
	var qe *checkpoint.QuorumError
	if !errors.As(err, &qe) || len(qe.Missing) != 1 || qe.Missing[0].Name != "w2.example" || qe.Missing[0].KeyHash != w2key.v.KeyHash() {
		t.Fatalf("OpenQuorum(2, served) = %v, want w2's listed key missing", err)
	}
	if _, err := checkpoint.OpenQuorum(h.Signed, lv, 1, w1key.v, w2key.v); err != nil {
		t.Fatalf("OpenQuorum(1, served) = %v", err)
	}
	if n := strings.Count(logOut.String(), "witness did not cosign"); n != 1 {
		t.Errorf("the refused answers were logged %d times, want once:\n%s", n, logOut)
	}
}

// TestWitnessingResyncs: a witness that cosigned a larger size before
// (the log's earlier run) answers 409 with its size; the log sends the
// proof from there and is cosigned.
func TestWitnessingResyncs(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{}
	k := newKeyPair(t, "w.example")
	l, st, vkey := newRequiredLog(t, clock, k.v)
	w := k.witness(t, vkey, filepath.Join(t.TempDir(), "w.state"))
	appendLeaves(t, st, 0, 300)
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	h, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddCheckpoint(ctx, 0, nil, h.Signed); err != nil {
		t.Fatal(err)
	}
	appendLeaves(t, st, 300, 20)
	var olds []int64
	var mu sync.Mutex
	spy := witnessFunc(func(ctx context.Context, old int64, proof [][]byte, signed []byte) ([]byte, error) {
		mu.Lock()
		olds = append(olds, old)
		mu.Unlock()
		return w.AddCheckpoint(ctx, old, proof, signed)
	})
	runWitnessing(t, &tlog.Witnessing{Log: l, Interval: 10 * time.Millisecond, Witnesses: []tlog.RemoteWitness{{Name: "w", Key: k.v, Witness: spy}}})
	waitFor(t, "the checkpoint of 320 cosigned", func() bool { h, err := l.Cosigned(); return err == nil && h.Size == 320 })
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(olds[:2]) != "[0 300]" {
		t.Errorf("old sizes offered = %v, want 0 (409: the witness has 300), then 300", olds)
	}
}

// witnessFunc adapts a function to tlog.Witness.
type witnessFunc func(ctx context.Context, old int64, proof [][]byte, signed []byte) ([]byte, error)

func (f witnessFunc) AddCheckpoint(ctx context.Context, old int64, proof [][]byte, signed []byte) ([]byte, error) {
	return f(ctx, old, proof, signed)
}

// keyPair is a witness's key, made before the log it will witness.
type keyPair struct {
	skey string
	v    *checkpoint.CosignatureVerifier
}

func newKeyPair(t *testing.T, name string) keyPair {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateCosignerKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := checkpoint.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{skey, v}
}

func (k keyPair) witness(t *testing.T, logKey, stateFile string) *witness.Witness {
	t.Helper()
	c, err := checkpoint.NewCosigner(k.skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Cosigner: c, Logs: []string{logKey}, State: witness.NewFileState(stateFile)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCosignatureForOlderCheckpoint: a cosignature that arrives after a
// newer checkpoint was signed still counts for the one it is on, which
// the log then serves while the newer one waits.
func TestCosignatureForOlderCheckpoint(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{}
	k := newKeyPair(t, "w.example")
	l, st, vkey := newRequiredLog(t, clock, k.v)
	w := k.witness(t, vkey, filepath.Join(t.TempDir(), "w.state"))
	appendLeaves(t, st, 0, 3)
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	three, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := w.AddCheckpoint(ctx, 0, nil, three.Signed)
	if err != nil {
		t.Fatal(err)
	}
	appendLeaves(t, st, 3, 2)
	if h, err := l.Latest(ctx); err != nil || h.Size != 5 {
		t.Fatalf("Latest = %+v, %v; want size 5", h, err)
	}
	if err := l.AddCosignatures(k.v, 3, answer); err != nil {
		t.Fatalf("AddCosignatures(size 3) = %v", err)
	}
	h, err := l.Cosigned()
	if err != nil || h.Size != 3 {
		t.Fatalf("Cosigned() = %+v, %v; want the cosigned checkpoint of 3", h, err)
	}
	lv, _ := checkpoint.NewVerifier(vkey)
	if _, err := checkpoint.Open(h.Signed, lv, k.v); err != nil {
		t.Fatalf("served checkpoint: %v", err)
	}
	// An answer by another key is refused with what was answered.
	other := newKeyPair(t, "w.example")
	ow := other.witness(t, vkey, filepath.Join(t.TempDir(), "o.state"))
	oa, err := ow.AddCheckpoint(ctx, 0, nil, three.Signed)
	if err != nil {
		t.Fatal(err)
	}
	var nc *tlog.NoCosignatureError
	if err := l.AddCosignatures(k.v, 3, oa); !errors.As(err, &nc) || nc.KeyHash != k.v.KeyHash() || !bytes.Equal(nc.Answer, oa) {
		t.Errorf("AddCosignatures(another key's answer) = %v, want *NoCosignatureError", err)
	}
	clock.Advance(time.Hour)
	if h, err := l.Cosigned(); err != nil || h.Size != 5 {
		t.Errorf("Cosigned() after WitnessWait = %+v, %v; want the latest, of 5", h, err)
	}
}

// TestWitnessingWitnessAhead: a witness that cosigned a larger tree of the
// log than the log has (the log was restored from an old backup) is
// reported as an error with both sizes, and not asked to go backwards.
func TestWitnessingWitnessAhead(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := checkpoint.GenerateKey(rand.Reader, "example/restored")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := checkpoint.NewSigner(skey)
	open := func(n int) (*tlog.Log, *sqlite.Store) {
		st, err := sqlite.Open(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		appendLeaves(t, st, 0, n)
		l := tlog.New(tlog.Config{Store: st, Origin: "example/restored", Signer: signer, Verifier: vkey, Interval: 10 * time.Millisecond})
		if err := l.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(ctx) })
		return l, st
	}
	k := newKeyPair(t, "w.example")
	w := k.witness(t, vkey, filepath.Join(t.TempDir(), "w.state"))
	long, _ := open(20)
	h, err := long.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddCheckpoint(ctx, 0, nil, h.Signed); err != nil {
		t.Fatal(err)
	}
	short, _ := open(5)
	logOut := &syncLog{}
	runWitnessing(t, &tlog.Witnessing{Log: short, Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logOut, nil)),
		Witnesses: []tlog.RemoteWitness{{Name: "w", Key: k.v, Witness: w}}})
	waitFor(t, "the witness ahead reported", func() bool {
		return strings.Contains(logOut.String(), "level=ERROR") && strings.Contains(logOut.String(), "a tree of 20 leaves for this log, larger than its 5")
	})
	if size, _, _ := w.LastSize(ctx, "example/restored"); size != 20 {
		t.Errorf("witness size = %d, want 20 still", size)
	}
}
