package report

import (
	"slices"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
	"domicile/law"
)

// TestDeferredAuthorityHidden: before the deferral date nothing of the
// request shows (neither the line, nor its reads, nor the commitment
// event); after it, all of it does.
func TestDeferredAuthorityHidden(t *testing.T) {
	p := i18n.NewPrinter(i18n.EN)
	for _, tt := range []struct {
		name   string
		now    time.Time
		shown  bool
		events int
	}{
		{"before the deferral ends", demoNow, false, 7},
		{"after the deferral ends", demoNow.AddDate(0, 4, 0), true, 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := demoStatementInput(t)
			in.Now = tt.now
			in.Period.To = tt.now
			s := BuildStatement(p, in)
			if got := len(s.Authority) == 1; got != tt.shown {
				t.Errorf("authority request shown = %v, want %v", got, tt.shown)
			}
			if len(s.Accesses) != tt.events {
				t.Errorf("%d accesses shown, want %d", len(s.Accesses), tt.events)
			}
			for _, e := range s.Accesses {
				if !tt.shown && (e.Event.Role == domicile.RoleAuthority || strings.HasPrefix(e.Event.Resource, "authority-notice/")) {
					t.Errorf("event %+v shown before the deferral ends", e.Event)
				}
			}
			if !strings.Contains(strings.Join(s.Notes, " "), "defer") {
				t.Error("the statement does not say that notices may be deferred")
			}
		})
	}
}

// TestKeyCustodyNamesHolder: each custody kind names who can unwrap.
func TestKeyCustodyNamesHolder(t *testing.T) {
	p := i18n.NewPrinter(i18n.EN)
	cc := demoDeployment().Cells[0]
	for _, tt := range []struct {
		kind, holder, says string
	}{
		{"", cc.Operator, "operator can therefore unwrap"},
		{"file", cc.Operator, "keyring file on the machines of the cell operator"},
		{"pkcs11", cc.Operator, "hardware security module"},
		{"keyd", "Demo Shop", "The custodian can unwrap it"},
	} {
		c := cc
		c.Custody.Kind = tt.kind
		got := KeyCustody(p, c, "Demo Shop")
		if got.Holder != tt.holder || !strings.Contains(got.Text, tt.says) {
			t.Errorf("KeyCustody(%q) = %+v, want holder %q and text with %q", tt.kind, got, tt.holder, tt.says)
		}
	}
}

// TestReachNeverSaysNoOne: for CN the PRC access rules are cited; for a
// jurisdiction the rule set does not cover, the statement says so.
func TestReachNeverSaysNoOne(t *testing.T) {
	p := i18n.NewPrinter(i18n.EN)
	e := mustEngine(t)
	dep := demoDeployment()
	cn := Reach(p, e, dep.Cells[0], "", demoNow)
	var ids []string
	for _, r := range cn {
		for _, x := range r.Rules {
			ids = append(ids, x.ID)
		}
	}
	for _, want := range []string{"CN.DSL.35", "CN.CSL.28", "CN.NIL.7", "CN.CEL.26", "CN.PIPL.41", "CN.DSL.36"} {
		if !strings.Contains(strings.Join(ids, " "), want) {
			t.Errorf("CN reach lacks %s (has %v)", want, ids)
		}
	}
	us := Reach(p, e, dep.Cells[2], "", demoNow)
	found := false
	for _, r := range us {
		found = found || strings.Contains(r.Text, "does not describe what the authorities of US may compel")
	}
	if !found {
		t.Errorf("US reach %+v does not say the rule set is silent", us)
	}
}

// TestTransfersUnreportedIsNotNone: with no gateway wired the statement
// must not claim there were no transfers.
func TestTransfersUnreportedIsNotNone(t *testing.T) {
	for _, l := range i18n.Langs {
		s := BuildStatement(i18n.NewPrinter(l), demoStatementInput(t))
		if s.TransfersReported {
			t.Fatal("transfers reported without a gateway")
		}
		var b strings.Builder
		if err := Render(&b, s, Markdown); err != nil {
			t.Fatal(err)
		}
		none, _ := i18n.Text(l, "statement.transfers.none")
		if strings.Contains(b.String(), none) {
			t.Errorf("%s: the statement says there were no transfers though none are reported to it", l)
		}
	}
}

