package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"domicile/i18n"
)

//go:embed console
var consoleFS embed.FS

// consoleCatalogPrefixes are the i18n keys the console's JavaScript
// uses.
var consoleCatalogPrefixes = []string{"console."}

// ConsoleConfig configures the console.
type ConsoleConfig struct {
	// Logs pins the keys of each cell's log, as for the privacy page: the
	// console verifies each cell's latest checkpoint with them.
	Logs []PinnedLog
	// Sources are the source jurisdictions whose threshold ledger the
	// console shows (GET /v1/transfers/assessment?source=...).
	Sources []string
}

// Console serves the console for the business and its assets under
// /console/. It is safe for concurrent use.
type Console struct {
	tmpl   *template.Template
	config map[i18n.Lang][]byte
	assets map[string]asset
}

// NewConsole returns the console's handler. It fails if a pinned key is
// empty or a cell is pinned twice.
func NewConsole(cfg ConsoleConfig) (*Console, error) {
	if err := checkPins(cfg.Logs); err != nil {
		return nil, err
	}
	c := &Console{config: map[i18n.Lang][]byte{}, assets: map[string]asset{}}
	index, err := consoleFS.ReadFile("console/index.html")
	if err != nil {
		return nil, err
	}
	c.tmpl, err = template.New("index.html").Funcs(template.FuncMap{"t": func(string) string { return "" }}).Parse(string(index))
	if err != nil {
		return nil, fmt.Errorf("web: console template: %w", err)
	}
	logs := map[string]PinnedLog{}
	for _, l := range cfg.Logs {
		if l.Witnesses == nil {
			l.Witnesses = []string{}
		}
		logs[l.Cell] = l
	}
	sources := append([]string{}, cfg.Sources...)
	msgs := catalogFor(consoleCatalogPrefixes)
	for _, lang := range i18n.Langs {
		b, err := json.Marshal(struct {
			Lang     i18n.Lang                       `json:"lang"`
			Langs    []i18n.Lang                     `json:"langs"`
			Logs     map[string]PinnedLog            `json:"logs"`
			Sources  []string                        `json:"sources"`
			Messages map[i18n.Lang]map[string]string `json:"messages"`
		}{lang, i18n.Langs, logs, sources, msgs})
		if err != nil {
			return nil, err
		}
		c.config[lang] = b
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	err = fs.WalkDir(consoleFS, "console", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "console/index.html" {
			return err
		}
		ct, ok := types[path.Ext(name)]
		if !ok {
			return fmt.Errorf("web: no content type for %s", name)
		}
		b, err := consoleFS.ReadFile(name)
		if err != nil {
			return err
		}
		c.assets[strings.TrimPrefix(name, "console/")] = asset{ct, b}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The checkpoint checks are the privacy page's own code (one
	// verifier), and so is the base of its look (one stylesheet).
	for _, name := range []string{"verify.js", "privacy.css"} {
		b, err := privacyFS.ReadFile("privacy/" + name)
		if err != nil {
			return nil, err
		}
		c.assets[name] = asset{types[path.Ext(name)], b}
	}
	return c, nil
}

// checkPins refuses a pinned log without a cell, URL or key, a cell
// pinned twice, and an empty witness key.
func checkPins(pins []PinnedLog) error {
	seen := map[string]bool{}
	for _, l := range pins {
		switch {
		case l.Cell == "" || l.URL == "" || l.Key == "":
			return fmt.Errorf("web: pinned log %q: cell, URL and key are required", l.Cell)
		case seen[l.Cell]:
			return fmt.Errorf("web: cell %q pinned twice", l.Cell)
		}
		seen[l.Cell] = true
		for _, w := range l.Witnesses {
			if w == "" {
				return fmt.Errorf("web: pinned log %q: empty witness key", l.Cell)
			}
		}
	}
	return nil
}

// catalogFor returns the catalog entries with the given prefixes, per
// language.
func catalogFor(prefixes []string) map[i18n.Lang]map[string]string {
	out := map[i18n.Lang]map[string]string{}
	for _, lang := range i18n.Langs {
		m := map[string]string{}
		for _, k := range i18n.Keys() {
			for _, p := range prefixes {
				if strings.HasPrefix(k, p) {
					m[k], _ = i18n.Text(lang, k)
				}
			}
		}
		out[lang] = m
	}
	return out
}

// Assets returns the names of the console's static assets, sorted.
func (c *Console) Assets() []string {
	var out []string
	for k := range c.assets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ServeHTTP serves GET /console/ and /console/<asset>, writing an error as
// an RFC 9457 problem document.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := c.Serve(w, r); err != nil {
		writeProblem(w, r, err)
	}
}

// Serve serves GET /console/ (the page) and /console/<asset>, or returns
// the error to answer (a *domicile.Error naming the field of bad input)
// without writing anything. The page itself holds no figure and no
// token: its script reads them from the API with the token the user
// enters.
func (c *Console) Serve(w http.ResponseWriter, r *http.Request) error {
	return servePage(w, r, "/console/", "the console", c.tmpl, c.config, c.assets)
}
