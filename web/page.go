package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"domicile"
	"domicile/i18n"
)

// servePage serves a page under prefix ("/console/"): the page itself,
// rendered from tmpl in the language the request asks for (?lang= or
// Accept-Language) with that language's configuration, or one of its
// assets. It returns the error to answer, without writing anything, for a
// missing asset or a bad lang; what names the page in errors.
func servePage(w http.ResponseWriter, r *http.Request, prefix, what string, tmpl *template.Template, config map[i18n.Lang][]byte, assets map[string]asset) error {
	name, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		return domicile.Errorf(domicile.ENotFound, "no such page")
	}
	if name != "" {
		a, ok := assets[name]
		if !ok {
			return domicile.Errorf(domicile.ENotFound, "no such asset of %s", what)
		}
		pageHeaders(w.Header())
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(a.data)
		return nil
	}
	lang := i18n.Match(r.Header.Get("Accept-Language"))
	if v := r.URL.Query().Get("lang"); v != "" {
		l, err := i18n.ParseLang(v)
		if err != nil {
			return domicile.FieldErrorf("lang", "must be en or zh-CN")
		}
		lang = l
	}
	pr := i18n.NewPrinter(lang)
	var buf bytes.Buffer
	t, err := tmpl.Clone()
	if err == nil {
		t.Funcs(template.FuncMap{"t": func(key string) string { return pr.T(key) }})
		err = t.Execute(&buf, struct {
			Lang   i18n.Lang
			Config template.JS
		}{lang, template.JS(config[lang])})
	}
	if err != nil {
		return fmt.Errorf("web: render %s: %v", what, err)
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(lang))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept-Language")
	w.Write(buf.Bytes())
	return nil
}
