package report

import (
	"sort"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
)

// Transparency is the periodic transparency report of a deployment. Its
// figures come from three sources, each named: the cells' logs (every
// cell's figures and the totals, recountable by anyone from the public
// tiles at the checkpoint each cell names: `domicile transparency
// verify`), the transfer ledger (Ledger, with its digest), and the
// authority request register (Authority, AuthorityTotals).
type Transparency struct {
	Lang       i18n.Lang `json:"lang"`
	Generated  time.Time `json:"generated"`
	Period     Period    `json:"period"`
	Deployment string    `json:"deployment"`
	Entity     string    `json:"entity,omitempty"`
	// Authority counts the requests of the register received in the
	// period by kind, origin and outcome.
	Authority       []AuthorityCount `json:"authority_requests"`
	AuthorityTotals map[string]int   `json:"authority_totals"`
	// Totals are the log figures of every cell together (figures.Sum).
	Totals            figures.Cell `json:"totals"`
	TransfersReported bool         `json:"transfers_reported"`
	// Ledger is the transfer ledger's figures for the calendar years of
	// the period (nil when no gateway reports to this report).
	Ledger *figures.Ledger `json:"ledger,omitempty"`
	Cells  []CellFigures   `json:"cells"`
	Notes  []string        `json:"notes"`
}

// AuthorityCount counts authority requests of one kind, origin and outcome.
type AuthorityCount struct {
	Kind    string `json:"kind"`
	Foreign bool   `json:"foreign"`
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
}

// CellFigures are one cell's log figures and the checkpoint they were
// counted at: every figure counts leaves among the first Log.Size.
type CellFigures struct {
	Cell         string                `json:"cell"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Operator     string                `json:"operator"`
	Log          LogRef                `json:"log"`
	Figures      figures.Cell          `json:"figures"`
}

// CellLog is one cell's log as a transparency report counts it: the
// checkpoint, and the figures of the period counted over the leaves it
// covers (figures.CountLog).
type CellLog struct {
	Cell    domicile.CellConfig
	Log     LogRef
	Figures figures.Cell
}

// TransparencyInput is what a transparency report is built from.
type TransparencyInput struct {
	Now               time.Time
	Period            Period
	Deployment        *domicile.Deployment
	Cells             []CellLog
	Requests          []AuthorityLine
	TransfersReported bool
	Ledger            *figures.Ledger
}

// AuthorityFigures counts the authority requests received in the period
// ([from, to)) by kind, origin and outcome, and in total by outcome
// ("received" counts them all).
func AuthorityFigures(reqs []AuthorityLine, p Period) ([]AuthorityCount, map[string]int) {
	totals := map[string]int{}
	ac := map[AuthorityCount]int{}
	for _, r := range reqs {
		if !p.Contains(r.Received) {
			continue
		}
		ac[AuthorityCount{Kind: r.Kind, Foreign: r.Foreign, Outcome: r.Outcome}]++
		totals["received"]++
		totals[r.Outcome]++
	}
	out := []AuthorityCount{}
	for k, n := range ac {
		k.Count = n
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Foreign != b.Foreign {
			return !a.Foreign
		}
		return a.Outcome < b.Outcome
	})
	return out, totals
}

// BuildTransparency builds the report of the period from its inputs.
func BuildTransparency(p *i18n.Printer, in TransparencyInput) *Transparency {
	t := &Transparency{
		Lang: p.Lang(), Generated: in.Now.UTC(), Period: in.Period,
		Deployment: in.Deployment.Name, Entity: in.Deployment.Declarations.Entity,
		TransfersReported: in.TransfersReported, Ledger: in.Ledger, Cells: []CellFigures{},
	}
	t.Authority, t.AuthorityTotals = AuthorityFigures(in.Requests, in.Period)
	var cells []figures.Cell
	for _, c := range in.Cells {
		t.Cells = append(t.Cells, CellFigures{Cell: c.Cell.ID, Jurisdiction: c.Cell.Jurisdiction, Operator: c.Cell.Operator, Log: c.Log, Figures: c.Figures})
		cells = append(cells, c.Figures)
	}
	t.Totals = figures.Sum(cells...)
	t.Notes = []string{p.T("transparency.note.checkpoints"), p.T("transparency.note.secrecy")}
	if t.Ledger != nil {
		t.Notes = append(t.Notes, p.T("transparency.note.ledger", t.Ledger.Digest))
	}
	if !t.TransfersReported {
		t.Notes = append(t.Notes, p.T("transparency.note.transfers"))
	}
	return t
}
