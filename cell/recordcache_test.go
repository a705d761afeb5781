package cell

import (
	"fmt"
	"testing"

	"domicile"
)

// TestRecordCacheBounds: the cache keeps to its byte bound whatever the
// record sizes, and never replaces a record by an older version.
func TestRecordCacheBounds(t *testing.T) {
	rc := newRecordCache()
	var ref domicile.SubjectRef
	big := make([]byte, 1<<20)
	for i := 0; i < 100; i++ {
		rc.put(&domicile.StoredRecord{Ref: ref, Kind: "k", ID: fmt.Sprint(i), Version: 1, Body: big})
		if rc.bytes > recordCacheBytes {
			t.Fatalf("cache holds %d bytes, bound %d", rc.bytes, recordCacheBytes)
		}
	}
	if rc.lru.Len() != recordCacheBytes/(1<<20) {
		t.Fatalf("cache holds %d 1 MiB records, want %d", rc.lru.Len(), recordCacheBytes/(1<<20))
	}
	rc.put(&domicile.StoredRecord{Ref: ref, Kind: "k", ID: "x", Version: 5, Body: []byte("new")})
	rc.put(&domicile.StoredRecord{Ref: ref, Kind: "k", ID: "x", Version: 4, Body: []byte("old")})
	if r, _ := rc.get(recordKey{ref, "k", "x"}); r.Version != 5 {
		t.Fatalf("an older version replaced a newer one: %d", r.Version)
	}
	rc.forget(ref)
	if rc.lru.Len() != 0 || rc.bytes != 0 {
		t.Fatalf("after forget: %d records, %d bytes", rc.lru.Len(), rc.bytes)
	}
}

// TestRecordCacheVersions: a record whose body is evicted keeps its
// version (live or deleted) for writes; an older version never replaces
// it; a newer write brings the body back; erasure forgets both, and the
// versions kept stay within their bound.
func TestRecordCacheVersions(t *testing.T) {
	rc := newRecordCache()
	var ref, other domicile.SubjectRef
	other[0] = 1
	big := make([]byte, 1<<20)
	rc.put(&domicile.StoredRecord{Ref: ref, Kind: "k", ID: "gone", Version: 7})            // a tombstone
	rc.put(&domicile.StoredRecord{Ref: ref, Kind: "k", ID: "live", Version: 3, Body: big}) // a live record
	rc.put(&domicile.StoredRecord{Ref: other, Kind: "k", ID: "o", Version: 2, Body: big})
	for i := 0; i < 100; i++ { // evict all three bodies
		rc.put(&domicile.StoredRecord{Ref: other, Kind: "k", ID: fmt.Sprint(i), Version: 1, Body: big})
	}
	for _, c := range []struct {
		ref      domicile.SubjectRef
		id       string
		n        int64
		live, ok bool
	}{{ref, "gone", 7, false, true}, {ref, "live", 3, true, true}, {other, "o", 2, true, true}, {ref, "never", 0, false, false}} {
		if _, ok := rc.get(recordKey{c.ref, "k", c.id}); ok && c.id != "never" {
			t.Fatalf("%s: body still cached", c.id)
		}
		n, live, ok := rc.version(recordKey{c.ref, "k", c.id})
		if n != c.n || live != c.live || ok != c.ok {
			t.Fatalf("%s: version %d live %v known %v, want %d %v %v", c.id, n, live, ok, c.n, c.live, c.ok)
		}
	}
	rc.put(&domicile.StoredRecord{Ref: ref, Kind: "k", ID: "live", Version: 2, Body: []byte("{}")})
	if n, _, _ := rc.version(recordKey{ref, "k", "live"}); n != 3 {
		t.Fatalf("an older version replaced a kept one: %d", n)
	}
	rc.put(&domicile.StoredRecord{Ref: ref, Kind: "k", ID: "live", Version: 4, Body: []byte("{}")})
	if r, ok := rc.get(recordKey{ref, "k", "live"}); !ok || r.Version != 4 {
		t.Fatalf("a newer write is not cached: %v %v", r, ok)
	}
	rc.forget(ref)
	for _, id := range []string{"gone", "live"} {
		if _, _, ok := rc.version(recordKey{ref, "k", id}); ok {
			t.Fatalf("%s: version kept after forget", id)
		}
	}
	if _, _, ok := rc.version(recordKey{other, "k", "o"}); !ok {
		t.Fatal("forget dropped another subject's version")
	}
	for i := 0; i < versionCacheSize+100; i++ {
		rc.put(&domicile.StoredRecord{Ref: other, Kind: "v", ID: fmt.Sprint(i), Version: 1})
	}
	if len(rc.versions) > versionCacheSize {
		t.Fatalf("%d versions kept, bound %d", len(rc.versions), versionCacheSize)
	}
}
