package pebblestore

import (
	"sync"
	"sync/atomic"
	"time"

	"domicile/internal/cmalloc"
)

// Built with cgo (as domicile is, for PKCS#11), Pebble allocates its
// block cache and memtables with C's malloc, outside the Go heap. glibc's
// malloc keeps what is freed for reuse, in one arena per thread that
// contended for one, up to 8 per core, and returns to the system only
// what lies at the top of an arena. A block cache churns: blocks are
// evicted as others are read, the whole database passes through it when
// the cell checks it on open (CheckDatabase), and it shrinks as the
// memtables, counted in it, grow. Measured at a million subjects, glibc
// then held four to five times what the cache held (over 150 MiB for a
// cache of 30), and the process's resident set was over the budget for
// that alone (doc/performance.md, "Memory at a million subjects").
//
// So a store bounds the arenas at mallocArenas when the first store opens
// (before Pebble allocates), and returns the allocator's free pages to the
// system (malloc_trim) after the database check and at most every
// trimEvery while a store is open. Elsewhere than glibc both are no-ops.
const (
	mallocArenas = 2
	trimEvery    = 5 * time.Second
)

var (
	arenasOnce sync.Once
	lastTrim   atomic.Int64 // Unix nanoseconds
)

// tuneMalloc bounds the C allocator's arenas, once per process.
func tuneMalloc() { arenasOnce.Do(func() { cmalloc.LimitArenas(mallocArenas) }) }

// releaseMalloc returns the C allocator's free pages to the system: now
// if force, otherwise unless that was done less than trimEvery ago (every
// open store calls it on its ticks; one of them trims).
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
