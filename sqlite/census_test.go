package sqlite_test

import (
	"context"
	"testing"

	"domicile"
	"domicile/domiciletest"
	"domicile/sqlite"
)

func TestCensusConformance(t *testing.T) {
	domiciletest.TestCensus(t, func(t *testing.T) domicile.CellStore {
		s, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}
