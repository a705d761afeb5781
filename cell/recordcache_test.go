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
