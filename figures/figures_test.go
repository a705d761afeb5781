package figures

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
	"domicile/law"
	"domicile/leaf"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func lf(min int, action, role, outcome string, tags ...string) leaf.Leaf {
	return leaf.Leaf{Time: t0.Add(time.Duration(min) * time.Minute), Action: action, Role: role, Outcome: outcome, Tags: tags}
}

func TestLogFigures(t *testing.T) {
	leaves := []leaf.Leaf{
		lf(-1, "erase", "app", "allowed"), // before the period
		lf(0, "read", "operator", "allowed", "support"),
		lf(1, "read", "operator", "denied"),
		lf(2, "read", "operator", "allowed", "remote", "support"),
		lf(3, "list", "authority", "allowed", "lawful-request-domestic"),
		lf(4, "erase", "app", "allowed"),
		lf(5, "erase", "app", "denied"),
		lf(6, "export", "app", "allowed"),
		lf(7, "export", "app", "denied"),
		lf(8, "transfer", "system", "allowed"),
		lf(9, "read", "app", "allowed", "remote"),
		lf(10, "read", "app", "denied", "remote"),
		lf(11, "consent", "app", "allowed", "withdrawal"),
		lf(12, "consent", "subject", "allowed"),
		lf(60, "read", "operator", "allowed", "support"), // at the end: outside
	}
	k := NewCounter(t0, t0.Add(time.Hour))
	for _, l := range leaves {
		k.Add(l)
	}
	want := Cell{Events: 13, OperatorAccesses: 3, AuthorityAccesses: 1, Erasures: 1, TransferEvents: 2, RemoteReads: 2, ConsentsWithdrawn: 1,
		OperatorByJustification:  []BasisCount{{Basis: "", Denied: 1}, {Basis: "support", Allowed: 2}},
		AuthorityByJustification: []BasisCount{{Basis: "lawful-request-domestic", Allowed: 1}}}
	got := k.Figures()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("figures (-want +got):\n%s", d)
	}
	if d := Compare(want, got); len(d) != 0 {
		t.Errorf("Compare(equal) = %v", d)
	}
	sum := Sum(got, got)
	if sum.Events != 26 || sum.OperatorByJustification[1].Allowed != 4 || len(sum.AuthorityByJustification) != 1 {
		t.Errorf("Sum = %+v", sum)
	}
}

func TestCompareNamesFigures(t *testing.T) {
	a := Cell{Events: 3, Erasures: 1, OperatorByJustification: []BasisCount{{Basis: "support", Allowed: 2}}}
	b := a
	b.Erasures = 2
	b.OperatorByJustification = []BasisCount{{Basis: "support", Allowed: 1, Denied: 1}, {Basis: "maintenance", Allowed: 1}}
	var names []string
	for _, d := range Compare(a, b) {
		names = append(names, d.Figure)
	}
	want := []string{"erasures", "operator_accesses_by_justification[maintenance].allowed", "operator_accesses_by_justification[support].allowed", "operator_accesses_by_justification[support].denied"}
	if !slices.Equal(names, want) {
		t.Errorf("Compare names %v, want %v", names, want)
	}
	if s := Compare(a, b)[0].String(); !strings.Contains(s, "erasures: the report says 1, the log counts 2") {
		t.Errorf("Difference.String() = %q", s)
	}
}

