// Package cmalloc tunes the C library's allocator, which Pebble uses for
// its block cache and memtables in a cgo build: it bounds glibc's arenas
// and returns their free pages to the system. Elsewhere than glibc, or
// without cgo, it does nothing. See pebblestore's malloc.go for why.
package cmalloc
