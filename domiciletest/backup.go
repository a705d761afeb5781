package domiciletest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"domicile"
)

// ackBuffer collects the lines [CrashWriter] writes, from its several
// goroutines, and counts its acknowledgements.
type ackBuffer struct {
	mu   sync.Mutex
	cond *sync.Cond
	b    bytes.Buffer
	acks int
	done bool
}

func newAckBuffer() *ackBuffer {
	a := &ackBuffer{}
	a.cond = sync.NewCond(&a.mu)
	return a
}

func (a *ackBuffer) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks += bytes.Count(p, []byte("ack "))
	a.cond.Broadcast()
	return a.b.Write(p)
}

// finish wakes the waiters for good: the writers stopped.
func (a *ackBuffer) finish() {
	a.mu.Lock()
	a.done = true
	a.cond.Broadcast()
	a.mu.Unlock()
}

// wait blocks until n acknowledgements are in or the writers stopped,
// and returns the lines so far.
func (a *ackBuffer) wait(n int) (out []byte, acks int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.acks < n && !a.done {
		a.cond.Wait()
	}
	return bytes.Clone(a.b.Bytes()), a.acks
}

// TestBackup holds a store that is a [domicile.Backuper] to its contract:
// a backup taken while eight goroutines commit records, objects with
// blobs and events ([CrashWriter]) opens as a store of the same kind that
// holds every batch acknowledged before the backup began, whole, with a
// log that verifies and takes new batches ([CheckCrashRecovery]); its
// LogSize is at most the copy's log size; and a backup into a directory
// that exists is refused and leaves it as it was. open opens (creating if
// needed) a store in dir; the suite closes what it opens.
func TestBackup(t *testing.T, open func(t *testing.T, dir string) domicile.CellStore) {
	ctx := context.Background()
	live := open(t, filepath.Join(t.TempDir(), "live"))
	defer live.Close()
	b, ok := live.(domicile.Backuper)
	if !ok {
		t.Fatalf("%T is not a domicile.Backuper", live)
	}

	wctx, stop := context.WithCancel(ctx)
	out := newAckBuffer()
	done := make(chan error, 1)
	go func() {
		err := CrashWriter(wctx, live, out)
		out.finish()
		done <- err
	}()
	// Once the writers have acknowledged a few hundred batches (a few
	// dozen objects among them), a backup while they go on.
	before, n := out.wait(300)
	if n < 300 {
		stop()
		t.Fatalf("the writers stopped after %d batches: %v", n, <-done)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	st, err := b.Backup(ctx, dir)
	out.wait(n + 50)
	stop()
	if werr := <-done; werr != nil && !errors.Is(werr, context.Canceled) {
		t.Fatalf("the writers: %v", werr)
	}
	if err != nil {
		t.Fatalf("Backup while commits run: %v", err)
	}
	if st.Files == 0 || st.Bytes == 0 || st.LogSize == 0 {
		t.Errorf("backup stats %+v: want files, bytes and a log size", st)
	}

	// Refused into a directory that exists, which is left as it was.
	taken := t.TempDir()
	marker := filepath.Join(taken, "keep")
	if err := os.WriteFile(marker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Backup(ctx, taken); err == nil {
		t.Error("a backup into an existing directory was taken")
	}
	if ents, _ := os.ReadDir(taken); len(ents) != 1 {
		t.Errorf("a refused backup changed its directory: %d entries", len(ents))
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}

	copied := open(t, dir)
	defer copied.Close()
	size, err := copied.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size < st.LogSize {
		t.Errorf("the copy's log has %d entries, the backup said it covers %d", size, st.LogSize)
	}
	CheckCrashRecovery(t, ctx, copied, before)
}
