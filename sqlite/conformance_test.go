package sqlite_test

import (
	"context"
	"testing"

	"domicile"
	"domicile/domiciletest"
	"domicile/sqlite"
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

func TestMigrationStoreConformance(t *testing.T) {
	domiciletest.TestMigrationStore(t, func(t *testing.T) domiciletest.MigrationControl {
		c, err := sqlite.OpenControl(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenControl: %v", err)
		}
		return c
	})
}
