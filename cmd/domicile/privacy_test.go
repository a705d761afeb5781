package main

import (
	"bytes"
	"context"
	"domicile/client"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"domicile"
	"domicile/httpapi"
	"domicile/internal/browsertest"
)

var updateShots = flag.Bool("update", false, "with DOMICILE_TEST_CHROMIUM, rewrite the screenshots of the privacy page in doc/img")

// linkFragment returns the fragment parameters of a privacy link.
func linkFragment(t *testing.T, link string) url.Values {
	t.Helper()
	_, frag, ok := strings.Cut(link, "#")
	if !ok {
		t.Fatalf("link %q has no fragment", link)
	}
	v, err := url.ParseQuery(frag)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPrivacyLink asks for privacy-page links through the real binary:
// only an app gets one, bad input is refused naming the field, the token
// rides in the fragment and reaches only its subject, its making is in the
// subject's trail, and the token is in no line the server logs.
func TestPrivacyLink(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	app := s.client(s.token("app", "CN", ""), "service", "")
	for _, id := range []string{"li", "zhang"} {
		if _, err := app.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.PutRecord(ctx, "li", "profile", "main", map[string]string{"name": "李伟"}, ""); err != nil {
		t.Fatal(err)
	}

	link, err := app.PrivacyLink(ctx, "li", "zh-CN", 0)
	if err != nil {
		t.Fatal(err)
	}
	path, _, _ := strings.Cut(link.URL, "#")
	if path != "/privacy/?lang=zh-CN" {
		t.Errorf("link path %q, want /privacy/?lang=zh-CN", path)
	}
	frag := linkFragment(t, link.URL)
	tok := frag.Get("token")
	if frag.Get("subject") != "li" || !strings.HasPrefix(tok, "dmc_") || strings.Contains(path, tok) {
		t.Fatalf("link fragment %v: want the subject and a token, and no token outside the fragment", frag)
	}
	if d := time.Until(link.Expires); d < 14*time.Minute || d > 15*time.Minute {
		t.Errorf("the link expires in %s, want 15m", d)
	}
	if exp, err := time.Parse(time.RFC3339, frag.Get("expires")); err != nil || !exp.Equal(link.Expires.Truncate(time.Second)) {
		t.Errorf("fragment expires %q, want %s", frag.Get("expires"), link.Expires)
	}

	// The token reads its subject, and nobody else.
	li := s.client(tok, "", "")
	if _, err := li.GetRecord(ctx, "li", "profile", "main"); err != nil {
		t.Fatalf("the link's token reading its subject: %v", err)
	}
	if _, err := li.GetSubject(ctx, "zhang"); !isStatus(err, 403) {
		t.Fatalf("the link's token reading another subject: %v, want 403", err)
	}
	// It cannot mint links itself: a link that makes links would never expire.
	if _, err := li.PrivacyLink(ctx, "li", "", 0); !isStatus(err, 403) {
		t.Fatalf("the link's token asking for a link: %v, want 403", err)
	}

	// The making of the link is in the trail, naming the token, whose
	// reads carry its id.
	var linked, refused, byToken int
	for _, e := range trailOf(t, s, s.token("subject", "CN", "li"), "li") {
		switch {
		case e.Resource == "privacy-link" && e.Outcome == domicile.Allowed && e.Role == domicile.RoleApp:
			linked++
			if !strings.Contains(e.Detail, link.TokenID) || !strings.Contains(e.Detail, link.Expires.Format(time.RFC3339)) {
				t.Errorf("link event detail %q does not name token %s and its expiry", e.Detail, link.TokenID)
			}
		case e.Resource == "privacy-link" && e.Outcome == domicile.Denied:
			refused++
		case e.TokenID == link.TokenID:
			byToken++
		}
	}
	if linked != 1 || refused != 1 || byToken != 1 {
		t.Errorf("trail: %d link events, %d refused, %d by the link's token; want 1, 1, 1", linked, refused, byToken)
	}

	// Bad input and other actors.
	for _, tt := range []struct {
		name, path, token string
		hdr               map[string]string
		status            int
		field             string
	}{
		{"bad lang", "/v1/subjects/li/privacy-link?lang=fr", tokOf(app), map[string]string{"Domicile-Purpose": "service"}, 400, "lang"},
		{"ttl too long", "/v1/subjects/li/privacy-link?ttl=2h", tokOf(app), map[string]string{"Domicile-Purpose": "service"}, 400, "ttl"},
		{"ttl not a duration", "/v1/subjects/li/privacy-link?ttl=soon", tokOf(app), map[string]string{"Domicile-Purpose": "service"}, 400, "ttl"},
		{"no such subject", "/v1/subjects/nobody/privacy-link", tokOf(app), map[string]string{"Domicile-Purpose": "service"}, 404, ""},
		{"no token", "/v1/subjects/li/privacy-link", "", nil, 401, ""},
		{"admin", "/v1/subjects/li/privacy-link", s.Admin, nil, 403, ""},
		{"operator", "/v1/subjects/li/privacy-link", s.token("operator", "CN", ""), map[string]string{"Domicile-Justification": "support T-1"}, 403, ""},
	} {
		st, _, body := s.do("POST", tt.path, tt.token, tt.hdr, nil)
		if st != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.name, st, tt.status, body)
			continue
		}
		if p := mustProblem(t, body); p.Field != tt.field {
			t.Errorf("%s: problem names field %q, want %q", tt.name, p.Field, tt.field)
		}
	}
	short, err := app.PrivacyLink(ctx, "li", "", 2*time.Minute)
	if err != nil || time.Until(short.Expires) > 2*time.Minute || strings.Contains(short.URL, "lang=") {
		t.Errorf("a 2m link without a language: %+v, %v", short, err)
	}

	// The page itself: served with its pinned keys, the language from the
	// link or the browser, and the security headers.
	st, h, body := s.do("GET", "/privacy/?lang=zh-CN", "", nil, nil)
	if st != 200 || !strings.Contains(string(body), `<html lang="zh-CN">`) || !strings.Contains(string(body), "您的隐私页面") {
		t.Fatalf("GET /privacy/?lang=zh-CN: %d %.300s", st, body)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("page CSP %q", csp)
	}
	var cells struct {
		Cells []struct {
			ID  string           `json:"id"`
			Log *httpapi.LogInfo `json:"log"`
		} `json:"cells"`
	}
	_, _, cb := s.do("GET", "/v1/cells", "", nil, nil)
	json.Unmarshal(cb, &cells)
	for _, c := range cells.Cells {
		if c.Log == nil || !strings.Contains(string(body), c.Log.VerifierKey) || !strings.Contains(string(body), c.Log.WitnessKey) {
			t.Errorf("the page does not pin the log and witness keys of cell %s", c.ID)
		}
	}
	if st, _, body := s.do("GET", "/privacy/", "", map[string]string{"Accept-Language": "zh-CN,zh;q=0.9"}, nil); st != 200 || !strings.Contains(string(body), `<html lang="zh-CN">`) {
		t.Errorf("GET /privacy/ in a Chinese browser: %d %.200s", st, body)
	}
	if st, _, body := s.do("GET", "/privacy/?lang=fr", "", nil, nil); st != 400 || mustProblem(t, body).Field != "lang" {
		t.Errorf("GET /privacy/?lang=fr: %d %s", st, body)
	}
	if st, h, _ := s.do("GET", "/privacy/verify.js", "", nil, nil); st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /privacy/verify.js: %d %s", st, h.Get("Content-Type"))
	}
	if st, _, _ := s.do("GET", "/privacy/nothing.js", "", nil, nil); st != 404 {
		t.Errorf("GET /privacy/nothing.js: %d, want 404", st)
	}

	s.Stop()
	if out := s.out.String(); strings.Contains(out, tok) || strings.Contains(out, short.URL) {
		t.Errorf("the server's log holds a link's token:\n%s", out)
	}
}

