package commstore_test

import (
	"context"
	"testing"

	"domicile/authority"
	"domicile/domiciletest"
	"domicile/notice"
	"domicile/sqlite/commstore"
)

func TestNoticeStoreConformance(t *testing.T) {
	domiciletest.TestNoticeStore(t, func(t *testing.T) notice.Store {
		n, err := commstore.OpenNotices(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenNotices: %v", err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	})
}

func TestAuthorityStoreConformance(t *testing.T) {
	domiciletest.TestAuthorityStore(t, func(t *testing.T) authority.Store {
		a, err := commstore.OpenAuthority(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenAuthority: %v", err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	})
}
