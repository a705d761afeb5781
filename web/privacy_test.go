package web

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"domicile"
	"domicile/i18n"
)

var testPins = []PinnedLog{{
	Cell: "cn-gz1", URL: "/log/cn-gz1/",
	Key:       "domicile/demo/cn-gz1+b70cb34f+AT5CW5+0YgRyxdD9tEiNtvdBZhq7MAGpAL+/LFFr8oMU",
	Witnesses: []string{"witness/eu-fra1+b4bb2b26+BPhSCpHqXA8a27hQ85fr1sW05bk9HzbcrkZgVUYH9XcT"},
}}

func TestNewPrivacyRefusesBadPins(t *testing.T) {
	for name, pins := range map[string][]PinnedLog{
		"no key":        {{Cell: "a", URL: "/log/a/"}},
		"no url":        {{Cell: "a", Key: "k"}},
		"twice":         {{Cell: "a", URL: "/log/a/", Key: "k"}, {Cell: "a", URL: "/log/a/", Key: "k"}},
		"empty witness": {{Cell: "a", URL: "/log/a/", Key: "k", Witnesses: []string{""}}},
	} {
		if _, err := NewPrivacy(PrivacyConfig{Logs: pins}); err == nil {
			t.Errorf("%s: NewPrivacy succeeded, want an error", name)
		}
	}
}

// pageConfig extracts the configuration the page is served with.
func pageConfig(t *testing.T, body string) map[string]json.RawMessage {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="config">(.*?)</script>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no configuration in the page")
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal([]byte(m[1]), &cfg); err != nil {
		t.Fatalf("the page's configuration: %v", err)
	}
	return cfg
}