// TestPrivacyLinkExpires runs `domicile serve` in process on an injected
// clock: a link's token works until its expiry and is refused from then
// on, with a problem that says it expired.
func TestPrivacyLinkExpires(t *testing.T) {
	clk := &clock{}
	base, _, admin := inProcess(t, clk.Now)
	ctx := context.Background()
	tok, err := (&httpapi.Client{Client: client.Client{BaseURL: base, Token: admin}}).CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: "CN"})
	if err != nil {
		t.Fatal(err)
	}
	app := &httpapi.Client{Client: client.Client{BaseURL: base, Token: tok.Token, Purpose: "service"}}
	if _, err := app.CreateSubject(ctx, "li", "CN", ""); err != nil {
		t.Fatal(err)
	}
	link, err := app.PrivacyLink(ctx, "li", "", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d := link.Expires.Sub(clk.Now()); d > 10*time.Minute || d < 9*time.Minute {
		t.Fatalf("link expires %s after the injected clock's now, want 10m", d)
	}
	li := &httpapi.Client{Client: client.Client{BaseURL: base, Token: linkFragment(t, link.URL).Get("token")}}
	// Steps of the clock from the link's making, and whether the token
	// still works after each.
	for _, step := range []struct {
		advance time.Duration
		works   bool
	}{{0, true}, {9*time.Minute + 50*time.Second, true}, {20 * time.Second, false}, {time.Hour, false}} {
		clk.Advance(step.advance)
		_, err := li.GetSubject(ctx, "li")
		switch {
		case step.works && err != nil:
			t.Errorf("at %s, before the expiry: %v, want the read to work", clk.Now().Sub(link.Expires), err)
		case !step.works && (!isStatus(err, 401) || !strings.Contains(err.Error(), "expired")):
			t.Errorf("at %s, after the expiry: %v, want 401 token expired", clk.Now().Sub(link.Expires), err)
		}
	}
}

