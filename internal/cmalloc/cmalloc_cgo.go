//go:build cgo && linux

package cmalloc

/*
#include <malloc.h>

static void cmalloc_limit_arenas(int n) {
#ifdef __GLIBC__
	mallopt(M_ARENA_MAX, n);
#endif
}

static void cmalloc_trim(void) {
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
*/
import "C"

// Enabled says that this build allocates C memory with the C library's
// malloc (cgo on Linux), which LimitArenas and Trim tune.
const Enabled = true

// LimitArenas bounds the allocator's arenas at n (glibc's M_ARENA_MAX).
// Threads that already have an arena keep it.
func LimitArenas(n int) { C.cmalloc_limit_arenas(C.int(n)) }

// Trim returns the allocator's free pages to the system (glibc's
// malloc_trim(0)). It locks each arena in turn while it walks it.
func Trim() { C.cmalloc_trim() }