func TestPrivacyServes(t *testing.T) {
	p, err := NewPrivacy(PrivacyConfig{Logs: testPins})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		name, path, accept string
		lang               i18n.Lang
		title              string
	}{
		{"default", "/privacy/", "", i18n.EN, "Your privacy page"},
		{"browser", "/privacy/", "zh-CN,zh;q=0.9,en;q=0.5", i18n.ZH, "您的隐私页面"},
		{"link wins", "/privacy/?lang=en", "zh-CN", i18n.EN, "Your privacy page"},
		{"link", "/privacy/?lang=zh-CN", "", i18n.ZH, "您的隐私页面"},
	}
	for _, tt := range tests {
		w := get(tt.path, map[string]string{"Accept-Language": tt.accept})
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, `<html lang="`+string(tt.lang)+`">`) || !strings.Contains(body, "<h1 data-i18n=\"privacy.title\">"+tt.title+"</h1>") {
			t.Errorf("%s: %d, want the page in %s:\n%.400s", tt.name, w.Code, tt.lang, body)
			continue
		}
		for k, want := range map[string]string{
			"Content-Type": "text/html; charset=utf-8", "Content-Language": string(tt.lang), "Cache-Control": "no-store",
			"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
		} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, got, want)
			}
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", tt.name, csp)
		}
		cfg := pageConfig(t, body)
		var lang i18n.Lang
		var logs map[string]PinnedLog
		var msgs map[i18n.Lang]map[string]string
		json.Unmarshal(cfg["lang"], &lang)
		json.Unmarshal(cfg["logs"], &logs)
		json.Unmarshal(cfg["messages"], &msgs)
		if lang != tt.lang || logs["cn-gz1"].Key != testPins[0].Key || !slices.Equal(logs["cn-gz1"].Witnesses, testPins[0].Witnesses) {
			t.Errorf("%s: configuration lang %s, logs %+v", tt.name, lang, logs)
		}
		if msgs[i18n.ZH]["privacy.title"] != "您的隐私页面" || msgs[i18n.EN]["role.operator"] != "operator staff" {
			t.Errorf("%s: the page's messages lack its keys", tt.name)
		}
	}

	for _, a := range []struct{ path, ct string }{
		{"/privacy/privacy.js", "text/javascript; charset=utf-8"},
		{"/privacy/verify.js", "text/javascript; charset=utf-8"},
		{"/privacy/privacy.css", "text/css; charset=utf-8"},
	} {
		if w := get(a.path, nil); w.Code != 200 || w.Header().Get("Content-Type") != a.ct || w.Body.Len() < 1000 {
			t.Errorf("%s: %d %s, %d bytes", a.path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
	}
	if got := p.Assets(); !slices.Equal(got, []string{"privacy.css", "privacy.js", "verify.js"}) {
		t.Errorf("Assets() = %v", got)
	}
	for _, tt := range []struct {
		path   string
		status int
		field  string
	}{
		{"/privacy/index.html", 404, ""},
		{"/privacy/nothing.js", 404, ""},
		{"/privacy/sub/privacy.js", 404, ""},
		{"/elsewhere", 404, ""},
		{"/privacy/?lang=fr", 400, "lang"},
		{"/privacy/?lang=" + strings.Repeat("x", 300), 400, "lang"},
	} {
		w := get(tt.path, nil)
		var prob struct {
			Status int    `json:"status"`
			Field  string `json:"field"`
			Code   string `json:"code"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil || w.Code != tt.status || prob.Status != tt.status || prob.Field != tt.field ||
			w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want a %d problem naming %q", tt.path, w.Code, w.Body, tt.status, tt.field)
		}
	}
}

// TestPrivacyServeReturnsErrors: Serve writes nothing for bad input and
// returns a field error, for the API to answer.
func TestPrivacyServeReturnsErrors(t *testing.T) {
	p, err := NewPrivacy(PrivacyConfig{Logs: testPins})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	err = p.Serve(w, httptest.NewRequest("GET", "/privacy/?lang=xx", nil))
	var de *domicile.Error
	if !errors.As(err, &de) || de.Field != "lang" || de.Code != domicile.EInvalid || w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Errorf("Serve(?lang=xx) = %v, wrote %d bytes and %v; want a field error naming lang and nothing written", err, w.Body.Len(), w.Header())
	}
	if err := p.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/privacy/", nil)); err != nil {
		t.Errorf("Serve(/privacy/) = %v", err)
	}
}

// keysUsed returns the message keys the page's files name literally, and
// the prefixes of the keys they build at run time.
func keysUsed(t *testing.T) (keys map[string]bool, prefixes []string) {
	t.Helper()
	keys = map[string]bool{}
	lit := regexp.MustCompile(`['"]((?:privacy|role|action|category|who|purpose)\.[a-z0-9.-]*)['"]`)
	tmpl := regexp.MustCompile(`\{\{t "([^"]+)"\}\}`)
	for _, name := range []string{"privacy/index.html", "privacy/privacy.js", "privacy/verify.js"} {
		b, err := privacyFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{lit, tmpl} {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				if strings.HasSuffix(m[1], ".js") || strings.HasSuffix(m[1], ".css") {
					continue // a file of the page, not a message
				}
				if strings.HasSuffix(m[1], ".") {
					prefixes = append(prefixes, m[1])
				} else {
					keys[m[1]] = true
				}
			}
		}
	}
	return keys, prefixes
}

// TestPageCatalog: every message the page names is in the catalog in both
// languages (the i18n package's test checks that each has the same
// verbs), and every privacy.* message of the catalog is used by the page.
func TestPageCatalog(t *testing.T) {
	keys, prefixes := keysUsed(t)
	if len(keys) < 80 {
		t.Fatalf("found only %d message keys in the page's files", len(keys))
	}
	for k := range keys {
		for _, l := range i18n.Langs {
			if _, ok := i18n.Text(l, k); !ok {
				t.Errorf("the page uses message %q, which has no %s text", k, l)
			}
		}
	}
	for _, k := range i18n.Keys() {
		if !strings.HasPrefix(k, "privacy.") || keys[k] {
			continue
		}
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			t.Errorf("catalog message %q is not used by the page", k)
		}
	}
	// The run-time prefixes are the ones the page's catalog carries.
	for _, p := range prefixes {
		if !slices.ContainsFunc(pageCatalogPrefixes, func(q string) bool { return strings.HasPrefix(p, q) }) {
			t.Errorf("the page builds keys %q… that its catalog does not carry", p)
		}
	}
	// Every element translated on a language switch is rendered in the
	// served language too.
	b, _ := privacyFS.ReadFile("privacy/index.html")
	for _, m := range regexp.MustCompile(`data-i18n="([^"]+)"([^>]*)>([^<]*)<`).FindAllStringSubmatch(string(b), -1) {
		if m[3] != `{{t "`+m[1]+`"}}` {
			t.Errorf("element with data-i18n=%q is served with %q, want {{t %q}}", m[1], m[3], m[1])
		}
	}
}
