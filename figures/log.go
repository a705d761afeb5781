package figures

import (
	"context"
	"fmt"
	"sort"
	"time"

	"domicile/leaf"
)

// InPeriod reports whether l counts in the period [from, to): its time,
// the event's minute, is in it.
func InPeriod(l leaf.Leaf, from, to time.Time) bool { return !l.Time.Before(from) && l.Time.Before(to) }

// OperatorAccess reports whether l is an access by a cell operator's
// staff, allowed or denied.
func OperatorAccess(l leaf.Leaf) bool { return l.Role == "operator" }

// AuthorityAccess reports whether l is an access by an authority, allowed
// or denied.
func AuthorityAccess(l leaf.Leaf) bool { return l.Role == "authority" }

// Erasure reports whether l is a subject erased (crypto-shredded).
func Erasure(l leaf.Leaf) bool { return l.Action == "erase" && l.Outcome == "allowed" }

// TransferEvent reports whether l is a subject's data leaving through the
// transfer gate in an export bundle (one export event per subject of the
// bundle) or a recorded transfer.
func TransferEvent(l leaf.Leaf) bool {
	return (l.Action == "export" || l.Action == "transfer") && l.Outcome == "allowed"
}

// RemoteRead reports whether l is a read from outside the cell's
// jurisdiction that the transfer gate allowed: a transfer abroad.
func RemoteRead(l leaf.Leaf) bool { return l.Outcome == "allowed" && l.Has(leaf.TagRemote) }

// ConsentWithdrawal reports whether l is a consent withdrawn.
func ConsentWithdrawal(l leaf.Leaf) bool {
	return l.Action == "consent" && l.Outcome == "allowed" && l.Has(leaf.TagWithdrawal)
}

// Justification returns the reason an operator or authority stated for
// the access of l ("support", "lawful-request-foreign", ...), or "" when
// l carries none (a refusal for want of one, or another role).
func Justification(l leaf.Leaf) string {
	for _, t := range l.Tags {
		if t != leaf.TagRemote && t != leaf.TagWithdrawal {
			return t
		}
	}
	return ""
}

// BasisCount counts the accesses of one role with one justification.
type BasisCount struct {
	// Basis is the justification ([Justification]); "" for none.
	Basis   string `json:"basis"`
	Allowed int    `json:"allowed"`
	Denied  int    `json:"denied"`
}

// Cell holds the log figures of one cell's log for a period: each counts
// the leaves, among those a checkpoint covers, whose time is in the
// period ([InPeriod]).
type Cell struct {
	// Events counts every leaf.
	Events int `json:"events_in_period"`
	// OperatorAccesses counts [OperatorAccess] leaves.
	OperatorAccesses int `json:"operator_accesses"`
	// AuthorityAccesses counts [AuthorityAccess] leaves.
	AuthorityAccesses int `json:"authority_accesses"`
	// Erasures counts [Erasure] leaves.
	Erasures int `json:"erasures"`
	// TransferEvents counts [TransferEvent] leaves.
	TransferEvents int `json:"transfer_events"`
	// RemoteReads counts [RemoteRead] leaves.
	RemoteReads int `json:"remote_reads"`
	// ConsentsWithdrawn counts [ConsentWithdrawal] leaves.
	ConsentsWithdrawn int `json:"consents_withdrawn"`
	// OperatorByJustification and AuthorityByJustification break the
	// operator and authority accesses down by [Justification] and
	// outcome, in basis order.
	OperatorByJustification  []BasisCount `json:"operator_accesses_by_justification"`
	AuthorityByJustification []BasisCount `json:"authority_accesses_by_justification"`
}

// Counter counts the log figures of a period, one leaf at a time, so
// that a log of any size is counted in constant memory.
type Counter struct {
	from, to time.Time
	c        Cell
	op, au   map[string]*BasisCount
}

// NewCounter returns a counter of the period [from, to).
func NewCounter(from, to time.Time) *Counter {
	return &Counter{from: from, to: to, op: map[string]*BasisCount{}, au: map[string]*BasisCount{}}
}

// Add counts l if it is in the period.
func (k *Counter) Add(l leaf.Leaf) {
	if !InPeriod(l, k.from, k.to) {
		return
	}
	c := &k.c
	c.Events++
	var by map[string]*BasisCount
	switch {
	case OperatorAccess(l):
		c.OperatorAccesses++
		by = k.op
	case AuthorityAccess(l):
		c.AuthorityAccesses++
		by = k.au
	}
	if by != nil {
		j := Justification(l)
		b := by[j]
		if b == nil {
			b = &BasisCount{Basis: j}
			by[j] = b
		}
		if l.Outcome == "allowed" {
			b.Allowed++
		} else {
			b.Denied++
		}
	}
	if Erasure(l) {
		c.Erasures++
	}
	if TransferEvent(l) {
		c.TransferEvents++
	}
	if RemoteRead(l) {
		c.RemoteReads++
	}
	if ConsentWithdrawal(l) {
		c.ConsentsWithdrawn++
	}
}

// Figures returns the figures counted so far.
func (k *Counter) Figures() Cell {
	c := k.c
	c.OperatorByJustification, c.AuthorityByJustification = sorted(k.op), sorted(k.au)
	return c
}

func sorted(m map[string]*BasisCount) []BasisCount {
	out := make([]BasisCount, 0, len(m))
	for _, b := range m {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Basis < out[j].Basis })
	return out
}

