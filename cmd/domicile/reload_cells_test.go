package main

import (
	"testing"

	"domicile"
)

// TestReloadCells: the embedded runtime keeps its cells until a restart;
// a cell process and the router take a cell added elsewhere (a
// migration's target) and refuse a cell removed.
func TestReloadCells(t *testing.T) {
	dep := func(ids ...string) *domicile.Deployment {
		d := &domicile.Deployment{}
		for _, id := range ids {
			d.Cells = append(d.Cells, domicile.CellConfig{ID: id})
		}
		return d
	}
	cur := dep("cn-gz1", "eu-fra1")
	for _, tc := range []struct {
		name   string
		next   *domicile.Deployment
		spread bool
		ok     bool
	}{
		{"same cells, embedded", dep("cn-gz1", "eu-fra1"), false, true},
		{"same cells, spread", dep("cn-gz1", "eu-fra1"), true, true},
		{"added, embedded", dep("cn-gz1", "eu-fra1", "cn-gz2"), false, false},
		{"added, spread", dep("cn-gz1", "eu-fra1", "cn-gz2"), true, true},
		{"removed, spread", dep("cn-gz1"), true, false},
		{"replaced, spread", dep("cn-gz1", "cn-gz2"), true, false},
		{"removed, embedded", dep("cn-gz1"), false, false},
	} {
		err := reloadCells(cur, tc.next, tc.spread)
		if (err == nil) != tc.ok {
			t.Errorf("%s: reloadCells = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
