package postgres_test

import (
	"testing"

	"domicile"
	"domicile/domiciletest"
)

func TestCensusConformance(t *testing.T) {
	domiciletest.TestCensus(t, func(t *testing.T) domicile.CellStore {
		return mustOpen(t, newSchema(t), t.TempDir())
	})
}
