package web

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"domicile"
	"domicile/i18n"
	"domicile/law"
	"domicile/transfer"
)

func TestConsoleServes(t *testing.T) {
	c, err := NewConsole(ConsoleConfig{Logs: testPins, Sources: []string{"CN"}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, accept string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if accept != "" {
			r.Header.Set("Accept-Language", accept)
		}
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		return w
	}
	for _, tt := range []struct {
		name, path, accept string
		lang               i18n.Lang
		title              string
	}{
		{"default", "/console/", "", i18n.EN, "Console"},
		{"browser", "/console/", "zh-CN,zh;q=0.9", i18n.ZH, "控制台"},
		{"query wins", "/console/?lang=en", "zh-CN", i18n.EN, "Console"},
		{"query", "/console/?lang=zh-CN", "", i18n.ZH, "控制台"},
	} {
		w := get(tt.path, tt.accept)
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, `<html lang="`+string(tt.lang)+`">`) || !strings.Contains(body, `<h1 data-i18n="console.title">`+tt.title+`</h1>`) {
			t.Errorf("%s: %d, want the console in %s:\n%.300s", tt.name, w.Code, tt.lang, body)
			continue
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", tt.name, csp)
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", tt.name, w.Header())
		}
		cfg := pageConfig(t, body)
		var logs map[string]PinnedLog
		var sources []string
		var msgs map[i18n.Lang]map[string]string
		json.Unmarshal(cfg["logs"], &logs)
		json.Unmarshal(cfg["sources"], &sources)
		json.Unmarshal(cfg["messages"], &msgs)
		if logs["cn-gz1"].Key != testPins[0].Key || !slices.Equal(sources, []string{"CN"}) {
			t.Errorf("%s: configuration logs %+v sources %v", tt.name, logs, sources)
		}
		if msgs[i18n.ZH]["console.map.h"] != "数据分布图" || msgs[i18n.EN]["privacy.title"] != "" {
			t.Errorf("%s: the console's messages are not its own", tt.name)
		}
		// The page carries no token and asks for none in a URL.
		if strings.Contains(body, "token=") {
			t.Errorf("%s: the page mentions a token parameter", tt.name)
		}
	}
	if got := c.Assets(); !slices.Equal(got, []string{"console.css", "console.js", "privacy.css", "verify.js"}) {
		t.Errorf("Assets() = %v", got)
	}
	v, _ := privacyFS.ReadFile("privacy/verify.js")
	if w := get("/console/verify.js", ""); w.Code != 200 || w.Body.String() != string(v) || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("/console/verify.js: %d, want the privacy page's verifier", w.Code)
	}
	for _, tt := range []struct {
		path   string
		status int
		field  string
	}{
		{"/console/index.html", 404, ""},
		{"/console/privacy.js", 404, ""},
		{"/console/?lang=fr", 400, "lang"},
		{"/privacy/", 404, ""},
	} {
		w := get(tt.path, "")
		var prob struct {
			Status int    `json:"status"`
			Field  string `json:"field"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil || w.Code != tt.status || prob.Field != tt.field {
			t.Errorf("GET %s: %d %s, want a %d problem naming %q", tt.path, w.Code, w.Body, tt.status, tt.field)
		}
	}
	if _, err := NewConsole(ConsoleConfig{Logs: []PinnedLog{{Cell: "a", URL: "/log/a/"}}}); err == nil {
		t.Error("NewConsole with a pin without a key succeeded")
	}
}

// TestConsoleCatalog: every message the console names is in the catalog
// in both languages, every console.* message is used by the console
// (literally or by a prefix it builds keys from), and every element
// translated on a language switch is rendered in the served language.
func TestConsoleCatalog(t *testing.T) {
	keys := map[string]bool{}
	var prefixes []string
	lit := regexp.MustCompile(`['"](console\.[a-z0-9.-]*)['"]`)
	tmpl := regexp.MustCompile(`\{\{t "([^"]+)"\}\}`)
	for _, name := range []string{"console/index.html", "console/console.js"} {
		b, err := consoleFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{lit, tmpl} {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				switch {
				case strings.HasSuffix(m[1], ".js") || strings.HasSuffix(m[1], ".css"):
				case strings.HasSuffix(m[1], "."):
					prefixes = append(prefixes, m[1])
				default:
					keys[m[1]] = true
				}
			}
		}
	}
	if len(keys) < 100 {
		t.Fatalf("found only %d message keys in the console's files", len(keys))
	}
	for k := range keys {
		for _, l := range i18n.Langs {
			if _, ok := i18n.Text(l, k); !ok {
				t.Errorf("the console uses message %q, which has no %s text", k, l)
			}
		}
	}
	for _, k := range i18n.Keys() {
		if !strings.HasPrefix(k, "console.") || keys[k] {
			continue
		}
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			t.Errorf("catalog message %q is not used by the console", k)
		}
	}
	// Words the console builds keys for: each value the API can answer
	// has its words.
	for _, want := range []string{"console.rkind.access", "console.rkind.explanation", "console.rstate.received", "console.rstate.in-progress",
		"console.astate.recorded", "console.astate.refused", "console.fact.pi_individuals_ytd", "console.fact.sensitive_pi_individuals_ytd"} {
		if !i18n.Has(want) {
			t.Errorf("the catalog lacks %q", want)
		}
	}
	for _, k := range domicile.MechanismKinds() {
		if !i18n.Has("console.mechkind." + string(k)) {
			t.Errorf("the catalog has no words for mechanism kind %s", k)
		}
	}
	b, _ := consoleFS.ReadFile("console/index.html")
	for _, m := range regexp.MustCompile(`data-i18n="([^"]+)"([^>]*)>([^<]*)<`).FindAllStringSubmatch(string(b), -1) {
		if m[3] != `{{t "`+m[1]+`"}}` {
			t.Errorf("element with data-i18n=%q is served with %q, want {{t %q}}", m[1], m[3], m[1])
		}
	}
}

// TestConsoleSaysLawInBothLanguages: what the server says in the rule
// set's or the gate's English (a threshold's crossing, a mechanism's
// problems) the console says from its catalog, which must hold every
// threshold of the rule set and every issue code in both languages.
func TestConsoleSaysLawInBothLanguages(t *testing.T) {
	e, err := law.New()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, th := range e.Vocabulary().Thresholds {
		keys = append(keys, "console.crossing."+th.Rule+"."+th.Fact)
	}
	for _, code := range []string{"unfiled", "filing-overdue", "filed-late", "not-in-effect", "expired", "expired.rule"} {
		keys = append(keys, "console.mech.issue."+code)
	}
	for _, k := range keys {
		for _, l := range []i18n.Lang{i18n.EN, i18n.ZH} {
			if s, ok := i18n.Text(l, k); !ok || s == "" {
				t.Errorf("the console's catalog has no %s text for %s", l, k)
			}
		}
	}
	// The issue texts take the arguments the gate gives.
	cal := transfer.CN()
	sc := transfer.Mechanism{ID: "sc-1", Kind: domicile.MechStandardContract, Signed: "2025-09-26"}
	for _, is := range sc.StatusOn("2025-10-20", cal).Issues {
		s, _ := i18n.Text(i18n.ZH, "console.mech.issue."+is.Code)
		if n := strings.Count(s, "%s"); n != len(is.Args) {
			t.Errorf("issue %s has %d arguments, its zh-CN text takes %d", is.Code, len(is.Args), n)
		}
	}
}
