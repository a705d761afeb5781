//go:build cgo && linux

package cmalloc

/*
#include <malloc.h>

static void cmalloc_trim(void) {
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
*/
import "C"

// Enabled says that this build allocates C memory with the C library's
// malloc (cgo on Linux), whose free pages Trim returns.
const Enabled = true

// Trim returns the allocator's free pages to the system (glibc's
// malloc_trim(0)). It locks each arena in turn while it walks it.
func Trim() { C.cmalloc_trim() }
