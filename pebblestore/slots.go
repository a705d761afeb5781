package pebblestore

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"domicile"
)

// SlotCacheEntries bounds the subject slots a store keeps in memory, so
// that a request finds its subject's rows without reading the slot.
const SlotCacheEntries = 100_000

// nameKeyLen is the length of the key of subject names.
const nameKeyLen = 32

// setNameKey sets the key of subject names.
func (s *Store) setNameKey(key []byte) {
	s.nameKey = key
	s.macs.New = func() any { return hmac.New(sha256.New, key) }
}

// nameOf returns the key under which ref's slot is stored: N, then
// HMAC-SHA256 of the reference under the store's name key.
func (s *Store) nameOf(ref domicile.SubjectRef) []byte {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(ref[:])
	name := m.Sum(make([]byte, 1, 1+sha256.Size))
	s.macs.Put(m)
	name[0] = tName
	return name
}

// newSlot draws a slot.
func (s *Store) newSlot() (slot, error) {
	var sl slot
	if _, err := io.ReadFull(s.rand, sl[:]); err != nil {
		return sl, fmt.Errorf("pebblestore: new slot: %w", err)
	}
	return sl, nil
}

// slotOf returns ref's slot, and false when the store holds nothing of
// the subject. It reads the slot only when the cache does not have it.
func (s *Store) slotOf(ref domicile.SubjectRef) (slot, bool, error) {
	if sl, ok := s.slots.get(ref); ok {
		return sl, true, nil
	}
	// The cache changes only under the subject's stripe, so that what a
	// reader puts there cannot be a slot an erasure just dropped.
	l := &s.locks[ref[0]]
	l.Lock()
	defer l.Unlock()
	return s.lookupSlot(ref)
}

// lookupSlot is slotOf for a caller holding ref's stripe.
func (s *Store) lookupSlot(ref domicile.SubjectRef) (slot, bool, error) {
	if sl, ok := s.slots.get(ref); ok {
		return sl, true, nil
	}
	v, err := s.get(s.nameOf(ref))
	if errors.Is(err, domicile.ErrNotFound) {
		return slot{}, false, nil
	}
	if err != nil {
		return slot{}, false, err
	}
	if len(v) != slotLen {
		return slot{}, false, fmt.Errorf("pebblestore: slot of a subject: %w", errMalformed)
	}
	sl := slot(v)
	s.slots.put(ref, sl)
	return sl, true, nil
}

// slotCache maps subject references to their slots, bounded. It has one
// shard per stripe (the reference's first byte); entries are added and
// removed only by holders of that stripe's lock, so a slot in the cache
// is the subject's slot in the database, or one its holder is committing.
type slotCache struct {
	perShard int
	shards   [stripes]slotShard
}

type slotShard struct {
	mu sync.RWMutex
	m  map[domicile.SubjectRef]slot
}

// newSlotCache returns a cache of at most about entries slots.
func newSlotCache(entries int) *slotCache {
	c := &slotCache{perShard: max(entries/stripes, 1)}
	for i := range c.shards {
		c.shards[i].m = map[domicile.SubjectRef]slot{}
	}
	return c
}

func (c *slotCache) get(ref domicile.SubjectRef) (slot, bool) {
	sh := &c.shards[ref[0]]
	sh.mu.RLock()
	sl, ok := sh.m[ref]
	sh.mu.RUnlock()
	return sl, ok
}

// put caches ref's slot; in a full shard, it first drops one entry
// (whichever the map's iteration gives first).
func (c *slotCache) put(ref domicile.SubjectRef, sl slot) {
	sh := &c.shards[ref[0]]
	sh.mu.Lock()
	if _, ok := sh.m[ref]; !ok && len(sh.m) >= c.perShard {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[ref] = sl
	sh.mu.Unlock()
}

func (c *slotCache) del(ref domicile.SubjectRef) {
	sh := &c.shards[ref[0]]
	sh.mu.Lock()
	delete(sh.m, ref)
	sh.mu.Unlock()
}

// len returns the number of cached slots.
func (c *slotCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
