package domicile_test

import (
	"strings"
	"testing"

	"domicile"
)

func TestParseJurisdiction(t *testing.T) {
	for _, ok := range []string{"CN", "HK", "MO", "TW", "DE", "US", "EU"} {
		if _, err := domicile.ParseJurisdiction(ok); err != nil {
			t.Errorf("ParseJurisdiction(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{"", "cn", "XX", "CHN", "C", "ZZ", "E U"} {
		if _, err := domicile.ParseJurisdiction(bad); err == nil {
			t.Errorf("ParseJurisdiction(%q) = nil, want an error", bad)
		}
	}
	if domicile.Jurisdiction("CN").InEU() || !domicile.Jurisdiction("DE").InEU() || !domicile.EU.Covers("FR") || domicile.EU.Covers("CH") {
		t.Error("EU membership wrong")
	}
	// Chinese law treats Hong Kong, Macao and Taiwan as outside the mainland.
	for _, j := range []domicile.Jurisdiction{"HK", "MO", "TW"} {
		if domicile.Jurisdiction("CN").Covers(j) {
			t.Errorf("CN covers %s", j)
		}
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"alice", true}, {"李伟", true}, {"user@example.com", true}, {"a b", true},
		{"", false}, {"a/b", false}, {`a\b`, false}, {"a\x00b", false}, {"a\nb", false}, {"\x7f", false},
		{".", false}, {"..", false}, {strings.Repeat("x", 256), true}, {strings.Repeat("x", 257), false}, {"\xff", false},
		// Invisible characters that make two ids look alike, or reorder
		// what is shown.
		{"admin\u202Egpj.exe", false}, {"a\u2066b\u2069", false}, {"a\u200Eb", false}, {"a\u061Cb", false},
		{"al\u200Bice", false}, {"al\u200Dice", false}, {"\uFEFFalice", false}, {"a\u2060b", false}, {"a\u00ADb", false},
		{"a\u2028b", false}, {"a\U000E0041b", false}, {"a\uFFFDb", false},
		// Composed and decomposed forms are both valid here; the edge
		// makes them one id.
		{"jos\u00e9", true}, {"jose\u0301", true},
	}
	for _, tt := range tests {
		err := domicile.ValidateID("id", tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && err.(*domicile.Error).Field != "id" {
			t.Errorf("ValidateID(%q) names field %q", tt.id, err.(*domicile.Error).Field)
		}
	}
}

func TestValidateObjectName(t *testing.T) {
	for name, ok := range map[string]bool{"photo1.jpg": true, "a_b-c.d": true, ".hidden": false, "a/b": false, "": false, "ünï": false, "a b": false, strings.Repeat("n", 255): true, strings.Repeat("n", 256): false} {
		if err := domicile.ValidateObjectName(name); (err == nil) != ok {
			t.Errorf("ValidateObjectName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestKindValidate(t *testing.T) {
	k := &domicile.Kind{Name: "message", Fields: map[string]domicile.Category{"body": domicile.Personal, "to": domicile.Personal}}
	tests := []struct {
		body, field string
		ok          bool
	}{
		{`{"body":"x"}`, "", true},
		{`{}`, "", true},
		{`{"body":"x","zeta":1,"alpha":2}`, "alpha", false},
		{`[1]`, "", false},
		{`"x"`, "", false},
		{`null`, "", false},
	}
	for _, tt := range tests {
		err := k.Validate([]byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%s) = %v, want ok=%v", tt.body, err, tt.ok)
			continue
		}
		if err != nil && err.(*domicile.Error).Field != tt.field {
			t.Errorf("Validate(%s) names %q, want %q", tt.body, err.(*domicile.Error).Field, tt.field)
		}
	}
	if !domicile.Whereabouts.Sensitive() || domicile.Personal.Sensitive() || !domicile.MinorUnder14.Sensitive() {
		t.Error("sensitivity wrong")
	}
}

func TestParseJustification(t *testing.T) {
	tests := []struct {
		in, reason, ref string
		ok              bool
	}{
		{"support TICKET-123", "support", "TICKET-123", true},
		{"lawful-request-foreign MLAT 2026/17", "lawful-request-foreign", "MLAT 2026/17", false}, // a slash is not allowed in a reference
		{"emergency case 7", "emergency", "case 7", true},
		{"support", "", "", false},
		{"curiosity TICKET-1", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		r, ref, err := domicile.ParseJustification(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (string(r) != tt.reason || ref != tt.ref)) {
			t.Errorf("ParseJustification(%q) = %q, %q, %v", tt.in, r, ref, err)
		}
	}
}

func FuzzParseJustification(f *testing.F) {
	f.Add("support TICKET-123")
	f.Add("emergency x")
	f.Fuzz(func(t *testing.T, s string) {
		r, ref, err := domicile.ParseJustification(s)
		if err != nil {
			return
		}
		if ref == "" || r == "" || len(ref) > 128 {
			t.Fatalf("accepted %q as %q %q", s, r, ref)
		}
	})
}
