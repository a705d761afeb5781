package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"domicile/client"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/authority"
	"domicile/figures"
	"domicile/httpapi"
	"domicile/logclient"
	"domicile/transfer"
)

// TestFiguresProperty drives random activity through a real deployment
// (subjects in three jurisdictions; writes; reads at home and from
// abroad; consents and withdrawals; exports under each kind of mechanism;
// imports with duplicates and prior-year rows; erasures; operators'
// reads; authority requests, deferred ones included) and checks that
// every figure of the transparency report, the statements, the evidence,
// the live assessment and a change plan's impact report equals a recount
// made here, independently, from the log's tiles and the ledger, and,
// where the test knows, what it did. Each seed is a subtest; a failing
// one prints the seed to rerun it with DOMICILE_FIGURES_SEED.
// DOMICILE_FIGURES_SEEDS=N runs N more random seeds.
func TestFiguresProperty(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if v := os.Getenv("DOMICILE_FIGURES_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("DOMICILE_FIGURES_SEED=%q: %v", v, err)
		}
		seeds = []uint64{n}
	}
	if v := os.Getenv("DOMICILE_FIGURES_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("DOMICILE_FIGURES_SEEDS=%q: %v", v, err)
		}
		for i := 0; i < n; i++ {
			seeds = append(seeds, rand.Uint64())
		}
	}
	for _, seed := range seeds {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %d: rerun with DOMICILE_FIGURES_SEED=%d go test ./cmd/domicile -run 'TestFiguresProperty'", seed, seed)
				}
			})
			newFigureWorld(t, seed).run(80).check()
		})
	}
}

// cellOf is each test jurisdiction's home cell in the demo deployment.
var cellOf = map[domicile.Jurisdiction]string{"CN": "cn-gz1", "DE": "eu-fra1", "US": "us-east1"}

// subjectModel is what the test knows of one subject.
type subjectModel struct {
	id      string
	j       domicile.Jurisdiction
	records []string // kind/id
	erased  bool
	remote  int // reads from abroad that were allowed
}

// cellModel is what the test did in one cell.
type cellModel struct {
	erasures, withdrawals, remoteReads, exported int
}

// figureWorld is a deployment, the clients of its actors, and the model
// of what was done to it.
type figureWorld struct {
	t        *testing.T
	rnd      *rand.Rand
	ctx      context.Context
	url      string
	admin    *httpapi.Client
	app      map[domicile.Jurisdiction]*httpapi.Client
	operator *httpapi.Client
	subjects []*subjectModel
	cells    map[string]*cellModel
	requests map[string]int // authority outcomes
	imported int
	ops      map[string]int
}

func newFigureWorld(t *testing.T, seed uint64) *figureWorld {
	clk := &clock{}
	url, _, adminTok := inProcess(t, clk.Now)
	return newFigureWorldAt(t, seed, url, adminTok, clk.Now)
}

// newFigureWorldAt is a figure world on the deployment served at url
// (the demo deployment's cells and policy), whose clock is now.
func newFigureWorldAt(t *testing.T, seed uint64, url, adminTok string, now func() time.Time) *figureWorld {
	w := &figureWorld{t: t, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ctx: context.Background(), url: url,
		app: map[domicile.Jurisdiction]*httpapi.Client{}, cells: map[string]*cellModel{}, requests: map[string]int{}, ops: map[string]int{}}
	w.admin = &httpapi.Client{Client: client.Client{BaseURL: url, Token: adminTok}}
	for _, j := range []domicile.Jurisdiction{"CN", "DE", "US"} {
		w.app[j] = w.client(w.token("app", string(j)), "support", "")
		w.cells[cellOf[j]] = &cellModel{}
	}
	w.operator = w.client(w.token("operator", "CN"), "", "")
	// The mechanisms the exports may rest on: a filed standard contract
	// (needed once sensitive data has left, or past 100,000), an HR
	// exemption, and SCCs for EU data.
	signed := now().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, -30).Format(time.DateOnly)
	for _, m := range []transfer.Mechanism{
		{ID: "sc-1", Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-1", Signed: signed, Filed: signed, FilingReference: "粤网信备-1",
			Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"Acme Support Inc.", "remote:app"}, Purposes: []string{"support"},
				Categories: []domicile.Category{domicile.Personal, domicile.SpecificIdentity}}},
		{ID: "hr-1", Kind: domicile.MechExemptHR, Source: "CN", Reference: "HR-1",
			Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"Acme HR Inc."}, Purposes: []string{"support"},
				Categories: []domicile.Category{domicile.Personal}}},
		{ID: "sccs-1", Kind: domicile.MechSCCs, Source: "EU", Reference: "SCC-1",
			Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"Acme Support Inc.", "remote:app"}, Purposes: []string{"support"},
				Categories: []domicile.Category{domicile.Personal}}},
	} {
		if _, err := w.admin.PutMechanism(w.ctx, m); err != nil {
			t.Fatalf("register %s: %v", m.ID, err)
		}
	}
	return w
}

