//go:build cgo && linux

package pebblestore

/*
#include <malloc.h>

static void pebblestore_limit_arenas(int n) {
#ifdef __GLIBC__
	mallopt(M_ARENA_MAX, n);
#endif
}

static void pebblestore_trim(void) {
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
*/
import "C"

// cMalloc says that Pebble allocates with C's malloc here, which
// limitArenas and trimMalloc tune.
const cMalloc = true

// limitArenas bounds the C allocator's arenas (glibc's M_ARENA_MAX).
func limitArenas(n int) { C.pebblestore_limit_arenas(C.int(n)) }

// trimMalloc returns the C allocator's free pages to the system (glibc's
// malloc_trim).
func trimMalloc() { C.pebblestore_trim() }