// Sum returns the figures of several cells together: the report's totals.
func Sum(cells ...Cell) Cell {
	var t Cell
	op, au := map[string]*BasisCount{}, map[string]*BasisCount{}
	add := func(m map[string]*BasisCount, bs []BasisCount) {
		for _, b := range bs {
			x := m[b.Basis]
			if x == nil {
				x = &BasisCount{Basis: b.Basis}
				m[b.Basis] = x
			}
			x.Allowed += b.Allowed
			x.Denied += b.Denied
		}
	}
	for _, c := range cells {
		t.Events += c.Events
		t.OperatorAccesses += c.OperatorAccesses
		t.AuthorityAccesses += c.AuthorityAccesses
		t.Erasures += c.Erasures
		t.TransferEvents += c.TransferEvents
		t.RemoteReads += c.RemoteReads
		t.ConsentsWithdrawn += c.ConsentsWithdrawn
		add(op, c.OperatorByJustification)
		add(au, c.AuthorityByJustification)
	}
	t.OperatorByJustification, t.AuthorityByJustification = sorted(op), sorted(au)
	return t
}

// Difference is one figure whose value in a document is not the value
// recounted.
type Difference struct {
	// Figure names the figure as the document's JSON does, e.g.
	// "erasures" or "operator_accesses_by_justification[support].allowed".
	Figure            string
	Reported, Counted int
	// Ledger is true for a ledger figure (recounted from the ledger, not
	// the log).
	Ledger bool
	// Note replaces the numbers for a figure that is not a number (the
	// ledger's digest).
	Note string
}

func (d Difference) String() string {
	switch {
	case d.Note != "":
		return d.Figure + ": " + d.Note
	case d.Ledger:
		return fmt.Sprintf("%s: the report says %d, the ledger counts %d", d.Figure, d.Reported, d.Counted)
	}
	return fmt.Sprintf("%s: the report says %d, the log counts %d", d.Figure, d.Reported, d.Counted)
}

// Compare returns every figure of reported that differs from counted, in
// a fixed order.
func Compare(reported, counted Cell) []Difference {
	var out []Difference
	for _, f := range []struct {
		name string
		a, b int
	}{
		{"events_in_period", reported.Events, counted.Events},
		{"operator_accesses", reported.OperatorAccesses, counted.OperatorAccesses},
		{"authority_accesses", reported.AuthorityAccesses, counted.AuthorityAccesses},
		{"erasures", reported.Erasures, counted.Erasures},
		{"transfer_events", reported.TransferEvents, counted.TransferEvents},
		{"remote_reads", reported.RemoteReads, counted.RemoteReads},
		{"consents_withdrawn", reported.ConsentsWithdrawn, counted.ConsentsWithdrawn},
	} {
		if f.a != f.b {
			out = append(out, Difference{Figure: f.name, Reported: f.a, Counted: f.b})
		}
	}
	out = append(out, compareBasis("operator_accesses_by_justification", reported.OperatorByJustification, counted.OperatorByJustification)...)
	out = append(out, compareBasis("authority_accesses_by_justification", reported.AuthorityByJustification, counted.AuthorityByJustification)...)
	return out
}

func compareBasis(name string, reported, counted []BasisCount) []Difference {
	rm, cm := map[string]BasisCount{}, map[string]BasisCount{}
	var keys []string
	for _, b := range reported {
		if _, dup := rm[b.Basis]; dup {
			// A basis listed twice is a difference in itself.
			keys = append(keys, b.Basis)
			b.Allowed += rm[b.Basis].Allowed
			b.Denied += rm[b.Basis].Denied
		}
		rm[b.Basis] = b
		keys = append(keys, b.Basis)
	}
	for _, b := range counted {
		cm[b.Basis] = b
		keys = append(keys, b.Basis)
	}
	sort.Strings(keys)
	var out []Difference
	for i, k := range keys {
		if i > 0 && keys[i-1] == k {
			continue
		}
		r, c := rm[k], cm[k]
		if r.Allowed != c.Allowed {
			out = append(out, Difference{Figure: fmt.Sprintf("%s[%s].allowed", name, k), Reported: r.Allowed, Counted: c.Allowed})
		}
		if r.Denied != c.Denied {
			out = append(out, Difference{Figure: fmt.Sprintf("%s[%s].denied", name, k), Reported: r.Denied, Counted: c.Denied})
		}
	}
	return out
}

// LeafReader reads a log's leaves with index in [start, end), as a
// cell's public log does.
type LeafReader interface {
	Leaves(ctx context.Context, start, end int64) ([][]byte, error)
}

// CountLog counts the log figures of the period [from, to) over the
// first size leaves of r, reading them a thousand at a time.
func CountLog(ctx context.Context, r LeafReader, size int64, from, to time.Time) (Cell, error) {
	k := NewCounter(from, to)
	for start := int64(0); start < size; start += 1000 {
		end := min(start+1000, size)
		ls, err := r.Leaves(ctx, start, end)
		if err != nil {
			return Cell{}, err
		}
		if int64(len(ls)) != end-start {
			return Cell{}, fmt.Errorf("figures: the log has %d leaves in [%d, %d)", len(ls), start, end)
		}
		for i, b := range ls {
			l, err := leaf.Parse(b)
			if err != nil {
				return Cell{}, fmt.Errorf("figures: leaf %d: %w", start+int64(i), err)
			}
			k.Add(l)
		}
	}
	return k.Figures(), nil
}
