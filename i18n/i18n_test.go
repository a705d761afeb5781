package i18n

import (
	"regexp"
	"slices"
	"testing"
)

var verbRE = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)

// verbs returns the fmt verbs of a message, in argument order.
func verbs(s string) []string {
	var out []string
	pos := 0
	for _, m := range verbRE.FindAllStringSubmatch(s, -1) {
		v := m[0]
		if v == "%%" {
			continue
		}
		verb := v[len(v)-1:]
		if m[1] != "" {
			var n int
			for _, c := range m[1][1 : len(m[1])-1] {
				n = n*10 + int(c-'0')
			}
			pos = n - 1
		}
		for len(out) <= pos {
			out = append(out, "")
		}
		out[pos] = verb
		pos++
	}
	return out
}

// TestCatalogComplete fails when any message lacks a translation or when
// the translations take different arguments.
func TestCatalogComplete(t *testing.T) {
	for _, key := range Keys() {
		for _, l := range Langs {
			if _, ok := Text(l, key); !ok {
				t.Errorf("message %q has no %s text", key, l)
			}
		}
		en, _ := Text(EN, key)
		zh, _ := Text(ZH, key)
		if ve, vz := verbs(en), verbs(zh); !slices.Equal(ve, vz) {
			t.Errorf("message %q: en takes %v, zh-CN takes %v", key, ve, vz)
		}
	}
}

func TestPrinter(t *testing.T) {
	tests := []struct {
		lang Lang
		key  string
		args []any
		want string
	}{
		{EN, "impact.affected.total", []any{3}, "3 subjects are affected."},
		{ZH, "impact.affected.total", []any{3}, "共有 3 名主体受影响。"},
		{ZH, "statement.accesses.lead", []any{2, "cn-gz1", int64(9)}, "存储单元 cn-gz1 的日志中共有 2 条事件。每一条都包含在下方规模为 9 的签名检查点中，任何人都可以凭证明核验。"},
		{EN, "no.such.key", nil, "no.such.key"},
	}
	for _, tt := range tests {
		if got := NewPrinter(tt.lang).T(tt.key, tt.args...); got != tt.want {
			t.Errorf("T(%s, %q) = %q, want %q", tt.lang, tt.key, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		header string
		want   Lang
	}{
		{"", EN},
		{"zh-CN,zh;q=0.9,en;q=0.8", ZH},
		{"zh", ZH},
		{"zh-Hans", ZH},
		{"en-US,en;q=0.9", EN},
		{"fr-FR", EN},
		{"de;q=0.9, zh-CN;q=0.8", ZH},
		{"!!!", EN},
	}
	for _, tt := range tests {
		if got := Match(tt.header); got != tt.want {
			t.Errorf("Match(%q) = %s, want %s", tt.header, got, tt.want)
		}
	}
}

func TestParseLang(t *testing.T) {
	for _, s := range []string{"en", "zh-CN", "zh", "zh-Hans"} {
		if _, err := ParseLang(s); err != nil {
			t.Errorf("ParseLang(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "fr", "zh-TW"} {
		if _, err := ParseLang(s); err == nil {
			t.Errorf("ParseLang(%q) succeeded, want an error", s)
		}
	}
}
