package hashcache

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestCacheMatchesStore appends leaves keeping every stored hash in a map
// (the "store") and in a small cache, and checks that what the cache
// returns is always what the store holds, across evictions and rollbacks.
func TestCacheMatchesStore(t *testing.T) {
	store := map[int64]tlog.Hash{}
	c := New(16)
	read := tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			if h, ok := c.Get(id); ok {
				if h != store[id] {
					t.Fatalf("cache holds a different hash at %d", id)
				}
			}
			out[i] = store[id]
		}
		return out, nil
	})
	appendLeaf := func(n int64) {
		hs, err := tlog.StoredHashes(n, []byte{byte(n), byte(n >> 8)}, read)
		if err != nil {
			t.Fatal(err)
		}
		base := tlog.StoredHashIndex(0, n)
		for i, h := range hs {
			store[base+int64(i)] = h
			c.Put(base+int64(i), h)
		}
	}
	for n := int64(0); n < 300; n++ {
		appendLeaf(n)
	}
	// Roll back the last 20 leaves: the cache must forget them.
	c.Rollback(280)
	for id := tlog.StoredHashIndex(0, 280); id < tlog.StoredHashIndex(0, 300); id++ {
		if _, ok := c.Get(id); ok {
			t.Fatalf("hash %d survived the rollback", id)
		}
		delete(store, id)
	}
	for n := int64(280); n < 400; n++ {
		appendLeaf(n)
	}
	if len(c.m) > 16 {
		t.Fatalf("cache holds %d hashes, limit 16", len(c.m))
	}
}
