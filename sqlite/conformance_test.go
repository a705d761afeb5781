package sqlite_test

import (
	"context"
	"testing"

	"domicile"
	"domicile/domiciletest"
	"domicile/sqlite"
	"domicile/transfer"
)

func TestCellStoreConformance(t *testing.T) {
	domiciletest.TestCellStore(t, func(t *testing.T) domicile.CellStore {
		s, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestKeyStoreConformance(t *testing.T) {
	domiciletest.TestKeyStore(t, func(t *testing.T) domicile.KeyStore {
		k, err := sqlite.OpenKeyStore(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenKeyStore: %v", err)
		}
		return k
	})
}

func TestControlStoreConformance(t *testing.T) {
	domiciletest.TestControlStore(t, func(t *testing.T) domicile.ControlStore {
		c, err := sqlite.OpenControl(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenControl: %v", err)
		}
		return c
	})
}

func TestTransferStoreConformance(t *testing.T) {
	domiciletest.TestTransferStore(t, func(t *testing.T) transfer.Store {
		l, err := sqlite.OpenLedger(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenLedger: %v", err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}

func TestMigrationStoreConformance(t *testing.T) {
	domiciletest.TestMigrationStore(t, func(t *testing.T) domiciletest.MigrationControl {
		c, err := sqlite.OpenControl(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenControl: %v", err)
		}
		return c
	})
}