func engine(t *testing.T) *law.Engine {
	t.Helper()
	e, err := law.New()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCrossings: the day a threshold is reached at the year's rate, each
// side of it, and the law in force on the day.
func TestCrossings(t *testing.T) {
	ths := engine(t).Vocabulary().Thresholds
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	for _, tc := range []struct {
		name    string
		today   string
		pi, spi int64
		want    map[string]string // "fact threshold" -> date, "reached" or ""
	}{
		{"1000 a day", "2026-03-31", 90_000, 0, map[string]string{"pi_individuals_ytd 100000": "2026-04-10", "pi_individuals_ytd 1000000": "", "sensitive_pi_individuals_ytd 10000": ""}},
		{"one short", "2026-03-31", 99_999, 0, map[string]string{"pi_individuals_ytd 100000": "2026-04-01"}},
		{"reached", "2026-03-31", 100_000, 9_999, map[string]string{"pi_individuals_ytd 100000": "reached", "sensitive_pi_individuals_ytd 10000": "2026-04-01"}},
		{"past", "2026-03-31", 100_001, 10_000, map[string]string{"pi_individuals_ytd 100000": "reached", "sensitive_pi_individuals_ytd 10000": "reached"}},
		{"not this year", "2026-12-31", 50_000, 0, map[string]string{"pi_individuals_ytd 100000": ""}},
		{"first of January", "2026-01-01", 100, 0, map[string]string{"pi_individuals_ytd 100000": "", "pi_individuals_ytd 1000000": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, c := range Crossings(ths, day(tc.today), tc.pi, tc.spi) {
				v := c.Date
				if c.Reached {
					v = "reached"
				}
				got[c.Fact+" "+itoa(int(c.Threshold))] = v
			}
			for k, w := range tc.want {
				if g, ok := got[k]; !ok || g != w {
					t.Errorf("Crossings(%s, pi %d, spi %d)[%s] = %q (present %v), want %q; all %v", tc.today, tc.pi, tc.spi, k, g, ok, w, got)
				}
			}
		})
	}
	if cs := Crossings(ths, day("2023-06-01"), 90_000, 0); len(cs) != 0 {
		t.Errorf("Crossings before the 2024 regime = %+v, want none (its counts are not the ledger's)", cs)
	}
	next := Next(Crossings(ths, day("2026-03-31"), 100_000, 0))
	if len(next) != 2 || next[0].Threshold != 1_000_000 || next[1].Threshold != 10_000 {
		t.Errorf("Next = %+v, want the 1,000,000 and the 10,000 thresholds", next)
	}
}

func TestLedgerFigures(t *testing.T) {
	at := t0
	recs := []domicile.TransferRecord{
		{ID: "a", Time: at, Entity: "e", Year: 2026, Source: "CN", Destination: "US", Law: "exempt", Counted: true, People: 5},
		{ID: "b", Time: at, Entity: "e", Year: 2026, Source: "CN", Destination: "US", Law: "exempt", Counted: true, People: 3},
		{ID: "c", Time: at, Entity: "e", Year: 2026, Source: "CN", Destination: "SG", Law: "exempt", Mechanism: "hr", Kind: domicile.MechExemptHR, People: 2},
		{ID: "d", Time: at, Entity: "e", Year: 2025, Source: "CN", Destination: "US", Law: "exempt", Counted: true, People: 9},
	}
	c := func(year int, class domicile.CountClass, dim, value string, n int64) domicile.Count {
		return domicile.Count{CountKey: domicile.CountKey{Entity: "e", Year: year, Source: "CN", Class: class, Dim: dim, Value: value}, N: n}
	}
	counts := []domicile.Count{
		c(2026, domicile.ClassPI, domicile.DimTotal, "", 6),
		c(2026, domicile.ClassPI, domicile.DimRoute, domicile.Route("exempt", "US"), 6),
		c(2026, domicile.ClassPI, domicile.DimRoute, domicile.Route("hr", "SG"), 2),
		c(2026, domicile.ClassSPI, domicile.DimTotal, "", 1),
		c(2026, domicile.ClassSPI, domicile.DimRoute, domicile.Route("exempt", "US"), 1),
	}
	if pi, spi := PeopleYTD(counts, "CN"); pi != 6 || spi != 1 {
		t.Errorf("PeopleYTD = %d, %d; want 6, 1", pi, spi)
	}
	l := LedgerOf("e", []int{2026}, recs, counts)
	want := []TransferRow{
		{Year: 2026, Source: "CN", Mechanism: "exempt", Destination: "US", Transfers: 2, Counted: 2, People: 6, SensitivePeople: 1},
		{Year: 2026, Source: "CN", Mechanism: "hr", Kind: domicile.MechExemptHR, Destination: "SG", Transfers: 1, People: 2},
	}
	if d := cmp.Diff(want, l.Transfers); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]YearPeople{{Year: 2026, Source: "CN", People: 6, SensitivePeople: 1}}, l.People); d != "" {
		t.Errorf("people (-want +got):\n%s", d)
	}
	if l.Records != 4 || !strings.HasPrefix(l.Digest, "sha256:") || len(l.Digest) != 7+64 {
		t.Errorf("records %d digest %q", l.Records, l.Digest)
	}
	if d := CompareLedger(l, LedgerOf("e", []int{2026}, recs, counts)); len(d) != 0 {
		t.Errorf("CompareLedger(same) = %v", d)
	}
	// Any change to a record or a count changes the digest; an edited
	// figure is named.
	recs[1].People = 4
	other := LedgerOf("e", []int{2026}, recs, counts)
	if other.Digest == l.Digest {
		t.Error("the digest does not change with a record")
	}
	edited := l
	edited.Transfers = slices.Clone(l.Transfers)
	edited.Transfers[0].People = 7
	var names []string
	for _, d := range CompareLedger(edited, l) {
		names = append(names, d.Figure)
	}
	if !slices.Equal(names, []string{"ledger.transfers[2026,CN,exempt>US].people"}) {
		t.Errorf("CompareLedger(edited) = %v", names)
	}
}
