package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/report"
	"domicile/transfer"
)

// TestFiguresWhyScenario is issue 14's "Why", through the real binary:
// a remote read, exports, an import of 115,997 rows for 107,998 people
// (with duplicates, a prior year, sensitive rows and HR-exempt rows),
// consents and a withdrawal, an erasure, an operator's read. Each figure
// of the transparency report, the statements, the evidence, assess
// --live and a change plan's impact report is checked against the value
// written here; `transparency verify` recounts the report from the public
// tiles, catches an edited figure, and a report counted at a checkpoint
// the log does not contain.
func TestFiguresWhyScenario(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	cn := s.client(s.token("app", "CN", ""), "support", "")
	us := s.client(s.token("app", "US", ""), "support", "")
	admin := s.client(s.Admin, "", "")
	cst := time.FixedZone("CST", 8*3600)
	now := time.Now().In(cst)
	year := now.Year()
	today := now.Format(time.DateOnly)

	for _, id := range []string{"li.wei", "wang.fang", "zhang.min"} {
		if _, err := cn.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := cn.PutRecord(ctx, id, "message", "m1", map[string]string{"from": id, "to": "zhang.san", "body": "明天见"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"li.wei", "wang.fang"} { // zhang.min gives none
		if _, err := cn.SetConsent(ctx, id, "cross-border", "v1", true); err != nil {
			t.Fatal(err)
		}
	}

	// A read from the US: a transfer abroad, counted once.
	if _, err := us.GetRecord(ctx, "li.wei", "message", "m1"); err != nil {
		t.Fatalf("remote read: %v", err)
	}
	// An export: zhang.min is left out for want of consent; li.wei is
	// counted already.
	req := func(subjects ...string) transfer.Request {
		return transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: subjects,
			Fields: map[string][]string{"message": {"from", "body"}}, Plain: true}
	}
	d1, body, err := us.Transfer(ctx, req("li.wei", "wang.fang", "zhang.min"))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	io.Copy(io.Discard, body)
	body.Close()
	if d1.Law != "exempt" || d1.Subjects != 2 || d1.NewPI != 1 || d1.PIYTD != 2 {
		t.Fatalf("export decision %s, %d subjects, new %d, ytd %d; want exempt, 2, 1, 2", d1.Law, d1.Subjects, d1.NewPI, d1.PIYTD)
	}

	// The import: 107,998 people this year to the US under the exemption,
	// 7,999 of them listed twice; 7,999 of them again with health data to
	// Singapore; 500 last year; 10 under the HR exemption (not counted).
	var csv bytes.Buffer
	csv.WriteString(transfer.ImportHeader + "\n")
	day := fmt.Sprintf("%d-01-15", year)
	for i := 0; i < 107_998; i++ {
		fmt.Fprintf(&csv, "%s,pre-%d,US,personal,exempt\n", day, i)
		if i < 7_999 {
			fmt.Fprintf(&csv, "%s,pre-%d,US,personal,exempt\n", day, i)
			fmt.Fprintf(&csv, "%s,pre-%d,SG,personal;medical-health,exempt\n", day, i)
		}
	}
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&csv, "%d-06-01,old-%d,US,personal,exempt\n", year-1, i)
	}
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&csv, "%s,hr-%d,US,personal,exemption_hr\n", day, i)
	}
	csvPath := filepath.Join(t.TempDir(), "earlier.csv")
	if err := os.WriteFile(csvPath, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runBinary(t, "transfer", "import", "--server", s.URL, "--token", s.Admin, csvPath)
	if err != nil {
		t.Fatalf("transfer import: %v\n%s", err, out)
	}
	var imp transfer.ImportResult
	if err := json.Unmarshal(out, &imp); err != nil {
		t.Fatalf("import result: %v\n%s", err, out)
	}
	if imp.Rows != 107_998+2*7_999+500+10 || imp.Counted != imp.Rows-10 || imp.NewPI != 107_998+500 || imp.NewSPI != 7_999 {
		t.Fatalf("import %+v", imp)
	}

	// Past 100,000 a further export needs a filed standard contract.
	sc := transfer.Mechanism{ID: "sc-1", Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-1", Signed: today, Filed: today, FilingReference: "粤网信备-1",
		Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"Acme Support Inc."}, Purposes: []string{"support"},
			Categories: []domicile.Category{domicile.Personal}}}
	if _, err := admin.PutMechanism(ctx, sc); err != nil {
		t.Fatal(err)
	}
	d2, body, err := us.Transfer(ctx, req("wang.fang"))
	if err != nil {
		t.Fatalf("export under the contract: %v", err)
	}
	io.Copy(io.Discard, body)
	body.Close()
	if d2.Law != "sc_or_certification" || d2.Mechanism == nil || d2.Mechanism.ID != "sc-1" || d2.NewPI != 0 || d2.PIYTD != 108_000 {
		t.Fatalf("export under the contract: %+v", d2)
	}

	// wang.fang withdraws; zhang.min is erased; an operator reads li.wei.
	if _, err := cn.SetConsent(ctx, "wang.fang", "cross-border", "v1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := cn.EraseSubject(ctx, "zhang.min"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client(s.token("operator", "CN", ""), "", "support TICKET-9").GetRecord(ctx, "li.wei", "message", "m1"); err != nil {
		t.Fatal(err)
	}

	// The evidence: every record's people and new people.
	type ev struct {
		channel, route  string
		year            int
		counted         bool
		people, pi, spi int64
	}
	var got []ev
	evb, err := admin.Evidence(ctx, "", "", "json")
	if err != nil {
		t.Fatal(err)
	}
	sc2 := bufio.NewScanner(evb)
	for sc2.Scan() {
		var r domicile.TransferRecord
		if err := json.Unmarshal(sc2.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev{r.Channel, r.MechanismName() + ">" + string(r.Destination), r.Year, r.Counted, r.People, r.NewPI, r.NewSPI})
	}
	evb.Close()
	want := []ev{
		{"remote", "exempt>US", year, true, 1, 1, 0},
		{"export", "exempt>US", year, true, 2, 1, 0},
		// Import groups, in key order: year|destination|mechanism, each
		// flushed at 50,000 people.
		{"import", "exempt>US", year - 1, true, 500, 500, 0},
		{"import", "exempt>US", year, true, 50_000, 50_000, 0},
		{"import", "exempt>US", year, true, 50_000, 50_000, 0},
		{"import", "exempt>SG", year, true, 7_999, 0, 7_999},
		{"import", "exempt>US", year, true, 7_998, 7_998, 0},
		{"import", "exemption_hr>US", year, false, 10, 0, 0},
		{"export", "sc-1>US", year, true, 1, 0, 0},
	}
	key := func(e ev) string { return fmt.Sprintf("%s %s %d %09d", e.channel, e.route, e.year, e.people) }
	slices.SortFunc(got, func(a, b ev) int { return strings.Compare(key(a), key(b)) })
	slices.SortFunc(want, func(a, b ev) int { return strings.Compare(key(a), key(b)) })
	if !slices.EqualFunc(got, want, func(a, b ev) bool { return a == b }) {
		t.Errorf("evidence:\n got %+v\nwant %+v", got, want)
	}

	// The transparency report of this year, from the CLI.
	trFile := filepath.Join(t.TempDir(), "transparency.json")
	out, err = runBinary(t, "transparency", "--server", s.URL, "--token", s.Admin, "--format", "json",
		"--from", fmt.Sprintf("%d-01-01", year), "--to", fmt.Sprintf("%d-01-01", year+1))
	if err != nil {
		t.Fatalf("transparency: %v", err)
	}
	os.WriteFile(trFile, out, 0o600)
	var tr report.Transparency
	if err := json.Unmarshal(out, &tr); err != nil {
		t.Fatal(err)
	}
	cnCell := tr.Cells[slices.IndexFunc(tr.Cells, func(c report.CellFigures) bool { return c.Cell == "cn-gz1" })]
	f := cnCell.Figures
	// Three export leaves (li.wei and wang.fang, then wang.fang), one
	// read from abroad, one withdrawal, one erasure, the operator's read
	// and the key unwrap it needed.
	if f.TransferEvents != 3 || f.RemoteReads != 1 || f.ConsentsWithdrawn != 1 || f.Erasures != 1 || f.OperatorAccesses != 2 ||
		len(f.OperatorByJustification) != 1 || f.OperatorByJustification[0].Basis != "support" || f.OperatorByJustification[0].Allowed != 2 {
		t.Errorf("cn-gz1 figures %+v", f)
	}
	if tr.Totals.TransferEvents != 3 || tr.Totals.RemoteReads != 1 || tr.Totals.Erasures != 1 || tr.Totals.Events != f.Events {
		t.Errorf("totals %+v", tr.Totals)
	}
	if cnCell.Log.Size < int64(f.Events) || cnCell.Log.RootHash == "" {
		t.Errorf("cn-gz1 counted at %d leaves, root %q", cnCell.Log.Size, cnCell.Log.RootHash)
	}
	l := tr.Ledger
	if l == nil || !slices.Equal(l.Years, []int{year}) || len(l.People) != 1 || l.People[0].People != 108_000 || l.People[0].SensitivePeople != 7_999 || l.Records != 8 {
		t.Fatalf("ledger figures %+v", l)
	}
	type row struct {
		route                           string
		transfers, counted, people, spi int64
	}
	var rows []row
	for _, r := range l.Transfers {
		rows = append(rows, row{r.Mechanism + ">" + string(r.Destination), r.Transfers, r.Counted, r.People, r.SensitivePeople})
	}
	wantRows := []row{
		{"exempt>SG", 1, 1, 7_999, 7_999},
		{"exempt>US", 5, 5, 108_000, 0}, // was "5 (115,999)": rows, not people
		{"exemption_hr>US", 1, 0, 10, 0},
		{"sc-1>US", 1, 1, 1, 0},
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("transfers by route:\n got %+v\nwant %+v", rows, wantRows)
	}

	// The statements: li.wei's data left twice (the remote read and the
	// export), wang.fang's twice by export.
	stmt := func(id string) *report.Statement {
		st, err := s.client(s.token("app", "CN", ""), "service", "").Statement(ctx, id, "en")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := stmt("li.wei"); len(st.Transfers) != 2 || st.TransferEvents != 1 || len(st.RemoteReads) != 1 {
		t.Errorf("li.wei's statement: %d transfers, %d transfer events, %d remote reads; want 2, 1, 1", len(st.Transfers), st.TransferEvents, len(st.RemoteReads))
	}
	if st := stmt("wang.fang"); len(st.Transfers) != 2 || st.TransferEvents != 2 || len(st.RemoteReads) != 0 {
		t.Errorf("wang.fang's statement: %d transfers, %d transfer events, %d remote reads; want 2, 2, 0", len(st.Transfers), st.TransferEvents, len(st.RemoteReads))
	}

	// assess --live: the same counts, the same crossings.
	out, err = runBinary(t, "assess", "--live", "--format", "json", "--server", s.URL, "--token", s.Admin)
	if err != nil {
		t.Fatalf("assess --live: %v", err)
	}
	var live struct {
		Mechanism string `json:"mechanism"`
		Ledger    struct {
			PI        int64 `json:"pi_individuals_ytd"`
			SPI       int64 `json:"sensitive_pi_individuals_ytd"`
			Crossings []struct {
				Fact      string `json:"fact"`
				Threshold int64  `json:"threshold"`
				Reached   bool   `json:"reached"`
				Date      string `json:"date"`
			} `json:"crossings"`
		} `json:"ledger"`
	}
	if err := json.Unmarshal(out, &live); err != nil {
		t.Fatalf("assess --live: %v\n%s", err, out)
	}
	if live.Mechanism != "sc_or_certification" || live.Ledger.PI != 108_000 || live.Ledger.SPI != 7_999 || len(live.Ledger.Crossings) != 3 {
		t.Fatalf("assess --live: %+v", live)
	}
	// The day each threshold is reached at this year's rate, counted here
	// independently: the count grows by count/d a day, d the day of the
	// year today.
	d := float64(now.YearDay())
	crossing := func(v, threshold float64) string {
		n := math.Ceil(threshold * d / v)
		at := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n)-1)
		if at.Year() != year {
			return ""
		}
		return at.Format(time.DateOnly)
	}
	for _, c := range live.Ledger.Crossings {
		var want string
		switch {
		case c.Fact == "pi_individuals_ytd" && c.Threshold == 100_000:
			if !c.Reached {
				t.Errorf("100,000 not reached at 108,000")
			}
			continue
		case c.Fact == "pi_individuals_ytd":
			want = crossing(108_000, float64(c.Threshold))
		default:
			want = crossing(7_999, float64(c.Threshold))
		}
		if c.Reached || c.Date != want {
			t.Errorf("crossing %s %d: reached %v on %q, want %q", c.Fact, c.Threshold, c.Reached, c.Date, want)
		}
	}

	// A change plan declaring the contract: the ledger's counts, not zero,
	// decide what it suggests.
	plan, err := admin.MakePlan(ctx, "next.yaml", []byte(`name: demo
cells:
  - {id: cn-gz1, jurisdiction: CN, operator: "Guangzhou Demo Cloud Data Co., Ltd. (广州示例云数据有限公司)", location: "Guangzhou, Guangdong, China"}
  - {id: eu-fra1, jurisdiction: EU, operator: "Demo Cloud Europe GmbH", location: "Frankfurt am Main, Germany"}
  - {id: us-east1, jurisdiction: US, operator: "Demo Cloud Inc.", location: "Ashburn, Virginia, United States"}
policy: {CN: [cn-gz1], EU: [eu-fra1], "*": [us-east1]}
purposes: {service: {}, support: {kinds: [profile, message, email]}, analytics: {kinds: [location], consent: analytics}, marketing: {fields: {profile: [name, email]}, consent: marketing}}
kinds:
  profile: {name: personal, email: personal, phone: personal, id_number: specific-identity, religion: religious-belief}
  message: {from: personal, to: personal, body: personal}
  email: {from: personal, to: personal, subject: personal, body: personal}
  location: {lat: whereabouts, lon: whereabouts, at: whereabouts}
mechanisms:
  - {id: sc-1, kind: standard_contract, source: CN, destinations: [US], recipients: ["Acme Support Inc."], purposes: [support], categories: [personal]}
`))
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	imp2 := plan.Reports["en"]
	if imp2 == nil || len(imp2.Ledger) != 1 {
		t.Fatalf("impact report ledger: %+v", imp2)
	}
	ll := imp2.Ledger[0]
	if ll.Source != "CN" || ll.People != 108_000 || ll.SensitivePeople != 7_999 || ll.Law != "sc_or_certification" || !slices.Equal(ll.Declared, []string{"sc-1"}) {
		t.Errorf("impact ledger line %+v", ll)
	}
	rules := map[string]bool{}
	for _, a := range imp2.Actions {
		rules[a.Rule] = true
	}
	if !rules["CN.CBDF.8"] || rules["CN.CBDF.5.4"] {
		t.Errorf("the plan's actions %v: want the standard contract (CN.CBDF.8), not the small-volume exemption (CN.CBDF.5.4)", rules)
	}
	if imp2.Total != 2 { // li.wei and wang.fang; zhang.min was erased
		t.Errorf("affected subjects %d, want 2", imp2.Total)
	}

	// transparency verify: the report recounts from the tiles alone; the
	// ledger's figures recount with a token.
	out, err = runBinary(t, "transparency", "verify", trFile, "--server", s.URL, "--token", s.Admin)
	if err != nil || !strings.Contains(string(out), "OK: every log figure matches") || !strings.Contains(string(out), "ledger (recounted from the ledger's evidence and counts): every figure matches") {
		t.Fatalf("transparency verify: %v\n%s", err, out)
	}
	// A pinned key that is not the report's is refused.
	euKey := tr.Cells[slices.IndexFunc(tr.Cells, func(c report.CellFigures) bool { return c.Cell == "eu-fra1" })].Log.VerifierKey
	out, err = runBinary(t, "transparency", "verify", "--server", s.URL, "--key", "cn-gz1="+euKey, trFile)
	if err == nil || !strings.Contains(string(out), "FAIL cells[cn-gz1]: the report names log key") {
		t.Fatalf("transparency verify with another pinned key: %v\n%s", err, out)
	}
	// An edited figure is named.
	edited := editJSON(t, out2(trFile), func(m map[string]any) {
		cells := m["cells"].([]any)
		for _, c := range cells {
			c := c.(map[string]any)
			if c["cell"] == "cn-gz1" {
				c["figures"].(map[string]any)["remote_reads"] = 0.0
			}
		}
		m["ledger"].(map[string]any)["people"].([]any)[0].(map[string]any)["people"] = 99_999.0
	})
	out, err = runBinary(t, "transparency", "verify", edited, "--server", s.URL, "--token", s.Admin)
	if err == nil || !strings.Contains(string(out), "FAIL cells[cn-gz1] (recounted from") || !strings.Contains(string(out), "remote_reads: the report says 0, the log counts 1") ||
		!strings.Contains(string(out), fmt.Sprintf("ledger.people[%d,CN].people: the report says 99999, the ledger counts 108000", year)) {
		t.Fatalf("transparency verify of an edited report: %v\n%s", err, out)
	}

	// A report counted at a checkpoint this log does not contain: a copy
	// of the deployment goes its own way and reports; the original's log
	// does not contain the copy's checkpoint.
	s.Stop()
	fork := t.TempDir()
	copyDir(t, s.Data, fork)
	s = startServer(t, s.Data)
	f2 := startServer(t, fork)
	appF := f2.client(f2.token("app", "CN", ""), "support", "")
	if _, err := appF.GetRecord(ctx, "li.wei", "message", "m1"); err != nil {
		t.Fatal(err)
	}
	appO := s.client(s.token("app", "CN", ""), "service", "")
	if _, err := appO.PutRecord(ctx, "wang.fang", "message", "m2", map[string]string{"body": "其他"}, ""); err != nil {
		t.Fatal(err)
	}
	out, err = runBinary(t, "transparency", "--server", f2.URL, "--token", f2.Admin, "--format", "json", "--from", fmt.Sprintf("%d-01-01", year), "--to", fmt.Sprintf("%d-01-01", year+1))
	if err != nil {
		t.Fatal(err)
	}
	forked := filepath.Join(t.TempDir(), "forked.json")
	os.WriteFile(forked, out, 0o600)
	out, err = runBinary(t, "transparency", "verify", forked, "--server", s.URL)
	if err == nil || !strings.Contains(string(out), "FAIL cells[cn-gz1]: the log does not contain the checkpoint the report was counted at") {
		t.Fatalf("transparency verify of a forked report: %v\n%s", err, out)
	}
	// The copy's own log does contain it.
	if out, err := runBinary(t, "transparency", "verify", forked, "--server", f2.URL); err != nil {
		t.Fatalf("transparency verify against the copy: %v\n%s", err, out)
	}
}

