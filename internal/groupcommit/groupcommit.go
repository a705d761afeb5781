// Package groupcommit is the group-commit engine both cell stores share:
// one writer goroutine takes the batches waiting for it, up to a bound,
// and hands them to the store's Run function, which commits them in one
// durable transaction. Callers wait for their own batch's outcome.
//
// The engine owns the queue, the grouping, the retries of a group that
// failed with an error the store calls retryable (a serialization
// failure), the counters ([domicile.CommitStats]) and the shutdown; the
// store owns the SQL. Tasks ([Engine.Do]) run on the writer alone,
// between groups, so that a store can rebuild what only its writer
// touches.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"time"

	"domicile"
	"domicile/internal/commitstats"
)

// RunFunc commits a group of batches in one transaction. It returns each
// batch's error (errs[i] for group[i]; nil if it committed), or err for
// the whole group when nothing committed or the outcome is unknown; and
// how long the commit itself took, for the counters. It is called only
// from the writer goroutine.
type RunFunc func(group []*domicile.Batch) (errs []error, commit time.Duration, err error)

// Config configures an Engine.
type Config struct {
	// MaxGroup bounds how many batches share one transaction (at least 1).
	MaxGroup int
	// Run commits a group.
	Run RunFunc
	// Retryable reports whether a group that failed with err as a whole
	// may be run again as it is (nil: never).
	Retryable func(err error) bool
	// Retries bounds how often a group is run again.
	Retries int
	// Closed is the error Commit and Do return after Close.
	Closed error
}

// ErrClosed is Config.Closed's default.
var ErrClosed = errors.New("groupcommit: closed")

// Engine is a running writer. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	stats commitstats.Counters
	wg    sync.WaitGroup

	// mu guards closed and the sending side of jobs: Commit queues under
	// the read lock, Close sets closed under the write lock and then
	// closes jobs, so that no job is queued after the writer's last one.
	mu     sync.RWMutex
	closed bool
	jobs   chan *job
}

// A job is a batch to commit or, when fn is set, a task the writer runs
// alone between groups.
type job struct {
	b    *domicile.Batch
	fn   func() error
	done chan error
}

// New starts an engine's writer. If MaxGroup < 1 or Run is nil, New
// panics.
func New(cfg Config) *Engine {
	if cfg.MaxGroup < 1 || cfg.Run == nil {
		panic("groupcommit: MaxGroup < 1 or no Run")
	}
	if cfg.Closed == nil {
		cfg.Closed = ErrClosed
	}
	e := &Engine{cfg: cfg, jobs: make(chan *job, cfg.MaxGroup)}
	e.wg.Add(1)
	go e.writer()
	return e
}

// Commit queues b and waits until the writer committed or failed it. A
// batch once queued is waited for even if ctx ends, so that a caller
// never reports failure for a write that became durable; ctx bounds only
// the wait for room in the queue.
func (e *Engine) Commit(ctx context.Context, b *domicile.Batch) error {
	return e.queue(ctx, &job{b: b, done: make(chan error, 1)})
}

// Do runs fn on the writer, alone, between groups, and returns its
// error.
func (e *Engine) Do(ctx context.Context, fn func() error) error {
	return e.queue(ctx, &job{fn: fn, done: make(chan error, 1)})
}

func (e *Engine) queue(ctx context.Context, j *job) error {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return e.cfg.Closed
	}
	select {
	case e.jobs <- j:
		e.mu.RUnlock()
	case <-ctx.Done():
		e.mu.RUnlock()
		return ctx.Err()
	}
	return <-j.done
}

// Stats returns the writer's cumulative counters.
func (e *Engine) Stats() domicile.CommitStats { return e.stats.Stats() }

// Close stops the writer after the jobs already queued ran; Commit and Do
// fail with Config.Closed afterwards. It is safe to call more than once.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.wg.Wait()
		return
	}
	e.closed = true
	close(e.jobs)
	e.mu.Unlock()
	e.wg.Wait()
}

func (e *Engine) writer() {
	defer e.wg.Done()
	// The loop ends when Close closes jobs, after every queued job ran.
	for first := range e.jobs {
		if first.fn != nil {
			first.done <- first.fn()
			continue
		}
		group := []*job{first}
		var task *job
	fill:
		for len(group) < e.cfg.MaxGroup {
			select {
			case j, ok := <-e.jobs:
				if !ok {
					break fill
				}
				if j.fn != nil {
					task = j
					break fill
				}
				group = append(group, j)
			default:
				break fill
			}
		}
		e.run(group)
		if task != nil {
			task.done <- task.fn()
		}
	}
}

// run commits group, again while it fails retryably, and answers each
// job.
func (e *Engine) run(group []*job) {
	batches := make([]*domicile.Batch, len(group))
	for i, j := range group {
		batches[i] = j.b
	}
	t0 := time.Now()
	var errs []error
	var err error
	for try := 0; ; try++ {
		var commit time.Duration
		errs, commit, err = e.cfg.Run(batches)
		if err == nil {
			e.stats.Add(len(group), time.Since(t0), commit)
			break
		}
		if e.cfg.Retryable == nil || !e.cfg.Retryable(err) || try >= e.cfg.Retries {
			break
		}
	}
	for i, j := range group {
		switch {
		case err != nil:
			j.done <- err
		case i < len(errs):
			j.done <- errs[i]
		default:
			j.done <- nil
		}
	}
}
