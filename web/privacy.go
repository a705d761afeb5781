package web

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"domicile"
	"domicile/i18n"
)

//go:embed privacy
var privacyFS embed.FS

// pageCatalogPrefixes are the i18n keys the page's JavaScript uses: its
// own and the shared words for roles, actions, categories, purposes and
// who can reach data.
var pageCatalogPrefixes = []string{"privacy.", "role.", "action.", "category.", "who.", "purpose."}

// PinnedLog is what the privacy page trusts of one cell's log: the keys
// it verifies that log's checkpoints with.
type PinnedLog struct {
	// Cell is the cell's id.
	Cell string `json:"cell"`
	// URL is the log's tlog-tiles prefix on this server, such as
	// "/log/cn-gz1/".
	URL string `json:"url"`
	// Key is the log's note verifier key (name+hash+base64); its name is
	// the log's origin.
	Key string `json:"key"`
	// Witnesses are the cosignature/v1 verifier keys of the witnesses
	// whose cosignatures the page requires on every checkpoint.
	Witnesses []string `json:"witnesses"`
}

// PrivacyConfig configures the privacy page.
type PrivacyConfig struct {
	// Logs pins the keys of each cell's log.
	Logs []PinnedLog
}

// Privacy serves the privacy page and its assets under /privacy/. It is
// safe for concurrent use.
type Privacy struct {
	tmpl   *template.Template
	config map[i18n.Lang][]byte // the page's configuration, as JSON, per language
	assets map[string]asset
}

type asset struct {
	contentType string
	data        []byte
}

// NewPrivacy returns the privacy page's handler. It fails if a pinned key
// is empty or a cell is pinned twice.
func NewPrivacy(cfg PrivacyConfig) (*Privacy, error) {
	seen := map[string]bool{}
	for _, l := range cfg.Logs {
		switch {
		case l.Cell == "" || l.URL == "" || l.Key == "":
			return nil, fmt.Errorf("web: pinned log %q: cell, URL and key are required", l.Cell)
		case seen[l.Cell]:
			return nil, fmt.Errorf("web: cell %q pinned twice", l.Cell)
		}
		seen[l.Cell] = true
		for _, w := range l.Witnesses {
			if w == "" {
				return nil, fmt.Errorf("web: pinned log %q: empty witness key", l.Cell)
			}
		}
	}
	p := &Privacy{config: map[i18n.Lang][]byte{}, assets: map[string]asset{}}
	index, err := privacyFS.ReadFile("privacy/index.html")
	if err != nil {
		return nil, err
	}
	p.tmpl, err = template.New("index.html").Funcs(template.FuncMap{"t": func(string) string { return "" }}).Parse(string(index))
	if err != nil {
		return nil, fmt.Errorf("web: privacy page template: %w", err)
	}
	logs := map[string]PinnedLog{}
	for _, l := range cfg.Logs {
		if l.Witnesses == nil {
			l.Witnesses = []string{}
		}
		logs[l.Cell] = l
	}
	for _, lang := range i18n.Langs {
		b, err := json.Marshal(struct {
			Lang     i18n.Lang                       `json:"lang"`
			Langs    []i18n.Lang                     `json:"langs"`
			Logs     map[string]PinnedLog            `json:"logs"`
			Messages map[i18n.Lang]map[string]string `json:"messages"`
		}{lang, i18n.Langs, logs, pageMessages()})
		if err != nil {
			return nil, err
		}
		p.config[lang] = b
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	err = fs.WalkDir(privacyFS, "privacy", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "privacy/index.html" {
			return err
		}
		ct, ok := types[path.Ext(name)]
		if !ok {
			return fmt.Errorf("web: no content type for %s", name)
		}
		b, err := privacyFS.ReadFile(name)
		if err != nil {
			return err
		}
		p.assets[strings.TrimPrefix(name, "privacy/")] = asset{ct, b}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// pageMessages returns the catalog entries the page uses, per language.
func pageMessages() map[i18n.Lang]map[string]string {
	out := map[i18n.Lang]map[string]string{}
	for _, lang := range i18n.Langs {
		m := map[string]string{}
		for _, k := range i18n.Keys() {
			for _, p := range pageCatalogPrefixes {
				if strings.HasPrefix(k, p) {
					m[k], _ = i18n.Text(lang, k)
				}
			}
		}
		out[lang] = m
	}
	return out
}

// Assets returns the names of the page's static assets, sorted.
func (p *Privacy) Assets() []string {
	var out []string
	for k := range p.assets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pageHeaders are the security headers of every answer of the page.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// ServeHTTP serves GET /privacy/ (the page) and /privacy/<asset>, writing
// an error as an RFC 9457 problem document. The API serves the page with
// [Privacy.Serve] and answers its errors itself.
func (p *Privacy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := p.Serve(w, r); err != nil {
		writeProblem(w, r, err)
	}
}

// Serve serves GET /privacy/ (the page) and /privacy/<asset>, or returns
// the error to answer (a *domicile.Error naming the field of bad input)
// without writing anything.
func (p *Privacy) Serve(w http.ResponseWriter, r *http.Request) error {
	return servePage(w, r, "/privacy/", "the privacy page", p.tmpl, p.config, p.assets)
}

// writeProblem answers err as an RFC 9457 problem document: a
// *domicile.Error with its code and field, anything else as a 500 that
// does not echo it.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	status, code, detail, field := http.StatusInternalServerError, domicile.EInternal, "internal error", ""
	var de *domicile.Error
	if errors.As(err, &de) {
		code, detail, field = de.Code, de.Message, de.Field
		switch de.Code {
		case domicile.ENotFound:
			status = http.StatusNotFound
		case domicile.EInvalid:
			status = http.StatusBadRequest
		}
	}
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Field  string `json:"field,omitempty"`
		Code   string `json:"code"`
	}{"urn:domicile:problem:" + code, http.StatusText(status), status, detail, field, code})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(b)
}
