package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"domicile"
)

// mark is a batch whose one event's Salt names it, so that Run can tell
// batches apart.
func mark(s string) *domicile.Batch {
	return &domicile.Batch{Events: []*domicile.LogEntry{{Salt: []byte(s)}}}
}

func name(b *domicile.Batch) string { return string(b.Events[0].Salt) }

// TestGroupsWaitingBatches holds the writer in its first group while
// more batches queue: the next group takes them all, up to MaxGroup, and
// each caller gets its own batch's outcome.
func TestGroupsWaitingBatches(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	e := New(Config{MaxGroup: 8, Run: func(g []*domicile.Batch) ([]error, time.Duration, error) {
		mu.Lock()
		sizes = append(sizes, len(g))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-gate
		}
		errs := make([]error, len(g))
		for i, b := range g {
			if name(b) == "bad" {
				errs[i] = domicile.ErrVersionMismatch
			}
		}
		return errs, time.Millisecond, nil
	}})
	defer e.Close()
	ctx := context.Background()
	firstDone := make(chan error)
	go func() { firstDone <- e.Commit(ctx, mark("first")) }()
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := "ok"
			if i%3 == 0 {
				n = "bad"
			}
			results[i] = e.Commit(ctx, mark(n))
		}()
	}
	waitUntil(t, func() bool { return len(e.jobs) == 8 })
	close(gate)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatalf("first batch: %v", err)
	}
	for i, err := range results {
		if want := i%3 == 0; errors.Is(err, domicile.ErrVersionMismatch) != want || (!want && err != nil) {
			t.Errorf("batch %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != 8 {
		t.Errorf("group sizes %v, want [1 8]", sizes)
	}
	if st := e.Stats(); st.Groups != 2 || st.Batches != 9 || st.Commit != 2*time.Millisecond {
		t.Errorf("Stats = %+v, want 2 groups of 9 batches, 2ms committing", st)
	}
}

var errRetry = errors.New("serialization failure")

// TestRetries runs a group again while it fails retryably, up to
// Retries times; other errors and the last retryable one reach every
// caller of the group.
func TestRetries(t *testing.T) {
	for _, tt := range []struct {
		name      string
		failures  int
		retries   int
		runs      int
		wantError bool
	}{
		{"succeeds on the third try", 2, 3, 3, false},
		{"gives up after the retries", 5, 2, 3, true},
		{"no retries", 1, 0, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int32
			e := New(Config{MaxGroup: 4, Retries: tt.retries, Retryable: func(err error) bool { return errors.Is(err, errRetry) },
				Run: func(g []*domicile.Batch) ([]error, time.Duration, error) {
					if int(runs.Add(1)) <= tt.failures {
						return nil, 0, errRetry
					}
					return make([]error, len(g)), 0, nil
				}})
			defer e.Close()
			err := e.Commit(context.Background(), mark("x"))
			if (err != nil) != tt.wantError || (err != nil && !errors.Is(err, errRetry)) {
				t.Errorf("Commit = %v, want error %v", err, tt.wantError)
			}
			if int(runs.Load()) != tt.runs {
				t.Errorf("Run called %d times, want %d", runs.Load(), tt.runs)
			}
			if st := e.Stats(); (st.Groups == 1) == tt.wantError {
				t.Errorf("Stats = %+v: a failed group is not counted, a committed one is", st)
			}
		})
	}
}

// TestDoRunsAlone: a task never runs while a group does, and runs after
// the batches queued before it.
func TestDoRunsAlone(t *testing.T) {
	var inRun atomic.Bool
	var order []string
	var mu sync.Mutex
	e := New(Config{MaxGroup: 64, Run: func(g []*domicile.Batch) ([]error, time.Duration, error) {
		inRun.Store(true)
		defer inRun.Store(false)
		mu.Lock()
		for _, b := range g {
			order = append(order, name(b))
		}
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return nil, 0, nil
	}})
	defer e.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(2)
		go func() { defer wg.Done(); e.Commit(ctx, mark("b")) }()
		go func() {
			defer wg.Done()
			err := e.Do(ctx, func() error {
				if inRun.Load() {
					t.Error("a task ran during a group")
				}
				mu.Lock()
				order = append(order, "task")
				mu.Unlock()
				return errRetry
			})
			if !errors.Is(err, errRetry) {
				t.Errorf("Do = %v, want the task's error", err)
			}
		}()
	}
	wg.Wait()
	if len(order) != 40 {
		t.Errorf("%d batches and tasks ran, want 40", len(order))
	}
}

// TestClose: the jobs queued before Close run; after it, Commit and Do
// fail with the configured error at once; a second Close is harmless.
func TestClose(t *testing.T) {
	closed := errors.New("store closed")
	gate := make(chan struct{})
	var committed, started atomic.Int32
	e := New(Config{MaxGroup: 2, Closed: closed, Run: func(g []*domicile.Batch) ([]error, time.Duration, error) {
		started.Add(int32(len(g)))
		<-gate
		committed.Add(int32(len(g)))
		return nil, 0, nil
	}})
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Commit(ctx, mark("q")); err != nil {
				t.Errorf("a batch queued before Close: %v", err)
			}
		}()
	}
	// All three in the writer's hands: in its running group or queued.
	waitUntil(t, func() bool { return int(started.Load())+len(e.jobs) == 3 })
	go func() { time.Sleep(10 * time.Millisecond); close(gate) }()
	e.Close()
	wg.Wait()
	if committed.Load() != 3 {
		t.Errorf("%d batches committed, want the 3 queued before Close", committed.Load())
	}
	if err := e.Commit(ctx, mark("late")); !errors.Is(err, closed) {
		t.Errorf("Commit after Close = %v, want %v", err, closed)
	}
	if err := e.Do(ctx, func() error { return nil }); !errors.Is(err, closed) {
		t.Errorf("Do after Close = %v, want %v", err, closed)
	}
	e.Close()
}

// TestCommitContext: a caller whose context ends while the queue is full
// gets its error, and its batch is never run.
func TestCommitContext(t *testing.T) {
	gate := make(chan struct{})
	var runs atomic.Int32
	e := New(Config{MaxGroup: 1, Run: func(g []*domicile.Batch) ([]error, time.Duration, error) {
		runs.Add(1)
		<-gate
		return nil, 0, nil
	}})
	defer e.Close()
	go e.Commit(context.Background(), mark("running"))
	waitUntil(t, func() bool { return runs.Load() == 1 })
	go e.Commit(context.Background(), mark("queued"))
	waitUntil(t, func() bool { return len(e.jobs) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Commit(ctx, mark("too late")); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a full queue and an ended context = %v", err)
	}
	close(gate)
}

func TestNewPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with MaxGroup 0 did not panic")
		}
	}()
	New(Config{})
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