func (w *figureWorld) client(tok, purpose, just string) *httpapi.Client {
	return &httpapi.Client{Client: client.Client{BaseURL: w.url, Token: tok, Purpose: purpose, Justification: just}}
}

func (w *figureWorld) token(role, j string) string {
	r, err := w.admin.CreateToken(w.ctx, client.TokenRequest{Role: role, Jurisdiction: j})
	if err != nil {
		w.t.Fatal(err)
	}
	return r.Token
}

// live returns a random live subject of jurisdiction j ("" for any), or nil.
func (w *figureWorld) live(j domicile.Jurisdiction) *subjectModel {
	var c []*subjectModel
	for _, s := range w.subjects {
		if !s.erased && (j == "" || s.j == j) {
			c = append(c, s)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[w.rnd.IntN(len(c))]
}

func (w *figureWorld) pick(js ...domicile.Jurisdiction) domicile.Jurisdiction {
	return js[w.rnd.IntN(len(js))]
}

// run does n random operations. Refusals are part of the activity: the
// model records only what succeeded.
func (w *figureWorld) run(n int) *figureWorld {
	for _, j := range []domicile.Jurisdiction{"CN", "CN", "DE", "US"} {
		w.register(j)
	}
	for i := 0; i < n; i++ {
		switch op := w.rnd.IntN(13); op {
		case 0, 1:
			w.register(w.pick("CN", "CN", "DE", "US"))
		case 2:
			w.write()
		case 3:
			w.read(false)
		case 4, 5:
			w.read(true)
		case 6:
			w.consent()
		case 7, 8:
			w.export()
		case 9:
			w.importRows()
		case 10:
			w.erase()
		case 11:
			w.operatorRead()
		case 12:
			w.authorityRequest()
		}
	}
	w.t.Logf("activity: %v", w.ops)
	return w
}

func (w *figureWorld) done(op string, err error) bool {
	if err != nil {
		w.ops[op+" refused"]++
		return false
	}
	w.ops[op]++
	return true
}

func (w *figureWorld) register(j domicile.Jurisdiction) {
	s := &subjectModel{id: fmt.Sprintf("s%d", len(w.subjects)), j: j}
	if _, err := w.app[j].CreateSubject(w.ctx, s.id, string(j), ""); err != nil {
		w.t.Fatalf("register %s in %s: %v", s.id, j, err)
	}
	w.subjects = append(w.subjects, s)
	w.put(s, "message", "m0")
	w.ops["register"]++
	// Most subjects consent to transfers abroad, so that most exports and
	// reads from abroad pass.
	if w.rnd.IntN(10) < 7 {
		if _, err := w.app[s.j].SetConsent(w.ctx, s.id, "cross-border", "v1", true); err != nil {
			w.t.Fatalf("consent of %s: %v", s.id, err)
		}
	}
}

func (w *figureWorld) put(s *subjectModel, kind, id string) {
	body := map[string]string{"from": s.id, "to": "x", "body": "明天见"}
	if kind == "profile" {
		body = map[string]string{"name": s.id, "id_number": "110101199003077777"}
	}
	if _, err := w.app[s.j].PutRecord(w.ctx, s.id, kind, id, body, ""); err != nil {
		w.t.Fatalf("write %s/%s of %s: %v", kind, id, s.id, err)
	}
	if !slices.Contains(s.records, kind+"/"+id) {
		s.records = append(s.records, kind+"/"+id)
	}
}

func (w *figureWorld) write() {
	if s := w.live(""); s != nil {
		kind := []string{"message", "profile"}[w.rnd.IntN(2)]
		w.put(s, kind, fmt.Sprintf("%c%d", kind[0], w.rnd.IntN(3)))
		w.ops["write"]++
	}
}

// read reads a record of a live subject, at home or from abroad.
func (w *figureWorld) read(remote bool) {
	s := w.live("")
	if s == nil {
		return
	}
	from := s.j
	for remote && from == s.j {
		from = w.pick("CN", "DE", "US")
	}
	kind, id, _ := strings.Cut(s.records[w.rnd.IntN(len(s.records))], "/")
	_, err := w.app[from].GetRecord(w.ctx, s.id, kind, id)
	if remote {
		if w.done("remote read", err) {
			s.remote++
			w.cells[cellOf[s.j]].remoteReads++
		}
		return
	}
	w.done("home read", err)
}

func (w *figureWorld) consent() {
	s := w.live("")
	if s == nil {
		return
	}
	granted := w.rnd.IntN(3) > 0
	kind := []string{"cross-border", "cross-border", "sensitive"}[w.rnd.IntN(3)]
	_, err := w.app[s.j].SetConsent(w.ctx, s.id, kind, "v1", granted)
	if w.done("consent "+strconv.FormatBool(granted), err) && !granted {
		w.cells[cellOf[s.j]].withdrawals++
	}
}

// export sends up to three live subjects of one source abroad, under the
// general ground or the HR exemption, with personal or sensitive fields.
func (w *figureWorld) export() {
	src := w.pick("CN", "CN", "DE")
	var ids []string
	for i := 0; i < 1+w.rnd.IntN(3); i++ {
		if s := w.live(src); s != nil && !slices.Contains(ids, s.id) {
			ids = append(ids, s.id)
		}
	}
	if len(ids) == 0 {
		return
	}
	req := transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: ids, Plain: true,
		Fields: map[string][]string{"message": {"from", "body"}}}
	if w.rnd.IntN(3) == 0 {
		req.Fields = map[string][]string{"profile": {"name", "id_number"}}
	}
	if src == "CN" && w.rnd.IntN(3) == 0 {
		req.Recipient, req.Ground, req.Necessary = "Acme HR Inc.", "cross_border_hr", true
	}
	d, body, err := w.app["US"].Transfer(w.ctx, req)
	if !w.done("export", err) {
		return
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		w.t.Fatalf("export bundle: %v", err)
	}
	body.Close()
	w.cells[cellOf[src]].exported += d.Subjects
}

// importRows imports transfers made before: people from a small pool (so
// rows repeat), this year or the last, under counted and uncounted
// mechanisms.
func (w *figureWorld) importRows() {
	var b strings.Builder
	b.WriteString(transfer.ImportHeader + "\n")
	year := time.Now().In(time.FixedZone("CST", 8*3600)).Year()
	for i := 0; i < 1+w.rnd.IntN(30); i++ {
		y := year
		if w.rnd.IntN(4) == 0 {
			y--
		}
		cats := []string{"personal", "personal;medical-health"}[w.rnd.IntN(2)]
		mech := []string{"exempt", "exempt", "exemption_hr", "standard_contract", "sc-1"}[w.rnd.IntN(5)]
		fmt.Fprintf(&b, "%d-01-%02d,imp-%d,%s,%s,%s\n", y, 1+w.rnd.IntN(28), w.rnd.IntN(40), w.pick("US", "SG"), cats, mech)
	}
	res, err := w.admin.ImportTransfers(w.ctx, "CN", strings.NewReader(b.String()))
	if w.done("import", err) {
		w.imported += int(res.Rows)
	}
}

func (w *figureWorld) erase() {
	if w.rnd.IntN(2) == 0 {
		return // erasures are rarer than the rest
	}
	s := w.live("")
	if s == nil {
		return
	}
	_, err := w.app[s.j].EraseSubject(w.ctx, s.id)
	if w.done("erase", err) {
		s.erased = true
		w.cells[cellOf[s.j]].erasures++
	}
}

func (w *figureWorld) operatorRead() {
	s := w.live("CN")
	if s == nil {
		return
	}
	op := *w.operator
	op.Justification = []string{"support T-1", "maintenance M-2", ""}[w.rnd.IntN(3)]
	kind, id, _ := strings.Cut(s.records[0], "/")
	_, err := op.GetRecord(w.ctx, s.id, kind, id)
	w.done("operator read", err)
}

// authorityRequest records a domestic request for a CN subject and
// decides it: refused, disclosed, or partly disclosed with the notice
// deferred; a disclosure is read by an authority token.
func (w *figureWorld) authorityRequest() {
	s := w.live("CN")
	if s == nil {
		return
	}
	ref := fmt.Sprintf("GZ-PSB-%d", len(w.requests)+w.rnd.IntN(1_000_000))
	r, err := w.admin.RecordAuthorityRequest(w.ctx, authority.NewRequest{Authority: "Guangzhou Public Security Bureau", Jurisdiction: "CN",
		Kind: "public_security", LegalBasis: "Criminal Procedure Law Art. 54", Reference: ref, Subjects: []string{s.id}})
	if !w.done("authority request", err) {
		return
	}
	o := authority.Outcome{Status: []string{"refused", "disclosed", "partly-disclosed"}[w.rnd.IntN(3)]}
	if o.Status == "partly-disclosed" {
		until := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
		o.Kinds, o.DeferNoticeUntil = []string{"message"}, &until
	}
	if _, err := w.admin.DecideAuthorityRequest(w.ctx, r.ID, o); err != nil {
		w.t.Fatalf("decide %s: %v", r.ID, err)
	}
	w.requests[o.Status]++
	w.requests["received"]++
	if o.Status != "refused" {
		a := w.client(w.token("authority", "CN"), "", "lawful-request-domestic "+ref)
		_, err := a.Disclose(w.ctx, r.ID)
		w.done("disclosure", err)
	}
}

// rawLeaf is a leaf as this test reads it, without package leaf.
type rawLeaf struct {
	t                     int64
	action, role, outcome string
	tags                  []string
}

func parseRawLeaf(tb testing.TB, b []byte) rawLeaf {
	tb.Helper()
	var l rawLeaf
	for _, f := range strings.Fields(string(b))[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "t":
			l.t, _ = strconv.ParseInt(v, 10, 64)
		case "a":
			l.action = v
		case "r":
			l.role = v
		case "o":
			l.outcome = v
		case "g":
			l.tags = strings.Split(v, ",")
		}
	}
	if l.action == "" || l.role == "" || l.outcome == "" {
		tb.Fatalf("leaf %q", b)
	}
	return l
}

