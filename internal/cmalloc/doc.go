// Package cmalloc returns the C library allocator's free pages to the
// system (glibc's malloc_trim): Pebble allocates its block cache and
// memtables with malloc in a cgo build, and glibc keeps what it frees.
// Elsewhere than glibc, or without cgo, it does nothing. See
// pebblestore's malloc.go for why.
package cmalloc
