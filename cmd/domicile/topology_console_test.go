package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"domicile/figures"
	"domicile/httpapi"
	"domicile/internal/browsertest"
	"domicile/rights"
)

// TestConsoleThroughRouter: the router of cell processes serves the
// console, pinned with every cell's log key, and answers its data map and
// open requests from every cell's part, asked with the caller's token
// (each cell checks it: an app token is refused). The browser signs in,
// reads the map of all three cells and verifies each cell's checkpoint.
// With a cell down the map marks that cell uncounted and names it, the
// open requests name it as uncounted, and the rest of the page is still
// served.
func TestConsoleThroughRouter(t *testing.T) {
	b := browsertest.New(t, 4*time.Minute, 1280, 1000)
	tp := startTopology(t)
	r := tp.router
	consoleWorld(t, r)
	auditor := r.token("auditor", "CN", "")

	census := func() (figures.DataMap, map[string]figures.MapCell) {
		t.Helper()
		st, _, body := r.do("GET", "/v1/census", auditor, nil, nil)
		var m figures.DataMap
		if st != 200 || json.Unmarshal(body, &m) != nil {
			t.Fatalf("GET /v1/census through the router: %d %s", st, body)
		}
		cells := map[string]figures.MapCell{}
		for _, j := range m.Jurisdictions {
			for _, c := range j.Cells {
				cells[c.Cell] = c
			}
		}
		return m, cells
	}
	open := func() httpapi.OpenRequestList {
		t.Helper()
		st, _, body := r.do("GET", "/v1/requests/open", auditor, nil, nil)
		var o httpapi.OpenRequestList
		if st != 200 || json.Unmarshal(body, &o) != nil {
			t.Fatalf("GET /v1/requests/open through the router: %d %s", st, body)
		}
		return o
	}
	m, cells := census()
	if gz := cells["cn-gz1"]; !m.Complete || gz.Subjects != 3 || gz.Records != 1 || gz.RecordBytes == 0 {
		t.Errorf("data map through the router: cn-gz1 %+v, complete %v", gz, m.Complete)
	}
	if fra := cells["eu-fra1"]; fra.Subjects != 1 || fra.Objects != 1 || fra.ObjectBytes != 5000 {
		t.Errorf("data map through the router: eu-fra1 %+v", fra)
	}
	if m.Subjects != 4 || len(cells) != 3 {
		t.Errorf("data map through the router: %d subjects in %d cells, want 4 in 3", m.Subjects, len(cells))
	}
	if o := open(); len(o.Requests) != 1 || o.Requests[0].Kind != rights.Correction || o.Requests[0].Cell != "cn-gz1" || len(o.Uncounted) != 0 {
		t.Errorf("open requests through the router: %+v", o)
	}
	for _, tt := range []struct {
		name, token string
		status      int
	}{{"no token", "", 401}, {"app", r.token("app", "CN", ""), 403}, {"subject", r.token("subject", "CN", "li"), 403}} {
		for _, path := range []string{"/v1/census", "/v1/requests/open"} {
			if st, _, body := r.do("GET", path, tt.token, map[string]string{"Domicile-Purpose": "service"}, nil); st != tt.status {
				t.Errorf("GET %s through the router as %s: %d, want %d: %s", path, tt.name, st, tt.status, body)
			}
		}
	}

	signIn := func() {
		t.Helper()
		if err := chromedp.Do(b.Ctx, chromedp.Navigate(r.URL+"/console/?lang=en"), chromedp.WaitVisible("#token")); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(b.Ctx, chromedp.SendKeys("#token", auditor+"\r")); err != nil {
			t.Fatal(err)
		}
	}
	done := func() {
		t.Helper()
		if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`/^Done/.test(document.getElementById('status').textContent)`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("the console did not load through the router: %v\n%s\nconsole:\n%s", err, text, b.Console())
		}
	}
	type box struct {
		Cell     string `json:"cell"`
		Subjects int64  `json:"subjects"`
		Counted  string `json:"counted"`
		Text     string `json:"text"`
	}
	boxes := func() map[string]box {
		t.Helper()
		raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`[...document.querySelectorAll('#map-figure svg g[data-cell]')].map(g => ({cell: g.dataset.cell, subjects: +g.dataset.subjects, counted: g.dataset.counted, text: g.textContent}))`))
		if err != nil {
			t.Fatal(err)
		}
		var bs []box
		json.Unmarshal(raw, &bs)
		out := map[string]box{}
		for _, bx := range bs {
			out[bx.Cell] = bx
		}
		return out
	}
	signIn()
	done()
	bs := boxes()
	if len(bs) != 3 {
		t.Fatalf("the router's console maps %d cells, want 3", len(bs))
	}
	for id, c := range cells {
		if bx := bs[id]; bx.Counted != "true" || bx.Subjects != c.Subjects || !strings.Contains(bx.Text, c.Operator) {
			t.Errorf("map box %s: %+v, want %d subjects counted", id, bx, c.Subjects)
		}
	}
	// Each cell's checkpoint, verified in the browser with the key the
	// router pinned.
	var verified []string
	waitFor(t, 60*time.Second, "three checkpoints verified", func() bool {
		raw, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`[...document.querySelectorAll('#checkpoints-table tbody tr')].map(r => r.dataset.verified)`))
		json.Unmarshal(raw, &verified)
		return len(verified) == 3 && strings.Count(strings.Join(verified, ","), "verified") == 3
	})
	text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
	for _, want := range []string{"Data map", "Guangzhou", "sc-1", "GZ-2026-7", "correction", "Transparency report"} {
		if !strings.Contains(text, want) {
			t.Errorf("the router's console lacks %q", want)
		}
	}

	// A cell down is one cell uncounted, named; not a failed page.
	tp.cells["eu-fra1"].Kill()
	m, cells = census()
	if fra := cells["eu-fra1"]; m.Complete || fra.Counted || !strings.Contains(fra.Reason, "eu-fra1") || cells["cn-gz1"].Subjects != 3 {
		t.Errorf("data map with eu-fra1 down: eu-fra1 %+v, cn-gz1 %+v, complete %v; want eu-fra1 uncounted and named, cn-gz1 counted", fra, cells["cn-gz1"], m.Complete)
	}
	if o := open(); len(o.Uncounted) != 1 || o.Uncounted[0] != "eu-fra1" || len(o.Requests) != 1 {
		t.Errorf("open requests with eu-fra1 down: %+v; want cn-gz1's request and eu-fra1 uncounted", o)
	}
	if err := chromedp.Do(b.Ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	done()
	bs = boxes()
	if bx := bs["eu-fra1"]; bx.Counted != "false" || !strings.Contains(bx.Text, "eu-fra1") {
		t.Errorf("with eu-fra1 down, its map box: %+v; want it uncounted and named", bx)
	}
	if bx := bs["cn-gz1"]; bx.Counted != "true" || bx.Subjects != 3 {
		t.Errorf("with eu-fra1 down, cn-gz1's map box: %+v", bx)
	}
	if st, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.getElementById('rights-lead').textContent`)); !strings.Contains(st, "eu-fra1") {
		t.Errorf("the open requests with eu-fra1 down do not name it: %q", st)
	}
}
