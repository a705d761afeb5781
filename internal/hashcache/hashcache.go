// Package hashcache keeps the Merkle hashes a cell store wrote most
// recently. Appending a leaf reads, on average, one earlier stored hash,
// nearly always a recent one (golang.org/x/mod/sumdb/tlog's layout), so
// with this cache an append rarely reads the database. Both cell stores
// use it from their single writer goroutine; it is not safe for concurrent
// use.
package hashcache

import "golang.org/x/mod/sumdb/tlog"

// Cache holds up to a fixed number of stored hashes by stored-hash index,
// forgetting the oldest first.
type Cache struct {
	ring []int64
	m    map[int64]tlog.Hash
	next int
}

// New returns a cache of n hashes. If n ≤ 0, New panics.
func New(n int) *Cache {
	if n <= 0 {
		panic("hashcache: size must be positive")
	}
	c := &Cache{ring: make([]int64, n), m: make(map[int64]tlog.Hash, n)}
	for i := range c.ring {
		c.ring[i] = -1
	}
	return c
}

// Put records the hash stored at index id.
func (c *Cache) Put(id int64, h tlog.Hash) {
	if old := c.ring[c.next]; old >= 0 {
		delete(c.m, old)
	}
	c.ring[c.next] = id
	c.next = (c.next + 1) % len(c.ring)
	c.m[id] = h
}

// Get returns the hash stored at index id, if cached.
func (c *Cache) Get(id int64) (tlog.Hash, bool) {
	h, ok := c.m[id]
	return h, ok
}

// Rollback forgets the hashes of leaves from size on, after a batch that
// appended them was rolled back.
func (c *Cache) Rollback(size int64) {
	limit := tlog.StoredHashIndex(0, size)
	for id := range c.m {
		if id >= limit {
			delete(c.m, id)
		}
	}
}
