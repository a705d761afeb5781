package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/figures"
	"domicile/i18n"
	"domicile/law"
)

var update = flag.Bool("update", false, "rewrite golden files (and, with DOMICILE_TEST_CHROMIUM, the screenshots in doc/img)")

// demoNow is the fixed clock of every golden document.
var demoNow = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

const demoRef = "7f3a9c2e51b04d8e9a6c13f0e2d4b5a6978c1d2e3f405162738495a6b7c8d9e0"

func demoDeployment() *domicile.Deployment {
	d := deploy.Default()
	d.Declarations = domicile.Declarations{Entity: "Demo Shop Ltd. (示例商店有限公司)", Contact: "privacy@shop.example"}
	return d
}

func demoNext() *domicile.Deployment {
	d := demoDeployment()
	cells := append([]domicile.CellConfig(nil), d.Cells...)
	cells[0].Operator = "Shenzhen New Cloud Operations Co., Ltd. (深圳新云运营有限公司)"
	d.Cells = cells
	return d
}

func mustEngine(tb testing.TB) *law.Engine {
	tb.Helper()
	e, err := law.New()
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func ev(min int, role domicile.Role, j domicile.Jurisdiction, act domicile.Action, res, basis, ref string, out domicile.Outcome, detail string) domicile.Event {
	return domicile.Event{Time: demoNow.Add(-48*time.Hour + time.Duration(min)*time.Minute), Cell: "cn-gz1", Subject: demoRef,
		Role: role, Jurisdiction: j, Action: act, Resource: res, Basis: basis, Reference: ref, Outcome: out, Detail: detail}
}

func demoEvents() []EventProof {
	evs := []domicile.Event{
		ev(0, domicile.RoleApp, "CN", domicile.ActWrite, "subject", "service:service", "", domicile.Allowed, ""),
		ev(1, domicile.RoleApp, "CN", domicile.ActWrite, "record/profile/main", "service:service", "", domicile.Allowed, ""),
		ev(2, domicile.RoleApp, "CN", domicile.ActConsent, "consent/marketing", "service:service", "", domicile.Allowed, "given"),
		ev(30, domicile.RoleOperator, "CN", domicile.ActKeyUnwrap, "data-key", "support", "TICKET-7", domicile.Allowed, ""),
		ev(30, domicile.RoleOperator, "CN", domicile.ActRead, "record/profile/main", "support", "TICKET-7", domicile.Allowed, ""),
		ev(45, domicile.RoleApp, "US", domicile.ActRead, "record/message/m1", "service:analytics", "", domicile.Denied, "transfer-refused"),
		ev(50, domicile.RoleApp, "US", domicile.ActRead, "record/profile/main", "service:service", "", domicile.Allowed, "remote read from US under sc_or_certification (sc-2026-01) counted as transfer trf_demo; withheld id_number"),
		ev(60, domicile.RoleSystem, "CN", domicile.ActNotice, "authority-notice/ar-0001", "system", "", domicile.Allowed, "deferred-until=2026-06-01 commitment=q2o1"),
		ev(61, domicile.RoleAuthority, "CN", domicile.ActRead, "record/profile/main", "lawful-request-foreign", "MLA-2026-17", domicile.Allowed, ""),
	}
	out := make([]EventProof, len(evs))
	for i, e := range evs {
		b, _ := json.Marshal(e)
		out[i] = EventProof{Index: int64(40 + i), Leaf: "domicile/v1 t=" + e.Time.Truncate(time.Minute).Format("0601021504") + " a=" + string(e.Action) + " r=" + string(e.Role) + " o=" + string(e.Outcome) + " c=AAAA",
			Salt: []byte{byte(i), 1, 2, 3}, Committed: string(b), Event: e, Proof: []string{"ZmFrZS1wcm9vZi0x", "ZmFrZS1wcm9vZi0y"}}
	}
	return out
}

func demoLog() LogRef {
	return LogRef{Cell: "cn-gz1", Origin: "domicile/demo/cn-gz1", VerifierKey: "domicile/demo/cn-gz1+1a2b3c4d+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
		URL: "/log/cn-gz1/", Checkpoint: "domicile/demo/cn-gz1\n48\nq83fSxD2m0V5CkY8p3N1WcVb1K0x7d3n5u7p9A2bC4E=\n\n— domicile/demo/cn-gz1 GgAAABo2YXNkZmFzZGY=\n", Size: 48,
		RootHash: "q83fSxD2m0V5CkY8p3N1WcVb1K0x7d3n5u7p9A2bC4E="}
}

func demoAuthority(deferUntil time.Time) []AuthorityLine {
	du := deferUntil
	return []AuthorityLine{{
		Request: "ar-0001", Authority: "U.S. Department of Justice", Jurisdiction: "US", Foreign: true, Kind: "law_enforcement",
		LegalBasis: "CLOUD Act warrant", Reference: "MLA-2026-17", Received: demoNow.Add(-72 * time.Hour), Outcome: "partly-disclosed",
		Rules: []string{"CN.DSL.36", "CN.ICJA.4", "CN.PIPL.41"}, DeferUntil: &du,
		Notice: &NoticeText{Title: "Authority request", Body: "A foreign authority's request was referred to the PRC competent authority and your profile was partly disclosed with its approval."},
	}}
}

func demoStatementInput(tb testing.TB) StatementInput {
	delivered := demoNow.Add(-20 * time.Hour)
	return StatementInput{
		Now: demoNow, Period: Period{From: demoNow.AddDate(0, -1, 0), To: demoNow}, Deployment: demoNext(), Cell: demoNext().Cells[0],
		SubjectID: "li.wei", SubjectRef: demoRef, Jurisdiction: "CN", Registered: demoNow.Add(-48 * time.Hour),
		Records: []domicile.StoredRecord{
			{Kind: "profile", ID: "main", Fields: []string{"name", "email", "id_number"}},
			{Kind: "message", ID: "m1", Fields: []string{"from", "to", "body"}},
			{Kind: "message", ID: "m2", Fields: []string{"from", "to", "body"}},
		},
		Objects: []domicile.StoredObject{{Name: "photo1.jpg", Size: 300 << 10}},
		Events:  demoEvents(), Log: demoLog(),
		Notices: []NoticeLine{{ID: "n-5d41402abc4b2a76", Plan: "p-9e107d9d372bb682", Created: demoNow.Add(-24 * time.Hour), Attempts: 2, Delivered: &delivered,
			Texts: BuildNotice(demoNoticeInput(tb)).Texts}},
		Authority: demoAuthority(demoNow.AddDate(0, 3, 0)),
		Changes:   []ChangeLine{{Time: demoNow.Add(-2 * time.Hour), Cell: "cn-gz1", Field: "operator", Before: demoDeployment().Cells[0].Operator, After: demoNext().Cells[0].Operator}},
		Law:       mustEngine(tb),
	}
}

func demoChanges() []Change {
	return []Change{{Kind: ChangeOperator, Cell: "cn-gz1", Before: demoDeployment().Cells[0].Operator, After: demoNext().Cells[0].Operator, KeepsData: true}}
}

func demoNoticeInput(tb testing.TB) NoticeInput {
	return NoticeInput{ID: "n-5d41402abc4b2a76", Plan: "p-9e107d9d372bb682", SubjectRef: demoRef, Now: demoNow.Add(-24 * time.Hour),
		Changes: demoChanges(), Before: demoDeployment(), After: demoNext(), Law: mustEngine(tb)}
}

func demoImpactInput(tb testing.TB) ImpactInput {
	return ImpactInput{
		Now: demoNow, Plan: "p-9e107d9d372bb682", From: demoDeployment(), To: demoNext(),
		FromRef: DeploymentRef{Name: "current.yaml", SHA256: "3b1f0c9a"}, ToRef: DeploymentRef{Name: "next.yaml", SHA256: "8d2e7a41"},
		Changes: demoChanges(),
		Affected: []AffectedGroup{{Jurisdiction: "CN", Cell: "cn-gz1", Subjects: 3, Categories: []CategoryCount{
			{Category: domicile.Personal, Subjects: 3}, {Category: domicile.SpecificIdentity, Subjects: 1, Sensitive: true}}}},
		SubjectRefs:     []string{demoRef, "0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"},
		SubjectsCounted: true, Law: mustEngine(tb),
	}
}

// demoMechanism is the transfer mechanism the mechanism plan declares: a
// standard contract for support from the US, covering sensitive data.
func demoMechanism() domicile.MechanismDecl {
	return domicile.MechanismDecl{ID: "sc-acme", Kind: "standard_contract", Source: "CN", Destinations: []domicile.Jurisdiction{"US"},
		Recipients: []string{"Acme Support Inc."}, Purposes: []string{"support"},
		Categories: []domicile.Category{domicile.Personal, domicile.SpecificIdentity}, Reference: "SC-2026-001"}
}

func demoWithMechanism() *domicile.Deployment {
	d := demoDeployment()
	d.Mechanisms = []domicile.MechanismDecl{demoMechanism()}
	return d
}

func demoMechanismChanges() []Change {
	m := demoMechanism()
	return []Change{{Kind: ChangeMechanism, Jurisdiction: "CN", After: m.ID, KeepsData: true, Mechanism: &m}}
}

func demoMechanismImpactInput(tb testing.TB) ImpactInput {
	in := demoImpactInput(tb)
	in.Plan, in.To, in.Changes = "p-4a8f1c0e9b2d7e36", demoWithMechanism(), demoMechanismChanges()
	in.ToRef = DeploymentRef{Name: "next-mechanism.yaml", SHA256: "5c9e0b12"}
	// The ledger already counts 108,000 people this year: the plan
	// suggests the standard contract, not the small-volume exemption.
	today := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	in.Ledger = []figures.Outlook{{Entity: "Demo Shop Ltd. (示例商店有限公司)", Year: 2026, Source: "CN", AsOf: "2026-03-02", People: 108_000, SensitivePeople: 40,
		Law: "sc_or_certification", Rule: "CN.CBDF.8", Crossings: figures.Crossings(in.Law.Vocabulary().Thresholds, today, 108_000, 40)}}
	in.LedgerRead = true
	return in
}

func demoMechanismNoticeInput(tb testing.TB) NoticeInput {
	in := demoNoticeInput(tb)
	in.ID, in.Plan, in.After, in.Changes = "n-0f4e2d8c6b1a3957", "p-4a8f1c0e9b2d7e36", demoWithMechanism(), demoMechanismChanges()
	return in
}

func demoTransparencyInput() TransparencyInput {
	dep := demoNext()
	period := Period{From: demoNow.AddDate(0, -1, 0), To: demoNow}
	var cells []CellLog
	for i, cc := range dep.Cells {
		lr := demoLog()
		lr.Cell, lr.Origin = cc.ID, "domicile/demo/"+cc.ID
		k := figures.NewCounter(period.From, period.To)
		if i == 0 {
			var evs []domicile.Event
			for _, e := range demoEvents() {
				evs = append(evs, e.Event)
			}
			evs = append(evs,
				domicile.Event{Time: demoNow.Add(-3 * time.Hour), Action: domicile.ActRead, Role: domicile.RoleOperator, Outcome: domicile.Denied, Basis: "maintenance"},
				domicile.Event{Time: demoNow.Add(-2 * time.Hour), Action: domicile.ActConsent, Role: domicile.RoleApp, Outcome: domicile.Allowed, Basis: "service:service", Detail: "withdrawn:v1"},
				domicile.Event{Time: demoNow.Add(-1 * time.Hour), Action: domicile.ActErase, Role: domicile.RoleApp, Outcome: domicile.Allowed, Basis: "service:service"},
				domicile.Event{Time: demoNow.AddDate(0, -2, 0), Action: domicile.ActRead, Role: domicile.RoleOperator, Outcome: domicile.Allowed, Basis: "support"},
			)
			for _, e := range evs {
				k.Add(cell.LeafOf(e))
			}
		}
		cells = append(cells, CellLog{Cell: cc, Log: lr, Figures: k.Figures()})
	}
	reqs := demoAuthority(demoNow.AddDate(0, 3, 0))
	reqs = append(reqs, AuthorityLine{Request: "ar-0002", Authority: "Guangzhou Public Security Bureau", Jurisdiction: "CN", Kind: "public_security", Reference: "GZ-PSB-88", Received: demoNow.Add(-30 * time.Hour), Outcome: "refused"})
	return TransparencyInput{Now: demoNow, Period: period, Deployment: dep, Cells: cells, Requests: reqs, TransfersReported: true, Ledger: demoLedger()}
}

// demoLedger is a year of transfers: an import of earlier ones under the
// small-volume exemption, an export under a standard contract, a remote
// read counted, and an HR-exempt transfer left out of the thresholds.
func demoLedger() *figures.Ledger {
	const entity = "Demo Shop Ltd. (示例商店有限公司)"
	at := demoNow.Add(-24 * time.Hour)
	recs := []domicile.TransferRecord{
		{ID: "imp_1", Time: at, Entity: entity, Year: 2026, Source: "CN", Destination: "US", Channel: domicile.ChannelImport, Law: "exempt", Counted: true, People: 7999, NewPI: 7999},
		{ID: "trf_1", Time: at, Entity: entity, Year: 2026, Source: "CN", Destination: "US", Channel: domicile.ChannelExport, Law: "sc_or_certification", Mechanism: "sc-2026-01", Kind: domicile.MechStandardContract, Counted: true, People: 2, NewPI: 1},
		{ID: "trf_2", Time: at, Entity: entity, Year: 2026, Source: "CN", Destination: "US", Channel: domicile.ChannelRemote, Law: "sc_or_certification", Mechanism: "sc-2026-01", Kind: domicile.MechStandardContract, Counted: true, People: 1, NewPI: 1, NewSPI: 1},
		{ID: "trf_3", Time: at, Entity: entity, Year: 2026, Source: "CN", Destination: "SG", Channel: domicile.ChannelExport, Law: "exempt", Mechanism: "hr-2026", Kind: domicile.MechExemptHR, People: 3},
	}
	c := func(class domicile.CountClass, dim, value string, n int64) domicile.Count {
		return domicile.Count{CountKey: domicile.CountKey{Entity: entity, Year: 2026, Source: "CN", Class: class, Dim: dim, Value: value}, N: n}
	}
	counts := []domicile.Count{
		c(domicile.ClassPI, domicile.DimTotal, "", 8001),
		c(domicile.ClassPI, domicile.DimMechanism, "exempt", 7999),
		c(domicile.ClassPI, domicile.DimMechanism, "sc-2026-01", 2),
		c(domicile.ClassPI, domicile.DimRoute, domicile.Route("exempt", "US"), 7999),
		c(domicile.ClassPI, domicile.DimRoute, domicile.Route("hr-2026", "SG"), 3),
		c(domicile.ClassPI, domicile.DimRoute, domicile.Route("sc-2026-01", "US"), 2),
		c(domicile.ClassSPI, domicile.DimTotal, "", 1),
		c(domicile.ClassSPI, domicile.DimRoute, domicile.Route("sc-2026-01", "US"), 1),
	}
	l := figures.LedgerOf(entity, []int{2026}, recs, counts)
	return &l
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./report -update to accept):\n%s", name, firstDiff(want, got))
	}
}

