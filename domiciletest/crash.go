package domiciletest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"domicile"
)

// CrashWriter is the child's half of a crash test: it commits batches to s
// from several goroutines until ctx ends or the process is killed, and
// after each Commit that returned nil writes one line to w:
//
//	ack <writer> <batch> <index of its first event>
//
// A parent process reads these lines, kills the child with SIGKILL,
// reopens the store and calls [CheckCrashRecovery].
func CrashWriter(ctx context.Context, s domicile.CellStore, w io.Writer) error {
	const writers = 8
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		ref := Ref(fmt.Sprint("crash ", g))
		if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{putSubject(ref)}}); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				b, err := crashBatch(ctx, s, g, k)
				if err != nil {
					errs <- err
					return
				}
				if err := s.Commit(ctx, b); err != nil {
					errs <- fmt.Errorf("commit %d/%d: %w", g, k, err)
					return
				}
				mu.Lock()
				_, err = fmt.Fprintf(w, "ack %d %d %d\n", g, k, b.Events[0].Index)
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// crashBatch is writer g's batch k: a record, every fifth batch an object
// with a blob, and one to three events, all derived from (g, k).
func crashBatch(ctx context.Context, s domicile.CellStore, g, k int) (*domicile.Batch, error) {
	ref := Ref(fmt.Sprint("crash ", g))
	r := record(ref, "crash", fmt.Sprint(k), 1)
	b := &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: r, Expect: domicile.NoVersion}}}
	if k%5 == 0 {
		bw, err := s.Blobs().Create(ctx)
		if err != nil {
			return nil, err
		}
		data := content(1000+k, byte(g))
		if _, err := bw.Write(data); err != nil {
			bw.Abort()
			return nil, err
		}
		key, err := bw.Commit()
		if err != nil {
			return nil, err
		}
		b.Ops = append(b.Ops, &domicile.PutObject{Object: domicile.StoredObject{
			Ref: ref, Name: fmt.Sprint("o", k), Version: 1, ContentType: "application/octet-stream",
			Size: int64(len(data)), SHA256: "-", Blob: key, Updated: t0}})
	}
	for i := range 1 + k%3 {
		e := NewEntry(ref)
		e.Leaf = fmt.Appendf(nil, "crash %d %d %d", g, k, i)
		b.Events = append(b.Events, e)
	}
	return b, nil
}

// CheckCrashRecovery checks a store reopened after a [CrashWriter] was
// killed, given the child's output: every acknowledged batch is there
// whole, with its events at the indexes reported, the log is whole
// (see [CheckLog]), and the store accepts and logs new batches.
func CheckCrashRecovery(tb testing.TB, ctx context.Context, s domicile.CellStore, output []byte) {
	tb.Helper()
	acks := 0
	sc := bufio.NewScanner(bytes.NewReader(output))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ack ") {
			continue
		}
		var g, k int
		var idx int64
		if _, err := fmt.Sscanf(line, "ack %d %d %d", &g, &k, &idx); err != nil {
			tb.Fatalf("malformed acknowledgement %q: %v", line, err)
		}
		acks++
		ref := Ref(fmt.Sprint("crash ", g))
		if _, err := s.Record(ctx, ref, "crash", fmt.Sprint(k)); err != nil {
			tb.Errorf("acknowledged batch %d/%d lost its record: %v", g, k, err)
		}
		if k%5 == 0 {
			o, err := s.Object(ctx, ref, fmt.Sprint("o", k))
			if err != nil {
				tb.Errorf("acknowledged batch %d/%d lost its object: %v", g, k, err)
			} else if r, err := s.Blobs().Open(ctx, o.Blob); err != nil {
				tb.Errorf("acknowledged batch %d/%d lost its blob: %v", g, k, err)
			} else {
				if r.Size() != o.Size {
					tb.Errorf("batch %d/%d: blob of %d bytes, want %d", g, k, r.Size(), o.Size)
				}
				r.Close()
			}
		}
		n := int64(1 + k%3)
		evs, err := s.Events(ctx, idx, idx+n)
		if err != nil || int64(len(evs)) != n {
			tb.Errorf("acknowledged batch %d/%d: Events(%d, %d) = %d events, %v", g, k, idx, idx+n, len(evs), err)
			continue
		}
		for i, e := range evs {
			if want := fmt.Sprintf("crash %d %d %d", g, k, i); string(e.Leaf) != want {
				tb.Errorf("event %d = %q, want acknowledged %q", e.Index, e.Leaf, want)
			}
		}
	}
	if acks == 0 {
		tb.Fatalf("the crashed writer acknowledged no batch; its output:\n%s", output)
	}
	size := int64(len(CheckLog(tb, ctx, s)))
	e := NewEntry(Ref("after crash"))
	MustCommit(tb, ctx, s, &domicile.Batch{Events: []*domicile.LogEntry{e}})
	if e.Index != size {
		tb.Errorf("first event after recovery has index %d, want %d", e.Index, size)
	}
	CheckLog(tb, ctx, s)
	tb.Logf("%d acknowledged batches survived; log of %d entries verified", acks, size)
}
