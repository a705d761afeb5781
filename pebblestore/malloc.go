package pebblestore

import (
	"sync/atomic"
	"time"

	"domicile/internal/cmalloc"
)

// Built with cgo (as domicile is, for PKCS#11), Pebble allocates its
// block cache and memtables with C's malloc, outside the Go heap. glibc's
// malloc keeps what is freed for reuse, in one arena per thread that
// contended for one (up to 8 per core), and returns to the system only
// what lies at the top of an arena. A block cache churns: blocks are
// evicted as others are read, the whole database passes through it when
// the cell checks it on open (CheckDatabase), and it shrinks as the
// memtables, counted in it, grow. Measured at a million subjects, glibc
// then held four to five times what the cache held (150-175 MiB of
// arenas for a cache of 30-40 MiB), and that alone put the process's
// peak resident set over its budget (doc/performance.md, "Growth, both
// stores").
//
// So a store returns the allocator's free pages to the system
// (malloc_trim) after the database check and, while its database reads
// blocks, flushes or compacts, at most every trimEvery. On the same data
// and load, measured one step at a time: no trim 364 MiB; a trim every
// 5 s with the arenas bounded at 2, 296 MiB; at 1, 267 MiB; in the growth
// run a write load still left 40 MiB free between trims 5 s apart, hence
// 1 s. Bounding the arenas at 1 also cost reads about a tenth of their
// throughput against the baseline (every thread's C allocations behind
// one lock), and with a trim every second the growth run stays under
// budget without it: the arenas are left as glibc makes them. malloc_trim took 3 ms idle and 10-34 ms under load 5 s apart,
// holding the arena it walks. Elsewhere than glibc it is a no-op
// (internal/cmalloc).
const trimEvery = time.Second

var lastTrim atomic.Int64 // Unix nanoseconds

// releaseMalloc returns the C allocator's free pages to the system: now
// if force, otherwise unless that was done less than trimEvery ago (every
// busy store calls it on its ticks; one of them trims).
func releaseMalloc(force bool) {
	now := time.Now().UnixNano()
	last := lastTrim.Load()
	if !force && now-last < int64(trimEvery) {
		return
	}
	if !lastTrim.CompareAndSwap(last, now) && !force {
		return
	}
	cmalloc.Trim()
}

// maybeTrim calls releaseMalloc if s's database read a block into its
// cache, flushed or compacted since s last looked, at most every
// trimEvery: an idle process does not walk the allocator. Only the
// store's tile-sync goroutine calls it.
func (s *Store) maybeTrim(now time.Time) {
	if now.Sub(s.trimLook) < trimEvery {
		return
	}
	s.trimLook = now
	m := s.db.Metrics()
	churn := m.BlockCache.Misses + m.Flush.Count + m.Compact.Count
	if churn == s.trimChurn {
		return
	}
	s.trimChurn = churn
	releaseMalloc(false)
}
