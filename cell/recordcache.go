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

// versionCacheSize bounds the versions kept of records whose bodies left
// the cache: a write needs only the current version, and an entry is
// about a hundred bytes where a body is up to a megabyte.
const versionCacheSize = 200_000

// recordCache keeps recently written or read records as stored: sealed,
// so it holds no plaintext. The cell is its store's only writer, so it
// keeps the cache exact: every write and delete updates it after its
// commit, and an entry is replaced only by a higher version (a tombstone
// included), so commits finishing out of order cannot bring back an older
// version. It is safe for concurrent use.
//
// A record whose body is evicted leaves its version behind (versions),
// kept exact the same way, so that a write to it need not read the store
// to learn the version it replaces.
type recordCache struct {
	mu       sync.Mutex
	lru      *list.List
	items    map[recordKey]*list.Element
	bytes    int
	versions map[recordKey]version
}

// version is what the cache keeps of a record whose body it dropped.
type version struct {
	n    int64
	live bool
}

type recordKey struct {
	ref      domicile.SubjectRef
	kind, id string
}

func newRecordCache() *recordCache {
	return &recordCache{lru: list.New(), items: map[recordKey]*list.Element{}, versions: map[recordKey]version{}}
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

// version returns the current version of a record and whether it is
// live (not deleted), if the cache knows it.
func (rc *recordCache) version(k recordKey) (int64, bool, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e, ok := rc.items[k]; ok {
		r := e.Value.(*domicile.StoredRecord)
		return r.Version, r.Body != nil, true
	}
	v, ok := rc.versions[k]
	return v.n, v.live, ok
}

// put records r if it is newer than what the cache holds.
func (rc *recordCache) put(r *domicile.StoredRecord) {
	k := recordKey{r.Ref, r.Kind, r.ID}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if v, ok := rc.versions[k]; ok {
		if v.n >= r.Version {
			return
		}
		delete(rc.versions, k)
	}
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
		ok := recordKey{o.Ref, o.Kind, o.ID}
		delete(rc.items, ok)
		if len(rc.versions) >= versionCacheSize {
			for k := range rc.versions { // an arbitrary one
				delete(rc.versions, k)
				break
			}
		}
		rc.versions[ok] = version{o.Version, o.Body != nil}
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
	for k := range rc.versions {
		if k.ref == ref {
			delete(rc.versions, k)
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

// recordVersion returns the current version of a record (0 if it never
// existed) and whether it is live, from the cache or the store.
func (c *Cell) recordVersion(ctx context.Context, ref domicile.SubjectRef, kind, id string) (int64, bool, error) {
	if n, live, ok := c.records.version(recordKey{ref, kind, id}); ok {
		return n, live, nil
	}
	r, err := c.freshRecord(ctx, ref, kind, id)
	if isNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return r.Version, r.Body != nil, nil
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