// reason is the justification tag of a leaf, if any.
func (l rawLeaf) reason() string {
	for _, g := range l.tags {
		if g != "remote" && g != "withdrawal" {
			return g
		}
	}
	return ""
}

// check compares every figure with the test's recount.
func (w *figureWorld) check() {
	t, ctx := w.t, w.ctx
	year := time.Now().In(time.FixedZone("CST", 8*3600)).Year()
	tr, err := w.admin.Transparency(ctx, client.DocOptions{From: "2000-01-01", To: "2200-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	from, to := tr.Period.From.Unix(), tr.Period.To.Unix()

	// Each cell's log figures, recounted from the entries its tiles
	// serve up to the report's checkpoint.
	var totalEvents, totalRemote, totalErase, totalWithdrawn, totalXfer int
	for _, c := range tr.Cells {
		lc, err := logclient.New(logclient.Config{URL: w.url + c.Log.URL, LogKey: c.Log.VerifierKey})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := lc.OpenCheckpoint([]byte(c.Log.Checkpoint))
		if err != nil {
			t.Fatal(err)
		}
		type basis struct{ allowed, denied int }
		var n, op, au, er, xf, rr, wd int
		opb, aub := map[string]basis{}, map[string]basis{}
		for i := int64(0); i < cp.Size; i++ {
			e, err := lc.Entry(ctx, cp, i)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lc.ProveInclusion(ctx, cp, i, e); err != nil {
				t.Fatalf("cell %s entry %d: %v", c.Cell, i, err)
			}
			l := parseRawLeaf(t, e)
			if l.t < from || l.t >= to {
				continue
			}
			n++
			allowed := l.outcome == "allowed"
			count := func(m map[string]basis) {
				b := m[l.reason()]
				if allowed {
					b.allowed++
				} else {
					b.denied++
				}
				m[l.reason()] = b
			}
			switch l.role {
			case "operator":
				op++
				count(opb)
			case "authority":
				au++
				count(aub)
			}
			if allowed && l.action == "erase" {
				er++
			}
			if allowed && (l.action == "export" || l.action == "transfer") {
				xf++
			}
			if allowed && slices.Contains(l.tags, "remote") {
				rr++
			}
			if allowed && l.action == "consent" && slices.Contains(l.tags, "withdrawal") {
				wd++
			}
		}
		f := c.Figures
		for _, x := range []struct {
			name          string
			report, count int
		}{{"events", f.Events, n}, {"operator_accesses", f.OperatorAccesses, op}, {"authority_accesses", f.AuthorityAccesses, au},
			{"erasures", f.Erasures, er}, {"transfer_events", f.TransferEvents, xf}, {"remote_reads", f.RemoteReads, rr}, {"consents_withdrawn", f.ConsentsWithdrawn, wd}} {
			if x.report != x.count {
				t.Errorf("cell %s: %s is %d in the report, %d in the log", c.Cell, x.name, x.report, x.count)
			}
		}
		for name, pair := range map[string]struct {
			report []figures.BasisCount
			count  map[string]basis
		}{"operator": {f.OperatorByJustification, opb}, "authority": {f.AuthorityByJustification, aub}} {
			got := map[string]basis{}
			for _, b := range pair.report {
				got[b.Basis] = basis{b.Allowed, b.Denied}
			}
			if !maps.Equal(got, pair.count) {
				t.Errorf("cell %s: %s accesses by justification %v in the report, %v in the log", c.Cell, name, got, pair.count)
			}
		}
		// What the test did, as the log must show it.
		if m := w.cells[c.Cell]; m != nil {
			if er != m.erasures || wd != m.withdrawals || rr != m.remoteReads || xf != m.exported {
				t.Errorf("cell %s: the log holds %d erasures, %d withdrawals, %d reads from abroad, %d export events; the test made %d, %d, %d, %d",
					c.Cell, er, wd, rr, xf, m.erasures, m.withdrawals, m.remoteReads, m.exported)
			}
		}
		totalEvents, totalRemote, totalErase, totalWithdrawn, totalXfer = totalEvents+n, totalRemote+rr, totalErase+er, totalWithdrawn+wd, totalXfer+xf
	}
	if tt := tr.Totals; tt.Events != totalEvents || tt.RemoteReads != totalRemote || tt.Erasures != totalErase || tt.ConsentsWithdrawn != totalWithdrawn || tt.TransferEvents != totalXfer {
		t.Errorf("totals %+v; the logs hold %d events, %d reads from abroad, %d erasures, %d withdrawals, %d transfer events", tt, totalEvents, totalRemote, totalErase, totalWithdrawn, totalXfer)
	}
	for k, n := range w.requests {
		if tr.AuthorityTotals[k] != n {
			t.Errorf("authority requests %s: %d in the report, %d made", k, tr.AuthorityTotals[k], n)
		}
	}

	// The ledger's figures, recounted from the evidence and the counts.
	recs := w.evidence()
	counts := map[int][]domicile.Count{}
	for _, r := range recs {
		if _, ok := counts[r.Year]; !ok {
			v, err := w.admin.Ledger(ctx, r.Year)
			if err != nil {
				t.Fatal(err)
			}
			counts[r.Year] = v.Counts
		}
	}
	total := func(y int, class domicile.CountClass) int64 {
		for _, c := range counts[y] {
			if c.Source == "CN" && c.Dim == "" && c.Class == class {
				return c.N
			}
		}
		return 0
	}
	// Each year's new people add up to its totals: new_pi is right.
	newPI, newSPI := map[int]int64{}, map[int]int64{}
	for _, r := range recs {
		newPI[r.Year] += r.NewPI
		newSPI[r.Year] += r.NewSPI
		if r.NewPI > r.People || r.NewSPI > r.People || (!r.Counted && (r.NewPI != 0 || r.NewSPI != 0)) {
			t.Errorf("record %s: %d people, %d new pi, %d new spi, counted %v", r.ID, r.People, r.NewPI, r.NewSPI, r.Counted)
		}
	}
	for y := range counts {
		// EU exports count toward the EU source; this checks CN's.
		var euPI int64
		for _, r := range recs {
			if r.Year == y && r.Source != "CN" {
				euPI += r.NewPI
			}
		}
		if newPI[y]-euPI != total(y, domicile.ClassPI) {
			t.Errorf("%d: records add %d new people, the ledger counts %d", y, newPI[y]-euPI, total(y, domicile.ClassPI))
		}
	}
	if tr.Ledger == nil {
		t.Fatal("the report has no ledger figures")
	}
	type rowKey struct {
		year       int
		src, route string
	}
	type row struct{ transfers, counted, people, spi int64 }
	want := map[rowKey]row{}
	var wantRecs []domicile.TransferRecord
	for _, r := range recs {
		if !slices.Contains(tr.Ledger.Years, r.Year) {
			continue
		}
		wantRecs = append(wantRecs, r)
		mech := r.Mechanism
		if mech == "" {
			mech = r.Law
		}
		k := rowKey{r.Year, string(r.Source), mech + ">" + string(r.Destination)}
		x := want[k]
		x.transfers++
		if r.Counted {
			x.counted++
		}
		for _, c := range counts[r.Year] {
			if string(c.Source) == k.src && c.Dim == "route" && c.Value == k.route {
				if c.Class == domicile.ClassPI {
					x.people = c.N
				} else {
					x.spi = c.N
				}
			}
		}
		want[k] = x
	}
	got := map[rowKey]row{}
	for _, r := range tr.Ledger.Transfers {
		got[rowKey{r.Year, string(r.Source), r.Mechanism + ">" + string(r.Destination)}] = row{r.Transfers, r.Counted, r.People, r.SensitivePeople}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the report's transfers by route\n%v\nthe ledger's\n%v", got, want)
	}
	h := sha256.New()
	for _, r := range wantRecs {
		b, _ := json.Marshal(r)
		h.Write(append(b, '\n'))
	}
	for _, y := range slices.Sorted(slices.Values(tr.Ledger.Years)) {
		for _, c := range counts[y] {
			b, _ := json.Marshal(c)
			h.Write(append(b, '\n'))
		}
	}
	if d := "sha256:" + hex.EncodeToString(h.Sum(nil)); tr.Ledger.Digest != d || tr.Ledger.Records != len(wantRecs) {
		t.Errorf("ledger digest %s of %d records, recomputed %s of %d", tr.Ledger.Digest, tr.Ledger.Records, d, len(wantRecs))
	}
	for _, p := range tr.Ledger.People {
		if p.Source == "CN" && (p.People != total(p.Year, domicile.ClassPI) || p.SensitivePeople != total(p.Year, domicile.ClassSPI)) {
			t.Errorf("%d people %d/%d in the report, %d/%d in the ledger", p.Year, p.People, p.SensitivePeople, total(p.Year, domicile.ClassPI), total(p.Year, domicile.ClassSPI))
		}
	}

	// The live assessment reads the same counts.
	raw, err := w.admin.Assessment(ctx, "CN")
	if err != nil {
		t.Fatal(err)
	}
	var live struct {
		PI  int64 `json:"pi_individuals_ytd"`
		SPI int64 `json:"sensitive_pi_individuals_ytd"`
	}
	json.Unmarshal(raw, &live)
	if live.PI != total(year, domicile.ClassPI) || live.SPI != total(year, domicile.ClassSPI) {
		t.Errorf("live assessment %d/%d, ledger %d/%d", live.PI, live.SPI, total(year, domicile.ClassPI), total(year, domicile.ClassSPI))
	}

	// Statements: figures recounted from the leaves of the events they
	// list (each the leaf the log serves at its index), and the transfers
	// their events name.
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.ID] = true
	}
	stApp := map[domicile.Jurisdiction]*httpapi.Client{}
	for j := range w.app {
		stApp[j] = w.client(w.token("app", string(j)), "service", "")
	}
	for _, s := range w.subjects {
		if s.erased {
			continue
		}
		st, err := stApp[s.j].Statement(ctx, s.id, "en")
		if err != nil {
			t.Fatalf("statement of %s: %v", s.id, err)
		}
		lc, err := logclient.New(logclient.Config{URL: w.url + st.Log.URL, LogKey: st.Log.VerifierKey})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := lc.OpenCheckpoint([]byte(st.Log.Checkpoint))
		if err != nil {
			t.Fatal(err)
		}
		var xf, rr int
		named := map[string]bool{}
		for _, e := range st.Accesses {
			served, err := lc.Entry(ctx, cp, e.Index)
			if err != nil || string(served) != e.Leaf {
				t.Fatalf("statement of %s: event %d's leaf is not the one the log serves (%v)", s.id, e.Index, err)
			}
			l := parseRawLeaf(t, served)
			if l.outcome == "allowed" && (l.action == "export" || l.action == "transfer") {
				xf++
			}
			if l.outcome == "allowed" && slices.Contains(l.tags, "remote") {
				rr++
			}
			if m := transferRef.FindStringSubmatch(e.Event.Detail); m != nil && ids[m[1]] {
				named[m[1]] = true
			}
		}
		if st.TransferEvents != xf || len(st.RemoteReads) != rr || rr != s.remote || len(st.Transfers) != len(named) {
			t.Errorf("statement of %s: %d transfer events, %d reads from abroad, %d transfers; its events' leaves say %d, %d, the test made %d reads, its events name %d transfers",
				s.id, st.TransferEvents, len(st.RemoteReads), len(st.Transfers), xf, rr, s.remote, len(named))
		}
	}

	// A change plan declaring a new CN mechanism reads the same counts;
	// it affects every live CN subject (each holds a message).
	plan, err := w.admin.MakePlan(ctx, "next.yaml", demoWithMechanismYAML)
	if err != nil {
		t.Fatal(err)
	}
	rep := plan.Reports["en"]
	liveCN := 0
	for _, s := range w.subjects {
		if !s.erased && s.j == "CN" {
			liveCN++
		}
	}
	if rep == nil || len(rep.Ledger) != 1 || rep.Ledger[0].People != total(year, domicile.ClassPI) || rep.Ledger[0].SensitivePeople != total(year, domicile.ClassSPI) || rep.Total != liveCN {
		t.Errorf("impact report: ledger %+v, %d affected; want %d/%d people and %d subjects", rep.Ledger, rep.Total, total(year, domicile.ClassPI), total(year, domicile.ClassSPI), liveCN)
	}

	// And transparency verify agrees, from the tiles alone.
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/report.json"
	os.WriteFile(file, b, 0o600)
	var out bytes.Buffer
	env := &cmdEnv{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }, Now: time.Now}
	if code := Main(ctx, env, []string{"transparency", "verify", file, "--server", w.url, "--token", w.admin.Token}); code != 0 {
		t.Errorf("transparency verify: exit %d\n%s", code, out.String())
	}
}

// transferRef finds the transfer an event's detail names.
var transferRef = regexp.MustCompile(`\btransfer (trf_[0-9a-f]+)\b`)

// evidence returns every transfer record, from the JSON evidence.
func (w *figureWorld) evidence() []domicile.TransferRecord {
	body, err := w.admin.Evidence(w.ctx, "", "", "json")
	if err != nil {
		w.t.Fatal(err)
	}
	defer body.Close()
	var out []domicile.TransferRecord
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var r domicile.TransferRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// demoWithMechanismYAML is the demo deployment with a new CN mechanism
// declared.
var demoWithMechanismYAML = []byte(`name: demo
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
  - {id: cert-1, kind: certification, source: CN, destinations: [SG], recipients: ["*"], purposes: [support], categories: [personal]}
`)