// tileTamper is a proxy in front of the server that, while armed, serves
// a level-0 tile of a cell's log with one hash flipped.
type tileTamper struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	// path prefix of the tile to tamper with ("/log/cn-gz1/tile/0/000"),
	// and the hash in it to flip.
	path string
	at   int
}

func (p *tileTamper) arm(path string, at int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.path, p.at = path, at
}

func (p *tileTamper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	path, at := p.path, p.at
	p.mu.Unlock()
	if path == "" || r.URL.Path != path && !strings.HasPrefix(r.URL.Path, path+".p/") {
		p.proxy.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	p.proxy.ServeHTTP(rec, r)
	b := rec.Body.Bytes()
	if rec.Code == 200 && len(b) >= 32*(at+1) {
		b[32*at+7] ^= 0x40
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(b)
}

// pageRows is what the page shows for each event row.
type pageRow struct {
	Index int64  `json:"index"`
	Proof string `json:"proof"`
	Text  string `json:"text"`
}

// waitRows waits until the page has checked every row, and returns them.
func waitRows(t *testing.T, b *browsertest.Browser, want int) []pageRow {
	t.Helper()
	_, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`document.querySelectorAll('#events tbody tr').length >= %d && !document.querySelector('#events tr[data-proof="pending"]') && /^(Done|完成)/.test(document.getElementById('status').textContent)`, want),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the page did not check %d rows: %v\npage:\n%s\nconsole:\n%s", want, err, text, b.Console())
	}
	raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`[...document.querySelectorAll('#events tbody tr')].map(tr => ({index: +tr.dataset.leafIndex, proof: tr.dataset.proof, text: tr.innerText}))`))
	if err != nil {
		t.Fatal(err)
	}
	var rows []pageRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestPrivacyPage opens a subject's privacy page from a link in Debian's
