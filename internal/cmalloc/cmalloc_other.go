//go:build !cgo || !linux

package cmalloc

// Enabled is false: without cgo on Linux there is no C allocator to tune
// (Pebble, for one, then allocates in the Go heap).
const Enabled = false

// Trim does nothing in this build.
func Trim() {}
