package report

import (
	"sort"
	"strings"
	"time"

	"domicile"
	"domicile/i18n"
)

// Transparency is the periodic transparency report of a deployment.
type Transparency struct {
	Lang       i18n.Lang `json:"lang"`
	Generated  time.Time `json:"generated"`
	Period     Period    `json:"period"`
	Deployment string    `json:"deployment"`
	Entity     string    `json:"entity,omitempty"`
	// Authority counts the requests received in the period by kind,
	// origin and outcome.
	Authority       []AuthorityCount `json:"authority_requests"`
	AuthorityTotals map[string]int   `json:"authority_totals"`
	// OperatorAccess counts operators' accesses by justification.
	OperatorAccess    []BasisCount    `json:"operator_accesses"`
	AuthorityAccess   []BasisCount    `json:"authority_accesses"`
	TransfersReported bool            `json:"transfers_reported"`
	Transfers         []TransferCount `json:"transfers"`
	TransferEvents    int             `json:"transfer_events"`
	// RemoteReads counts the reads from abroad the gate allowed
	// (domicile.Event.IsRemoteRead), each a transfer abroad.
	RemoteReads       int           `json:"remote_reads"`
	Erasures          int           `json:"erasures"`
	ConsentsWithdrawn int           `json:"consents_withdrawn"`
	Cells             []CellFigures `json:"cells"`
	Notes             []string      `json:"notes"`
}

// AuthorityCount counts authority requests of one kind, origin and outcome.
type AuthorityCount struct {
	Kind    string `json:"kind"`
	Foreign bool   `json:"foreign"`
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
}

// BasisCount counts accesses with one stated basis.
type BasisCount struct {
	Basis   string `json:"basis"`
	Allowed int    `json:"allowed"`
	Denied  int    `json:"denied"`
}

// CellFigures are one cell's figures and the checkpoint they were counted
// under: every figure counts events among the first Log.Size leaves.
type CellFigures struct {
	Cell              string                `json:"cell"`
	Jurisdiction      domicile.Jurisdiction `json:"jurisdiction"`
	Operator          string                `json:"operator"`
	Log               LogRef                `json:"log"`
	Events            int                   `json:"events_in_period"`
	OperatorAccesses  int                   `json:"operator_accesses"`
	AuthorityAccesses int                   `json:"authority_accesses"`
	Erasures          int                   `json:"erasures"`
	TransferEvents    int                   `json:"transfer_events"`
	RemoteReads       int                   `json:"remote_reads"`
	ConsentsWithdrawn int                   `json:"consents_withdrawn"`
}

// CellLog is one cell's events (the decoded events of the first Log.Size
// leaves; erased subjects' events are still counted by their leaves'
// metadata when their committed form is gone).
type CellLog struct {
	Cell   domicile.CellConfig
	Log    LogRef
	Events []LoggedEvent
}

// LoggedEvent is an event as the transparency report counts it: the
// committed event when the cell still has it, else the leaf's public
// metadata.
type LoggedEvent struct {
	Time    time.Time       `json:"time"`
	Action  domicile.Action `json:"action"`
	Role    domicile.Role   `json:"role"`
	Outcome domicile.Outcome
	Basis   string
	Detail  string
}

// TransparencyInput is what a transparency report is built from.
type TransparencyInput struct {
	Now               time.Time
	Period            Period
	Deployment        *domicile.Deployment
	Cells             []CellLog
	Requests          []AuthorityLine
	TransfersReported bool
	Transfers         []TransferCount
}

// Withdrawal reports whether a consent event withdraws consent.
func Withdrawal(e LoggedEvent) bool {
	return e.Action == domicile.ActConsent && e.Outcome == domicile.Allowed && strings.Contains(e.Detail, "withdraw")
}

// BuildTransparency counts the period's figures.
func BuildTransparency(p *i18n.Printer, in TransparencyInput) *Transparency {
	t := &Transparency{
		Lang: p.Lang(), Generated: in.Now.UTC(), Period: in.Period,
		Deployment: in.Deployment.Name, Entity: in.Deployment.Declarations.Entity,
		Authority: []AuthorityCount{}, AuthorityTotals: map[string]int{},
		OperatorAccess: []BasisCount{}, AuthorityAccess: []BasisCount{},
		TransfersReported: in.TransfersReported, Transfers: in.Transfers, Cells: []CellFigures{},
	}
	if t.Transfers == nil {
		t.Transfers = []TransferCount{}
	}
	ac := map[AuthorityCount]int{}
	for _, r := range in.Requests {
		if !in.Period.Contains(r.Received) {
			continue
		}
		ac[AuthorityCount{Kind: r.Kind, Foreign: r.Foreign, Outcome: r.Outcome}]++
		t.AuthorityTotals["received"]++
		t.AuthorityTotals[r.Outcome]++
	}
	for k, n := range ac {
		k.Count = n
		t.Authority = append(t.Authority, k)
	}
	sort.Slice(t.Authority, func(i, j int) bool {
		a, b := t.Authority[i], t.Authority[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Foreign != b.Foreign {
			return !a.Foreign
		}
		return a.Outcome < b.Outcome
	})
	op := map[string]*BasisCount{}
	au := map[string]*BasisCount{}
	count := func(m map[string]*BasisCount, e LoggedEvent) {
		b := m[e.Basis]
		if b == nil {
			b = &BasisCount{Basis: e.Basis}
			m[e.Basis] = b
		}
		if e.Outcome == domicile.Allowed {
			b.Allowed++
		} else {
			b.Denied++
		}
	}
	for _, c := range in.Cells {
		f := CellFigures{Cell: c.Cell.ID, Jurisdiction: c.Cell.Jurisdiction, Operator: c.Cell.Operator, Log: c.Log}
		for _, e := range c.Events {
			if !in.Period.Contains(e.Time) {
				continue
			}
			f.Events++
			switch {
			case e.Role == domicile.RoleOperator:
				f.OperatorAccesses++
				count(op, e)
			case e.Role == domicile.RoleAuthority:
				f.AuthorityAccesses++
				count(au, e)
			}
			switch {
			case e.Action == domicile.ActErase && e.Outcome == domicile.Allowed:
				f.Erasures++
			case e.Action == domicile.ActTransfer && e.Outcome == domicile.Allowed:
				f.TransferEvents++
			case Withdrawal(e):
				f.ConsentsWithdrawn++
			}
			if ev := (domicile.Event{Outcome: e.Outcome, Detail: e.Detail}); ev.IsRemoteRead() {
				f.RemoteReads++
			}
		}
		t.Erasures += f.Erasures
		t.TransferEvents += f.TransferEvents
		t.RemoteReads += f.RemoteReads
		t.ConsentsWithdrawn += f.ConsentsWithdrawn
		t.Cells = append(t.Cells, f)
	}
	for _, m := range []struct {
		src map[string]*BasisCount
		dst *[]BasisCount
	}{{op, &t.OperatorAccess}, {au, &t.AuthorityAccess}} {
		for _, b := range m.src {
			*m.dst = append(*m.dst, *b)
		}
		sort.Slice(*m.dst, func(i, j int) bool { return (*m.dst)[i].Basis < (*m.dst)[j].Basis })
	}
	t.Notes = []string{p.T("transparency.note.checkpoints"), p.T("transparency.note.secrecy")}
	if !t.TransfersReported {
		t.Notes = append(t.Notes, p.T("transparency.note.transfers"))
	}
	return t
}