func firstDiff(a, b []byte) string {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y []byte
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if !bytes.Equal(x, y) {
			return "line " + itoa(i+1) + ":\n- " + string(x) + "\n+ " + string(y)
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// demoDocs builds every demo document in every language.
func demoDocs(t *testing.T) map[string]any {
	docs := map[string]any{}
	for _, l := range i18n.Langs {
		p := i18n.NewPrinter(l)
		docs["statement."+string(l)] = BuildStatement(p, demoStatementInput(t))
		docs["impact."+string(l)] = BuildImpact(p, demoImpactInput(t))
		docs["transparency."+string(l)] = BuildTransparency(p, demoTransparencyInput())
		docs["impact-mechanism."+string(l)] = BuildImpact(p, demoMechanismImpactInput(t))
	}
	docs["notice"] = BuildNotice(demoNoticeInput(t))
	docs["notice-mechanism"] = BuildNotice(demoMechanismNoticeInput(t))
	return docs
}

func TestGolden(t *testing.T) {
	ext := map[Format]string{JSON: "json", Markdown: "md", HTML: "html"}
	for name, doc := range demoDocs(t) {
		for _, f := range []Format{JSON, Markdown, HTML} {
			t.Run(name+"."+ext[f], func(t *testing.T) {
				var buf bytes.Buffer
				if err := Render(&buf, doc, f); err != nil {
					t.Fatal(err)
				}
				golden(t, name+"."+ext[f], buf.Bytes())
			})
		}
	}
}