func TestTransparencyCounts(t *testing.T) {
	tr := BuildTransparency(i18n.NewPrinter(i18n.EN), demoTransparencyInput())
	c := tr.Cells[0].Figures
	// In the period: 9 demo events + denied maintenance read + withdrawal
	// + erasure; the operator read two months ago is outside it.
	if c.Events != 12 || c.RemoteReads != 1 || c.OperatorAccesses != 3 || c.AuthorityAccesses != 1 || c.Erasures != 1 || c.ConsentsWithdrawn != 1 {
		t.Errorf("cell figures %+v", c)
	}
	wantOp := []figures.BasisCount{{Basis: "maintenance", Denied: 1}, {Basis: "support", Allowed: 2}}
	if !slices.Equal(c.OperatorByJustification, wantOp) || tr.Totals.Events != 12 || !slices.Equal(tr.Totals.OperatorByJustification, wantOp) {
		t.Errorf("operator accesses by justification %+v, totals %+v; want %+v", c.OperatorByJustification, tr.Totals, wantOp)
	}
	if tr.AuthorityTotals["received"] != 2 || tr.AuthorityTotals["refused"] != 1 {
		t.Errorf("authority totals %v", tr.AuthorityTotals)
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"json": JSON, "md": Markdown, "markdown": Markdown, "html": HTML} {
		if f, err := ParseFormat(s); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("pdf"); err == nil {
		t.Error("ParseFormat(pdf) succeeded")
	}
}

// TestMechanismActions: a new CN standard contract for sensitive data
// needs the filing, an impact assessment, the Art. 39 notice and separate
// consent, each named by its rule; the same mechanism for non-personal
// data triggers none of the personal-information duties.
func TestMechanismActions(t *testing.T) {
	e := mustEngine(t)
	p := i18n.NewPrinter(i18n.EN)
	tests := []struct {
		name    string
		cats    []domicile.Category
		want    []string
		wantNot []string
	}{
		{"sensitive personal data", []domicile.Category{domicile.Personal, domicile.SpecificIdentity}, []string{"CN.SCM.5", "CN.PIPL.55", "CN.PIPL.39", "CN.PIPL.39.CONSENT", "CN.PIPL.28"}, nil},
		{"non-personal data", []domicile.Category{domicile.NonPersonal}, nil, []string{"CN.SCM.5", "CN.PIPL.39", "CN.PIPL.39.CONSENT", "CN.PIPL.28"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := demoMechanism()
			m.Categories = tt.cats
			got := map[string]bool{}
			for _, a := range MechanismActions(p, e, m, domicile.Declarations{}, demoNow, nil) {
				got[a.Rule] = true
			}
			for _, r := range tt.want {
				if !got[r] {
					t.Errorf("MechanismActions(%v) lacks %s; got %v", tt.cats, r, got)
				}
			}
			for _, r := range tt.wantNot {
				if got[r] {
					t.Errorf("MechanismActions(%v) has %s", tt.cats, r)
				}
			}
		})
	}
}

// TestMechanismActionsReadTheLedger: a plan's actions rest on the year's
// counts of people from the ledger: under 100,000 the small-volume
// exemption, at 108,000 a standard contract, and the impact report says
// which declared mechanism satisfies it and when the next threshold is
// crossed at the current rate.
func TestMechanismActionsReadTheLedger(t *testing.T) {
	e := mustEngine(t)
	p := i18n.NewPrinter(i18n.EN)
	m := demoMechanism()
	m.Kind, m.Categories = "exemption_contract", []domicile.Category{domicile.Personal}
	m.Kind = "standard_contract"
	today := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // day 61 of the year
	for _, tc := range []struct {
		people  int64
		want    string
		wantNot string
	}{{5_000, "CN.CBDF.5.4", "CN.CBDF.8"}, {108_000, "CN.CBDF.8", "CN.CBDF.5.4"}} {
		o := &figures.Outlook{Entity: "e", Year: 2026, Source: "CN", AsOf: "2026-03-02", People: tc.people,
			Crossings: figures.Crossings(e.Vocabulary().Thresholds, today, tc.people, 0)}
		got := map[string]bool{}
		for _, a := range MechanismActions(p, e, m, domicile.Declarations{}, demoNow, o) {
			got[a.Rule] = true
		}
		if !got[tc.want] || got[tc.wantNot] {
			t.Errorf("%d people: actions %v, want %s and not %s", tc.people, got, tc.want, tc.wantNot)
		}
	}
	in := demoMechanismImpactInput(t)
	rep, err := e.Decide(law.Facts{"source_jurisdiction": "CN", "transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(108_000)}, today)
	if err != nil {
		t.Fatal(err)
	}
	in.Ledger = []figures.Outlook{{Entity: "e", Year: 2026, Source: "CN", AsOf: "2026-03-02", People: 108_000, Law: *rep.Mechanism, Rule: rep.MechanismRule,
		Crossings: figures.Crossings(e.Vocabulary().Thresholds, today, 108_000, 0)}}
	in.LedgerRead = true
	r := BuildImpact(p, in)
	if len(r.Ledger) != 1 {
		t.Fatalf("impact ledger %+v", r.Ledger)
	}
	l := r.Ledger[0]
	if l.Law != "sc_or_certification" || !slices.Equal(l.Declared, []string{"sc-acme"}) || !strings.Contains(l.Text, "108,000 people") || !strings.Contains(l.Text, "sc-acme") {
		t.Errorf("ledger line %+v", l)
	}
	// 108,000 in 61 days: 1,000,000 is reached on day 565, not this year.
	if len(l.Crossing) != 3 || !strings.Contains(l.Crossing[0], "has reached 100,000") || !strings.Contains(l.Crossing[1], "does not reach 1,000,000") {
		t.Errorf("crossing texts %q", l.Crossing)
	}
	if !hasAction(r.Actions, "CN.CBDF.8") || hasAction(r.Actions, "CN.CBDF.5.4") {
		t.Errorf("impact actions %+v: want CN.CBDF.8 and not the exemption", r.Actions)
	}
}

func hasAction(as []Action, rule string) bool {
	for _, a := range as {
		if a.Rule == rule {
			return true
		}
	}
	return false
}
