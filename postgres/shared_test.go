package postgres_test

import (
	"context"
	"testing"

	"domicile/authority"
	"domicile/domiciletest"
	"domicile/notice"
	"domicile/postgres"
	"domicile/transfer"
)

// openShared opens the deployment-wide stores in a fresh schema, closed
// and dropped when the test ends.
func openShared(t *testing.T) *postgres.Shared {
	t.Helper()
	s, err := postgres.OpenShared(context.Background(), postgres.Config{DSN: poolDSN(t), Schema: newSchema(t)})
	if err != nil {
		t.Fatalf("OpenShared: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTransferStoreConformance(t *testing.T) {
	domiciletest.TestTransferStore(t, func(t *testing.T) transfer.Store { return openShared(t).Ledger() })
}

func TestNoticeStoreConformance(t *testing.T) {
	domiciletest.TestNoticeStore(t, func(t *testing.T) notice.Store { return openShared(t).Notices() })
}

func TestAuthorityStoreConformance(t *testing.T) {
	domiciletest.TestAuthorityStore(t, func(t *testing.T) authority.Store { return openShared(t).Authority() })
}
