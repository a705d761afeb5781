//go:build !cgo || !linux

package pebblestore

// Without cgo Pebble allocates its cache and memtables in the Go heap,
// and the Go runtime returns what it frees: nothing to tune.

const cMalloc = false

func limitArenas(int) {}

func trimMalloc() {}
