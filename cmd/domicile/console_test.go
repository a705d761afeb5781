package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"domicile"
	"domicile/authority"
	"domicile/figures"
	"domicile/httpapi"
	"domicile/internal/browsertest"
	"domicile/rights"
	"domicile/transfer"
)

// consoleWorld fills a server with what the console shows: subjects in
// two cells, a record and an object, a mechanism, an authority request,
// an open rights request and a year of transfers.
func consoleWorld(t *testing.T, s *server) {
	t.Helper()
	ctx := context.Background()
	app := s.client(s.token("app", "CN", ""), "service", "")
	for _, id := range []string{"li", "wang", "zhang"} {
		if _, err := app.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.PutRecord(ctx, "li", "profile", "main", map[string]string{"name": "李伟"}, ""); err != nil {
		t.Fatal(err)
	}
	de := s.client(s.token("app", "DE", ""), "service", "")
	if _, err := de.CreateSubject(ctx, "anna", "DE", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := de.PutObject(ctx, "anna", "photo.jpg", "image/jpeg", strings.NewReader(strings.Repeat("x", 5000)), 5000); err != nil {
		t.Fatal(err)
	}
	li := s.client(s.token("subject", "CN", "li"), "", "")
	if _, err := li.CreateRequest(ctx, "li", rights.Input{Kind: rights.Correction, Record: &rights.RecordRef{Kind: "profile", ID: "main"},
		Changes: map[string]json.RawMessage{"name": json.RawMessage(`"李卫"`)}}); err != nil {
		t.Fatal(err)
	}
	admin := s.client(s.Admin, "", "")
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	sc := transfer.Mechanism{ID: "sc-1", Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-1", Signed: today,
		Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"Acme Support Inc."}, Purposes: []string{"support"},
			Categories: []domicile.Category{domicile.Personal}}}
	if _, err := admin.PutMechanism(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RecordAuthorityRequest(ctx, authority.NewRequest{Authority: "Guangzhou Public Security Bureau", Jurisdiction: "CN", Kind: "public_security",
		LegalBasis: "Criminal Procedure Law Art. 54", Reference: "GZ-2026-7", Subjects: []string{"wang"}}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(transfer.ImportHeader + "\n")
	year := time.Now().In(time.FixedZone("CST", 8*3600)).Year()
	for i := range 1500 {
		fmt.Fprintf(&b, "%d-01-%02d,imp-%d,US,personal,exempt\n", year, 1+i%28, i)
	}
	if _, err := admin.ImportTransfers(ctx, "CN", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleAPI: the console's own routes answer admin and auditor
// tokens with the figures of package figures and rights, and refuse
// every other role; the data map counts what was written.
func TestConsoleAPI(t *testing.T) {
	s := startServer(t, "")
	consoleWorld(t, s)
	auditor := s.token("auditor", "CN", "")
	for _, path := range []string{"/v1/census", "/v1/requests/open"} {
		for _, tt := range []struct {
			name, token string
			status      int
		}{
			{"admin", s.Admin, 200}, {"auditor", auditor, 200}, {"no token", "", 401},
			{"app", s.token("app", "CN", ""), 403}, {"operator", s.token("operator", "CN", ""), 403}, {"subject", s.token("subject", "CN", "li"), 403},
		} {
			hdr := map[string]string{"Domicile-Purpose": "service", "Domicile-Justification": "support T-1"}
			if st, _, body := s.do("GET", path, tt.token, hdr, nil); st != tt.status {
				t.Errorf("GET %s as %s: %d, want %d: %s", path, tt.name, st, tt.status, body)
			}
		}
	}
	_, _, body := s.do("GET", "/v1/census", auditor, nil, nil)
	var m figures.DataMap
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	cells := map[string]figures.MapCell{}
	for _, j := range m.Jurisdictions {
		for _, c := range j.Cells {
			cells[c.Cell] = c
		}
	}
	if gz := cells["cn-gz1"]; !m.Complete || gz.Subjects != 3 || gz.Records != 1 || gz.RecordBytes == 0 || gz.Jurisdiction != "CN" || gz.Operator == "" {
		t.Errorf("data map: cn-gz1 %+v, complete %v", gz, m.Complete)
	}
	if fra := cells["eu-fra1"]; fra.Subjects != 1 || fra.Objects != 1 || fra.ObjectBytes != 5000 || fra.Bytes != 5000 {
		t.Errorf("data map: eu-fra1 %+v", fra)
	}
	if m.Subjects != 4 {
		t.Errorf("data map: %d subjects, want 4", m.Subjects)
	}
	_, _, body = s.do("GET", "/v1/requests/open", auditor, nil, nil)
	var open httpapi.OpenRequestList
	if err := json.Unmarshal(body, &open); err != nil {
		t.Fatal(err)
	}
	if len(open.Requests) != 1 || open.Requests[0].Kind != rights.Correction || open.Requests[0].Cell != "cn-gz1" || open.Requests[0].Overdue || len(open.Uncounted) != 0 {
		t.Errorf("open requests %+v", open)
	}
	if strings.Contains(string(body), `"li"`) {
		t.Errorf("the open requests name a subject: %s", body)
	}
	if st, h, _ := s.do("GET", "/console/?lang=zh-CN", "", nil, nil); st != 200 || h.Get("Content-Language") != "zh-CN" {
		t.Errorf("GET /console/?lang=zh-CN: %d %v", st, h)
	}
}

// TestConsolePage logs in to the console in Debian's Chromium with an
// auditor token typed into its form: the data map and the gauges show
// the figures of the API, every checkpoint verifies in the browser, the
// token stays out of the address bar, the language switches, axe-core
// finds no serious or critical violation in either language, and signing
// out forgets the token.
func TestConsolePage(t *testing.T) {
	b := browsertest.New(t, 4*time.Minute, 1280, 1000)
	s := startServer(t, "")
	consoleWorld(t, s)
	ctx := context.Background()
	auditor := s.token("auditor", "CN", "")

	if err := chromedp.Do(b.Ctx, chromedp.Navigate(s.URL+"/console/?lang=en"), chromedp.WaitVisible("#token")); err != nil {
		t.Fatal(err)
	}
	// Sign in with the keyboard: Tab to the field, type, Enter.
	tabUntil(t, b, "#token")
	if err := chromedp.Do(b.Ctx, chromedp.SendKeys("#token", auditor+"\r")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`/^Done/.test(document.getElementById('status').textContent)`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the console did not load: %v\n%s\nconsole:\n%s", err, text, b.Console())
	}

	// The data map: an SVG with a box per cell carrying the census.
	raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`[...document.querySelectorAll('#map-figure svg g[data-cell]')].map(g => ({cell: g.dataset.cell, subjects: +g.dataset.subjects, bytes: +g.dataset.bytes, text: g.textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	var boxes []struct {
		Cell     string `json:"cell"`
		Subjects int64  `json:"subjects"`
		Bytes    int64  `json:"bytes"`
		Text     string `json:"text"`
	}
	json.Unmarshal(raw, &boxes)
	_, _, body := s.do("GET", "/v1/census", auditor, nil, nil)
	var m figures.DataMap
	json.Unmarshal(body, &m)
	want := map[string]figures.MapCell{}
	for _, j := range m.Jurisdictions {
		for _, c := range j.Cells {
			want[c.Cell] = c
		}
	}
	if len(boxes) != len(want) || len(boxes) < 3 {
		t.Fatalf("the map shows %d cells, the API %d", len(boxes), len(want))
	}
	for _, bx := range boxes {
		w := want[bx.Cell]
		if bx.Subjects != w.Subjects || bx.Bytes != w.Bytes || !strings.Contains(bx.Text, w.Operator) || !strings.Contains(bx.Text, w.Location) {
			t.Errorf("map box %s: %+v, want %d subjects, %d bytes, %q, %q", bx.Cell, bx, w.Subjects, w.Bytes, w.Operator, w.Location)
		}
	}

	// The gauges: the live assessment's crossings, headroom and date.
	raw, err = chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`[...document.querySelectorAll('.gauge[data-source="CN"]')].map(g => ({fact: g.dataset.fact, threshold: +g.dataset.threshold, value: +g.dataset.value, headroom: +g.dataset.headroom, date: g.dataset.date, text: g.innerText}))`))
	if err != nil {
		t.Fatal(err)
	}
	var gauges []struct {
		Fact      string `json:"fact"`
		Threshold int64  `json:"threshold"`
		Value     int64  `json:"value"`
		Headroom  int64  `json:"headroom"`
		Date      string `json:"date"`
		Text      string `json:"text"`
	}
	json.Unmarshal(raw, &gauges)
	rawAs, err := s.client(auditor, "", "").Assessment(ctx, "CN")
	if err != nil {
		t.Fatal(err)
	}
	var as transfer.Assessment
	if err := json.Unmarshal(rawAs, &as); err != nil {
		t.Fatal(err)
	}
	if len(gauges) == 0 || len(gauges) != len(as.Crossings) {
		t.Fatalf("%d CN gauges, the assessment has %d crossings", len(gauges), len(as.Crossings))
	}
	for i, g := range gauges {
		c := as.Crossings[i]
		if g.Fact != c.Fact || g.Threshold != c.Threshold || g.Value != c.Value || g.Headroom != c.Headroom || g.Date != c.Date {
			t.Errorf("gauge %d: %+v, want %+v", i, g, c)
		}
		if c.Fact == figures.FactPIYTD && (c.Value != 1500 || !strings.Contains(g.Text, "Headroom")) {
			t.Errorf("gauge %d: value %d, text %q", i, c.Value, g.Text)
		}
	}

	// Only China's law sets volume thresholds in the demo deployment.
	if n, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('.gauge:not([data-source="CN"])').length`)); n != 0 {
		t.Errorf("%d gauges of sources without thresholds", n)
	}
	text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
	for _, want := range []string{"Data map", "Guangzhou", "sc-1", "file by", "Guangzhou Public Security Bureau", "GZ-2026-7", "correction",
		"Transparency report", "witness/eu-fra1", "verified: signed by"} {
		if !strings.Contains(text, want) {
			t.Errorf("the console lacks %q", want)
		}
	}
	raw, _ = chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`[...document.querySelectorAll('#checkpoints-table tbody tr')].map(r => r.dataset.verified)`))
	var verified []string
	json.Unmarshal(raw, &verified)
	if len(verified) != 3 || strings.Count(strings.Join(verified, ","), "verified") != 3 {
		rows, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#checkpoints-table tbody tr')].map(r => r.innerText).join("\n")`))
		t.Errorf("checkpoints: %v, want 3 verified; the rows say:\n%s", verified, rows)
	}
	if u, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`location.href + document.cookie`)); strings.Contains(u, auditor) {
		t.Errorf("the token is in the address bar or a cookie: %s", u)
	}
	if st, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`sessionStorage.getItem('domicile.console.token')`)); st != auditor {
		t.Errorf("the token is not kept in session storage")
	}
	checkAxe(t, b, "console en")
	shot(t, b, "console.en.png")

	// A reload keeps the session: no second sign-in.
	if err := chromedp.Do(b.Ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`/^Done/.test(document.getElementById('status').textContent) && document.getElementById('login').hidden`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("after a reload the console asks to sign in again: %v", err)
	}

	// Switch the language with the keyboard-reachable select.
	tabUntil(t, b, "#lang")
	if err := chromedp.Do(b.Ctx, chromedp.SetValue("#lang", "zh-CN"), chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`document.documentElement.lang === 'zh-CN' && document.getElementById('reports-lead').textContent.includes('透明度报告') && location.search.includes('lang=zh-CN')`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the console did not switch to Chinese: %v", err)
	}
	text, _ = chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
	for _, want := range []string{"控制台", "数据分布图", "出境门槛台账", "剩余", "出境机制", "主管机关请求", "已核验", "个人尚未办结的请求", "更正", "中国（大陆）"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Chinese console lacks %q", want)
		}
	}
	checkAxe(t, b, "console zh-CN")
	shot(t, b, "console.zh-CN.png")

	// Sign out: the token is forgotten, and the form is back.
	if err := chromedp.Do(b.Ctx, chromedp.Click("#signout")); err != nil {
		t.Fatal(err)
	}
	if st, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`sessionStorage.getItem('domicile.console.token') === null && !document.getElementById('login').hidden && document.getElementById('content').hidden`)); !st {
		t.Errorf("signing out leaves the token or the figures")
	}

	// A refused token: back to the form, saying so.
	if err := chromedp.Do(b.Ctx, chromedp.SendKeys("#token", "dmc_not-a-token\r")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`!document.getElementById('login').hidden && document.getElementById('status').textContent.includes('令牌被拒绝')`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Errorf("a refused token does not bring the form back: %v", err)
	}

	s.Stop()
	if strings.Contains(s.Log(), auditor) {
		t.Errorf("the server's log holds the console's token")
	}
}
