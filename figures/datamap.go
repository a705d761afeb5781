package figures

import (
	"sort"

	"domicile"
)

// MapCell is one cell on the data map: where it is, who runs it, and what
// it holds (its store's domicile.Census).
type MapCell struct {
	Cell         string                `json:"cell"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Operator     string                `json:"operator"`
	Location     string                `json:"location"`
	// Counted is false when the cell's census could not be taken here
	// (its store does not count, or another process serves it); Reason
	// then says why, and the counts are zero.
	Counted bool   `json:"counted"`
	Reason  string `json:"reason,omitempty"`
	domicile.Census
	// Bytes is domicile.Census.Bytes: record bodies and objects stored.
	Bytes int64 `json:"bytes"`
}

// MapJurisdiction is the cells of one jurisdiction and their totals.
type MapJurisdiction struct {
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Cells        []MapCell             `json:"cells"`
	// Subjects and Bytes sum the counted cells; Complete is true when
	// every cell of the jurisdiction was counted.
	Subjects int64 `json:"subjects"`
	Bytes    int64 `json:"bytes"`
	Complete bool  `json:"complete"`
}

// DataMap is where a deployment's data lives: its cells grouped by
// jurisdiction, with the subjects and bytes each holds.
type DataMap struct {
	Jurisdictions []MapJurisdiction `json:"jurisdictions"`
	// Subjects and Bytes sum every counted cell; Complete is true when
	// every cell was counted.
	Subjects int64 `json:"subjects"`
	Bytes    int64 `json:"bytes"`
	Complete bool  `json:"complete"`
}

// CellCount is a cell's census, or why there is none.
type CellCount struct {
	Census domicile.Census
	// Reason, if not empty, says why the cell was not counted.
	Reason string
}

// MapOf builds the data map of cells (a deployment's, in its order) from
// their counts: jurisdictions in code order, cells in the deployment's
// order within each. A cell absent from counts is not counted.
func MapOf(cells []domicile.CellConfig, counts map[string]CellCount) DataMap {
	m := DataMap{Jurisdictions: []MapJurisdiction{}, Complete: true}
	byJ := map[domicile.Jurisdiction]*MapJurisdiction{}
	var order []domicile.Jurisdiction
	for _, c := range cells {
		j := byJ[c.Jurisdiction]
		if j == nil {
			j = &MapJurisdiction{Jurisdiction: c.Jurisdiction, Cells: []MapCell{}, Complete: true}
			byJ[c.Jurisdiction] = j
			order = append(order, c.Jurisdiction)
		}
		mc := MapCell{Cell: c.ID, Jurisdiction: c.Jurisdiction, Operator: c.Operator, Location: c.Location}
		if n, ok := counts[c.ID]; !ok {
			mc.Reason = "not counted"
		} else if n.Reason != "" {
			mc.Reason = n.Reason
		} else {
			mc.Counted, mc.Census, mc.Bytes = true, n.Census, n.Census.Bytes()
		}
		if mc.Counted {
			j.Subjects += mc.Subjects
			j.Bytes += mc.Bytes
			m.Subjects += mc.Subjects
			m.Bytes += mc.Bytes
		} else {
			j.Complete, m.Complete = false, false
		}
		j.Cells = append(j.Cells, mc)
	}
	sort.Slice(order, func(i, k int) bool { return order[i] < order[k] })
	for _, j := range order {
		m.Jurisdictions = append(m.Jurisdictions, *byJ[j])
	}
	return m
}
