// Package i18n holds domicile's user-facing messages in every supported
// language and picks a language for a request.
//
// Messages live in one table (messages.go): each key has its English and
// Simplified Chinese text side by side, so a missing translation is an
// empty string that the package's tests refuse. They are loaded into a
// golang.org/x/text message catalog; [Printer.T] formats a message with
// fmt verbs.
package i18n

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// Lang is a supported language, as a BCP 47 tag.
type Lang string

// Supported languages.
const (
	EN Lang = "en"
	ZH Lang = "zh-CN"
)

// Langs lists the supported languages, English first.
var Langs = []Lang{EN, ZH}

var (
	// messages is every message: the documents' and the pages'.
	messages = union(coreMessages, pageMessages, consoleMessages)
	tags     = []language.Tag{language.English, language.SimplifiedChinese}
	matcher  = language.NewMatcher(tags)
	cat      = build()
)

// union merges message tables; a key in two tables is a programmer error
// that panics when the package loads, so no test can miss it.
func union(tables ...map[string][2]string) map[string][2]string {
	out := map[string][2]string{}
	for _, t := range tables {
		for k, v := range t {
			if _, dup := out[k]; dup {
				panic("i18n: message " + k + " is defined twice")
			}
			out[k] = v
		}
	}
	return out
}

func build() *catalog.Builder {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	for key, m := range messages {
		b.SetString(language.English, key, m[0])
		b.SetString(language.SimplifiedChinese, key, m[1])
	}
	return b
}

// ParseLang returns the supported language named s ("en", "zh-CN"; "zh",
// "zh-Hans" and "zh-Hans-CN" also name Simplified Chinese).
func ParseLang(s string) (Lang, error) {
	switch strings.ToLower(s) {
	case "en", "en-us", "en-gb":
		return EN, nil
	case "zh", "zh-cn", "zh-hans", "zh-hans-cn":
		return ZH, nil
	}
	return "", fmt.Errorf("i18n: unsupported language %q: want en or zh-CN", truncate(s, 16))
}

// Match picks the supported language that best fits an Accept-Language
// header; English when nothing fits.
func Match(acceptLanguage string) Lang {
	prefs, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(prefs) == 0 {
		return EN
	}
	_, i, conf := matcher.Match(prefs...)
	if conf == language.No {
		return EN
	}
	return Langs[i]
}

// Printer formats messages in one language. It is safe for concurrent use.
type Printer struct {
	lang Lang
	p    *message.Printer
}

// NewPrinter returns a printer for l (English for an unknown language).
func NewPrinter(l Lang) *Printer {
	tag := language.English
	if l == ZH {
		tag = language.SimplifiedChinese
	} else {
		l = EN
	}
	return &Printer{lang: l, p: message.NewPrinter(tag, message.Catalog(cat))}
}

// Lang returns the printer's language.
func (p *Printer) Lang() Lang { return p.lang }

// T returns the message key formatted with args. A key the catalog lacks
// is a programmer error the tests catch; it prints as the key itself.
func (p *Printer) T(key string, args ...any) string {
	if _, ok := messages[key]; !ok {
		return key
	}
	return p.p.Sprintf(key, args...)
}

// Has reports whether key is in the catalog.
func Has(key string) bool { _, ok := messages[key]; return ok }

// Keys returns every message key, sorted.
func Keys() []string {
	out := make([]string, 0, len(messages))
	for k := range messages {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Text returns the raw (unformatted) message of key in l, and whether it
// exists and is non-empty.
func Text(l Lang, key string) (string, bool) {
	m, ok := messages[key]
	if !ok {
		return "", false
	}
	s := m[0]
	if l == ZH {
		s = m[1]
	}
	return s, s != ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
