package cell

import (
	"container/list"
	"context"
	"sync"

	"domicile"
)

// Bounds of the cache of sealed records: at most recordCacheSize records
// and recordCacheBytes of bodies (records may be up to 1 MiB), small next
// to the memory budget.
const (
	recordCacheSize  = 20_000
	recordCacheBytes = 32 << 20
)

// recordCache keeps recently written or read records as stored: sealed,
// so it holds no plaintext. The cell is its store's only writer, so it
// keeps the cache exact: every write and delete updates it after its
// commit, and an entry is replaced only by a higher version (a tombstone
// included), so commits finishing out of order cannot bring back an older
// version. It is safe for concurrent use.
type recordCache struct {
	mu    sync.Mutex
	lru   *list.List
	items map[recordKey]*list.Element
	bytes int
}

type recordKey struct {
	ref      domicile.SubjectRef
	kind, id string
}

func newRecordCache() *recordCache {
	return &recordCache{lru: list.New(), items: map[recordKey]*list.Element{}}
}

func (rc *recordCache) get(k recordKey) (*domicile.StoredRecord, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e, ok := rc.items[k]
	if !ok {
		return nil, false
	}
	rc.lru.MoveToFront(e)
	return e.Value.(*domicile.StoredRecord), true
}

// put records r if it is newer than what the cache holds.
func (rc *recordCache) put(r *domicile.StoredRecord) {
	k := recordKey{r.Ref, r.Kind, r.ID}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e, ok := rc.items[k]; ok {
		old := e.Value.(*domicile.StoredRecord)
		if old.Version >= r.Version {
			return
		}
		rc.bytes += len(r.Body) - len(old.Body)
		e.Value = r
		rc.lru.MoveToFront(e)
	} else {
		rc.items[k] = rc.lru.PushFront(r)
		rc.bytes += len(r.Body)
	}
	for rc.lru.Len() > recordCacheSize || rc.bytes > recordCacheBytes {
		old := rc.lru.Back()
		o := old.Value.(*domicile.StoredRecord)
		rc.lru.Remove(old)
		rc.bytes -= len(o.Body)
		delete(rc.items, recordKey{o.Ref, o.Kind, o.ID})
	}
}

// forget drops every record of ref (on erasure).
func (rc *recordCache) forget(ref domicile.SubjectRef) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for k, e := range rc.items {
		if k.ref == ref {
			rc.bytes -= len(e.Value.(*domicile.StoredRecord).Body)
			rc.lru.Remove(e)
			delete(rc.items, k)
		}
	}
}

// record returns a record as stored (nil Body: deleted), from the cache or
// the store; ErrNotFound if it never existed.
func (c *Cell) record(ctx context.Context, ref domicile.SubjectRef, kind, id string) (*domicile.StoredRecord, error) {
	if r, ok := c.records.get(recordKey{ref, kind, id}); ok {
		return r, nil
	}
	return c.freshRecord(ctx, ref, kind, id)
}

// freshRecord reads a record from the store, bypassing the cache, and
// caches it.
func (c *Cell) freshRecord(ctx context.Context, ref domicile.SubjectRef, kind, id string) (*domicile.StoredRecord, error) {
	r, err := c.store.Record(ctx, ref, kind, id)
	if err != nil {
		return nil, err
	}
	c.records.put(r)
	return r, nil
}