// Chromium, through a proxy that can tamper with the log's tiles: every
// access verifies; with a tampered tile the accesses whose proofs use it
// fail and the others still verify; a consent withdrawn on the page stops
// the next marketing read at once; the language switches; axe-core finds
// no serious or critical violation in either language; the keyboard
// reaches every control; the subject erases itself from the page.
func TestPrivacyPage(t *testing.T) {
	b := browsertest.New(t, 4*time.Minute, 1200, 900)
	s := startServer(t, "")
	ctx := context.Background()
	app := s.client(s.token("app", "CN", ""), "service", "")
	if _, err := app.CreateSubject(ctx, "li", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := app.PutRecord(ctx, "li", "profile", "main", map[string]string{"name": "李伟", "email": "li@example.cn", "id_number": "110101199001011234"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := app.PutRecord(ctx, "li", "message", "m1", map[string]string{"from": "li", "body": "明天见"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"marketing", "cross-border"} {
		if _, err := app.SetConsent(ctx, "li", k, "v1", true); err != nil {
			t.Fatal(err)
		}
	}
	op := s.client(s.token("operator", "CN", ""), "", "support TICKET-7")
	if _, err := op.GetRecord(ctx, "li", "message", "m1"); err != nil {
		t.Fatal(err)
	}
	marketing := s.client(tokOf(app), "marketing", "")
	if _, err := marketing.GetRecord(ctx, "li", "profile", "main"); err != nil {
		t.Fatalf("marketing read with consent: %v", err)
	}
	// Fill the cell's log past its first full tile, so that li's later
	// events are proved through the level-1 tile, not the level-0 tile
	// the proxy will tamper with.
	if _, err := app.CreateSubject(ctx, "filler", "CN", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 260 {
		if _, err := app.PutRecord(ctx, "filler", "message", "m"+strconv.Itoa(i), map[string]string{"body": "x"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.GetRecord(ctx, "li", "profile", "main"); err != nil {
		t.Fatal(err)
	}

	target, _ := url.Parse(s.URL)
	px := &tileTamper{proxy: httputil.NewSingleHostReverseProxy(target)}
	front := httptest.NewServer(px)
	defer front.Close()
	open := func(lang string) {
		t.Helper()
		link, err := app.PrivacyLink(ctx, "li", lang, 0)
		if err != nil {
			t.Fatal(err)
		}
		// From a blank page: the link then loads the page anew, not as a
		// change of the fragment of the page already open.
		if err := chromedp.Do(b.Ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(front.URL+link.URL), chromedp.WaitReady("#events")); err != nil {
			t.Fatal(err)
		}
	}

	// 1. Every access verifies.
	open("en")
	rows := waitRows(t, b, 1)
	if len(rows) < 10 {
		t.Fatalf("the page shows %d accesses", len(rows))
	}
	early, late := 0, 0
	for _, r := range rows {
		if r.Proof != "verified" {
			t.Errorf("access %d: %s: %s", r.Index, r.Proof, r.Text)
		}
		if r.Index < 256 {
			early++
		} else {
			late++
		}
	}
	if early == 0 || late == 0 {
		t.Fatalf("want accesses on both sides of leaf 256, have %d and %d", early, late)
	}
	text, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Guangzhou Demo Cloud Data Co., Ltd.", "Guangzhou, Guangdong, China", "cn-gz1", "Who can unwrap your keys", "PRC authorities", "CN.DSL.35",
		"operator staff", "support, reference TICKET-7", "purpose: marketing", "witness/eu-fra1", "witness/us-east1", "signature verifies under the log key pinned",
		fmt.Sprintf("%d of %d accesses verified", len(rows), len(rows)), "Withdraw", "PIPL Art. 47", "DELETE /v1/subjects/li"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if u, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`location.href`)); strings.Contains(u, "token") {
		t.Errorf("the token stays in the address bar: %s", u)
	}
	checkAxe(t, b, "en")
	shot(t, b, "privacy.en.png")

	// 2. A tampered level-0 tile: the accesses it proves fail, the others
	// verify.
	var victim int64 = -1
	for _, r := range rows {
		if r.Index < 256 && (victim < 0 || r.Index < victim) {
			victim = r.Index
		}
	}
	px.arm("/log/cn-gz1/tile/0/000", int(victim))
	open("en")
	rows = waitRows(t, b, 1)
	failed := 0
	for _, r := range rows {
		switch {
		case r.Index < 256 && r.Proof != "failed":
			t.Errorf("access %d, proved by the tampered tile: %s", r.Index, r.Proof)
		case r.Index >= 256 && r.Proof != "verified":
			t.Errorf("access %d, proved without the tampered tile: %s: %s", r.Index, r.Proof, r.Text)
		case r.Index == victim && !strings.Contains(r.Text, "tile does not hold this event's hash"):
			t.Errorf("the access whose hash was flipped says %q", r.Text)
		case r.Index < 256 && r.Index != victim && !strings.Contains(r.Text, "does not lead to the signed root"):
			t.Errorf("access %d, whose proof uses the flipped hash, says %q", r.Index, r.Text)
		}
		if r.Proof == "failed" {
			failed++
		}
	}
	if failed != early {
		t.Errorf("%d accesses failed, want the %d proved by the tampered tile", failed, early)
	}
	px.arm("", 0)

	// 3. Withdraw the marketing consent on the page, with the keyboard:
	// the next marketing read is refused.
	open("en")
	waitRows(t, b, 1)
	focused := tabUntil(t, b, `li[data-consent="marketing"] button`)
	if !strings.Contains(focused, "Withdraw your consent to marketing") {
		t.Errorf("the withdraw button's label: %q", focused)
	}
	if err := chromedp.Do(b.Ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`document.querySelector('li[data-consent="marketing"]')?.dataset.granted === 'false'`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the consent list does not show the withdrawal: %v\n%s", err, b.Console())
	}
	if _, err := marketing.GetRecord(ctx, "li", "profile", "main"); !isStatus(err, 403) {
		t.Fatalf("marketing read after the withdrawal on the page: %v, want 403", err)
	}
	rows = waitRows(t, b, 1)
	withdrawn := false
	for _, r := range rows {
		withdrawn = withdrawn || strings.Contains(r.Text, "consent/marketing") && r.Proof == "verified"
	}
	if !withdrawn {
		t.Errorf("the withdrawal is not a verified access on the page")
	}

	// 4. Switch the language on the page.
	tabUntil(t, b, `#lang`)
	if err := chromedp.Do(b.Ctx, chromedp.SetValue("#lang", "zh-CN"), chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`document.documentElement.lang === 'zh-CN' && document.getElementById('keys-text').textContent.includes('密钥') && location.search.includes('lang=zh-CN')`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the page did not switch to Chinese: %v", err)
	}
	text, _ = chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body.innerText`))
	for _, want := range []string{"您的隐私页面", "您的数据存放在哪里", "对您数据的每一次访问", "已核验", "本页面核验了什么", "中国境内主管机关", "撤回"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Chinese page lacks %q", want)
		}
	}
	checkAxe(t, b, "zh-CN")
	shot(t, b, "privacy.zh-CN.png")

	// 5. A link in Chinese opens the page in Chinese.
	open("zh-CN")
	waitRows(t, b, 1)
	if h1, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.querySelector('h1').textContent`)); h1 != "您的隐私页面" {
		t.Errorf("a zh-CN link opens a page titled %q", h1)
	}

	// 6. Rights from the page are tracked requests: a copy (its ZIP
	// downloaded) and an explanation, each listed with its deadline.
	open("en")
	waitRows(t, b, 1)
	if err := chromedp.Do(b.Ctx, chromedp.Click("#download")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`document.getElementById('rights-status').textContent.includes('Copy request rq_')`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("no answered copy request on the page: %v\n%s", err, b.Console())
	}
	if err := chromedp.Do(b.Ctx, chromedp.Click("#explain")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`document.querySelectorAll('#explanation li').length > 0 && document.querySelectorAll('#requests-table tbody tr').length === 2`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("no explanation or request list on the page: %v\n%s", err, b.Console())
	}
	raw, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](`[...document.querySelectorAll('#requests-table tbody tr')].map(r => r.dataset.kind + '/' + r.dataset.state)`))
	var reqRows []string
	json.Unmarshal(raw, &reqRows)
	if strings.Join(reqRows, ",") != "explanation/completed,copy/completed" && strings.Join(reqRows, ",") != "copy/completed,explanation/completed" {
		t.Errorf("the page lists requests %v, want a completed copy and explanation", reqRows)
	}
	if filed, err := app.Requests(ctx, "li"); err != nil || len(filed) != 2 {
		t.Errorf("the service holds %d requests of li (%v), want the page's 2", len(filed), err)
	}

	// 7. Erase: the page asks for a confirmation first; the deletion
	// request answers with the receipt and its id.
	if dis, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.getElementById('erase').disabled`)); !dis {
		t.Errorf("the erase button works without a confirmation")
	}
	if err := chromedp.Do(b.Ctx, chromedp.Click("#erase-confirm"), chromedp.Click("#erase")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[chromedp.Void](`document.getElementById('rights-status').textContent.includes('is erased')`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("no erasure receipt on the page: %v\n%s", err, b.Console())
	}
	if st, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.getElementById('rights-status').textContent`)); !strings.Contains(st, "receipt id rcp_") {
		t.Errorf("the erasure status names no receipt id: %q", st)
	}
	if _, err := app.GetSubject(ctx, "li"); !isStatus(err, 404) {
		t.Errorf("after the erasure on the page, the subject: %v, want 404", err)
	}
}

// tabUntil presses Tab until the element matching sel has the focus (at
// most 60 times), and returns its accessible label or text.
func tabUntil(t *testing.T, b *browsertest.Browser, sel string) string {
	t.Helper()
	if err := chromedp.Do(b.Ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.focus()`)); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		if err := chromedp.Do(b.Ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.activeElement === document.querySelector(%q) ? (document.activeElement.getAttribute('aria-label') || document.activeElement.textContent || 'focused') : ''`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		if got != "" {
			return got
		}
	}
	t.Fatalf("Tab never reaches %s", sel)
	return ""
}

// checkAxe runs axe-core on the page and fails on serious or critical
// violations.
func checkAxe(t *testing.T, b *browsertest.Browser, lang string) {
	t.Helper()
	vs, err := b.Axe()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range browsertest.Serious(vs) {
		t.Errorf("axe-core, %s page: %s", lang, v)
	}
	for _, v := range vs {
		t.Logf("axe-core, %s page, %s: %s", lang, v.Impact, v)
	}
}

// shot writes a screenshot of the page to doc/img with -update.
func shot(t *testing.T, b *browsertest.Browser, name string) {
	t.Helper()
	if !*updateShots {
		return
	}
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "doc", "img", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
