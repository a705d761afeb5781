package figures

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
	"domicile/law"
)

// TestCrossingEdges: the crossing date and headroom of a threshold at a
// rate of zero, once already crossed, exactly reached, and a threshold
// absent from the law in force.
func TestCrossingEdges(t *testing.T) {
	day := time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC) // day 100 of 2026
	ths := []law.Threshold{
		{Fact: FactPIYTD, Value: 1000, Rule: "R.1", EffectiveFrom: "2024-03-22"},
		{Fact: FactSPIYTD, Value: 100, Rule: "R.2", EffectiveFrom: "2024-03-22"},
		{Fact: FactPIYTD, Value: 50, Rule: "R.old", EffectiveFrom: "2020-01-01", EffectiveUntil: "2024-03-21"},
		{Fact: "something_else", Value: 5, Rule: "R.x", EffectiveFrom: "2020-01-01"},
	}
	for _, tc := range []struct {
		name    string
		pi, spi int64
		want    []Crossing
	}{
		{"zero rate: no date, all headroom", 0, 0, []Crossing{
			{Fact: FactPIYTD, Threshold: 1000, Rule: "R.1", Headroom: 1000},
			{Fact: FactSPIYTD, Threshold: 100, Rule: "R.2", Headroom: 100},
		}},
		{"already crossed: no date, no headroom", 1500, 101, []Crossing{
			{Fact: FactPIYTD, Threshold: 1000, Rule: "R.1", Value: 1500, Reached: true, PerDay: 15},
			{Fact: FactSPIYTD, Threshold: 100, Rule: "R.2", Value: 101, Reached: true, PerDay: 1.01},
		}},
		{"exactly at the threshold: reached", 1000, 0, []Crossing{
			{Fact: FactPIYTD, Threshold: 1000, Rule: "R.1", Value: 1000, Reached: true, PerDay: 10},
			{Fact: FactSPIYTD, Threshold: 100, Rule: "R.2", Headroom: 100},
		}},
		{"on course: the day at the year's rate", 500, 10, []Crossing{
			// 5 a day from day 100: 1000 on day 200, 19 July.
			{Fact: FactPIYTD, Threshold: 1000, Rule: "R.1", Value: 500, PerDay: 5, Headroom: 500, Date: "2026-07-19"},
			// 0.1 a day: 100 on day 1000, after the year ends.
			{Fact: FactSPIYTD, Threshold: 100, Rule: "R.2", Value: 10, PerDay: 0.1, Headroom: 90},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Crossings(ths, day, tc.pi, tc.spi)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Crossings(pi %d, spi %d) (-want +got):\n%s", tc.pi, tc.spi, d)
			}
		})
	}
	// A threshold absent from the law in force: none to cross.
	if got := Crossings(ths[2:3], day, 10, 0); len(got) != 0 {
		t.Errorf("Crossings with only a repealed threshold = %+v, want none", got)
	}
	if got := Crossings(nil, day, 10, 0); len(got) != 0 {
		t.Errorf("Crossings with no thresholds = %+v, want none", got)
	}
	for _, tc := range []struct{ th, v, want int64 }{{100, 0, 100}, {100, 99, 1}, {100, 100, 0}, {100, 250, 0}, {0, 0, 0}} {
		if got := Headroom(tc.th, tc.v); got != tc.want {
			t.Errorf("Headroom(%d, %d) = %d, want %d", tc.th, tc.v, got, tc.want)
		}
	}
}

func TestMapOf(t *testing.T) {
	cells := []domicile.CellConfig{
		{ID: "us-east1", Jurisdiction: "US", Operator: "U", Location: "Virginia"},
		{ID: "cn-gz1", Jurisdiction: "CN", Operator: "G", Location: "Guangzhou"},
		{ID: "cn-bj1", Jurisdiction: "CN", Operator: "B", Location: "Beijing"},
		{ID: "eu-fra1", Jurisdiction: "DE", Operator: "F", Location: "Frankfurt"},
	}
	counts := map[string]CellCount{
		"cn-gz1":   {Census: domicile.Census{Subjects: 3, Records: 4, RecordBytes: 400, Objects: 1, ObjectBytes: 1000}},
		"cn-bj1":   {Census: domicile.Census{Subjects: 2, RecordBytes: 10}},
		"us-east1": {Reason: "served by another process"},
	}
	m := MapOf(cells, counts)
	want := DataMap{Subjects: 5, Bytes: 1410, Jurisdictions: []MapJurisdiction{
		{Jurisdiction: "CN", Subjects: 5, Bytes: 1410, Complete: true, Cells: []MapCell{
			{Cell: "cn-gz1", Jurisdiction: "CN", Operator: "G", Location: "Guangzhou", Counted: true, Census: counts["cn-gz1"].Census, Bytes: 1400},
			{Cell: "cn-bj1", Jurisdiction: "CN", Operator: "B", Location: "Beijing", Counted: true, Census: counts["cn-bj1"].Census, Bytes: 10},
		}},
		{Jurisdiction: "DE", Cells: []MapCell{{Cell: "eu-fra1", Jurisdiction: "DE", Operator: "F", Location: "Frankfurt", Reason: "not counted"}}},
		{Jurisdiction: "US", Cells: []MapCell{{Cell: "us-east1", Jurisdiction: "US", Operator: "U", Location: "Virginia", Reason: "served by another process"}}},
	}}
	if d := cmp.Diff(want, m); d != "" {
		t.Errorf("MapOf (-want +got):\n%s", d)
	}
	if e := MapOf(nil, nil); !e.Complete || len(e.Jurisdictions) != 0 || e.Jurisdictions == nil {
		t.Errorf("MapOf(no cells) = %+v, want an empty complete map", e)
	}
}
