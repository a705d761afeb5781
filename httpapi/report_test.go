package httpapi

import (
	"net/http/httptest"
	"testing"

	"domicile/i18n"
	"domicile/report"
)

func TestDocNegotiation(t *testing.T) {
	tests := []struct {
		name, url, accept, acceptLang string
		lang                          i18n.Lang
		format                        report.Format
		bad                           bool
	}{
		{"defaults", "/x", "", "", i18n.EN, report.JSON, false},
		{"Accept-Language zh", "/x", "", "zh-CN,zh;q=0.9", i18n.ZH, report.JSON, false},
		{"query beats header", "/x?lang=en", "", "zh-CN", i18n.EN, report.JSON, false},
		{"Accept html", "/x", "text/html,application/xhtml+xml", "", i18n.EN, report.HTML, false},
		{"Accept markdown", "/x", "text/markdown", "", i18n.EN, report.Markdown, false},
		{"format query", "/x?format=html&lang=zh-CN", "application/json", "", i18n.ZH, report.HTML, false},
		{"bad lang", "/x?lang=fr", "", "", "", "", true},
		{"bad format", "/x?format=pdf", "", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.url, nil)
			r.Header.Set("Accept", tt.accept)
			r.Header.Set("Accept-Language", tt.acceptLang)
			l, err1 := docLang(r)
			f, err2 := docFormat(r)
			if tt.bad {
				if err1 == nil && err2 == nil {
					t.Errorf("%s: no error", tt.url)
				}
				return
			}
			if err1 != nil || err2 != nil || l != tt.lang || f != tt.format {
				t.Errorf("%s: lang %s format %s (%v, %v), want %s %s", tt.url, l, f, err1, err2, tt.lang, tt.format)
			}
		})
	}
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"/x", true},
		{"/x?from=2026-01-01&to=2026-02-01", true},
		{"/x?from=2026-01-01T00:00:00Z", true},
		{"/x?from=2026-02-01&to=2026-01-01", false},
		{"/x?to=yesterday", false},
	}
	for _, tt := range tests {
		_, err := parsePeriod(httptest.NewRequest("GET", tt.url, nil))
		if (err == nil) != tt.ok {
			t.Errorf("parsePeriod(%s) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}
