// Package commitstats keeps a cell store writer's cumulative
// domicile.CommitStats: written by the one writer goroutine, read by any.
package commitstats

import (
	"sync/atomic"
	"time"

	"domicile"
)

// Counters is safe for concurrent use; the zero value is ready.
type Counters struct {
	groups, batches atomic.Uint64
	busy, commit    atomic.Int64 // nanoseconds
}

// Add counts one committed group of batches, the writer busy with it for
// busy, of which commit in the commit itself.
func (c *Counters) Add(batches int, busy, commit time.Duration) {
	c.groups.Add(1)
	c.batches.Add(uint64(batches))
	c.busy.Add(int64(busy))
	c.commit.Add(int64(commit))
}

// Stats returns the counters.
func (c *Counters) Stats() domicile.CommitStats {
	return domicile.CommitStats{Groups: c.groups.Load(), Batches: c.batches.Load(),
		Busy: time.Duration(c.busy.Load()), Commit: time.Duration(c.commit.Load())}
}