// out2 reads a file.
func out2(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// editJSON applies edit to a JSON document and writes it to a new file.
func editJSON(t *testing.T, doc []byte, edit func(map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "edited-"+strconv.Itoa(len(b))+".json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTransparencyVerifyUsage: bad arguments are usage errors naming
// what is wrong.
func TestTransparencyVerifyUsage(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.json")
	os.WriteFile(report, []byte(`{"cells":[]}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"--server", "http://127.0.0.1:1"}, 2, "the report's file is required"},
		{"no server", []string{report}, 2, "--server is required"},
		{"two files", []string{report, report, "--server", "http://127.0.0.1:1"}, 2, "unexpected argument"},
		{"bad pin", []string{report, "--server", "http://127.0.0.1:1", "--key", "cn-gz1"}, 1, "--key: \"cn-gz1\" must be CELL=VERIFIERKEY"},
		{"not a report", []string{report, "--server", "http://127.0.0.1:1"}, 1, "the report names no cell"},
		{"missing file", []string{report + ".none", "--server", "http://127.0.0.1:1"}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			env := &cmdEnv{Stdout: &out, Stderr: &out, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: time.Now}
			code := Main(context.Background(), env, append([]string{"transparency", "verify"}, tc.args...))
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Errorf("transparency verify %v: exit %d, %q; want exit %d and %q", tc.args, code, out.String(), tc.code, tc.want)
			}
		})
	}
}
