package deploy

import (
	"errors"
	"strings"
	"testing"

	"domicile"
)

func TestDefault(t *testing.T) {
	d := Default()
	for j, want := range map[domicile.Jurisdiction]string{"CN": "cn-gz1", "DE": "eu-fra1", "FR": "eu-fra1", "EU": "eu-fra1", "US": "us-east1", "HK": "us-east1", "MO": "us-east1", "TW": "us-east1", "BR": "us-east1"} {
		got, err := d.Place(j, "")
		if err != nil || got != want {
			t.Errorf("Place(%s) = %q, %v, want %q", j, got, err, want)
		}
	}
	if _, err := d.Place("CN", "us-east1"); domicile.ErrorCode(err) != domicile.EResidency {
		t.Errorf("Place(CN, us-east1) = %v, want residency-forbidden", err)
	}
	k := d.Kind("profile")
	if k == nil || k.Fields["id_number"] != domicile.SpecificIdentity || k.Fields["religion"] != domicile.ReligiousBelief {
		t.Fatalf("profile kind = %+v", k)
	}
	if d.Kind("location").Fields["lat"] != domicile.Whereabouts || !d.HasPurpose("marketing") {
		t.Fatal("location kind or purposes wrong")
	}
}

// TestParseRefusesContradictions checks that each contradiction is refused
// with a message naming its line.
func TestParseRefusesContradictions(t *testing.T) {
	base := "cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\n"
	tests := []struct {
		name, doc string
		line      int
		want      string
	}{
		{"unknown cell in policy", base + "policy:\n  CN: [cn-gz1, mars-1]\n", 6, `unknown cell "mars-1"`},
		{"unknown jurisdiction in policy", base + "policy:\n  XX: [cn-gz1]\n", 6, `"XX" is not an assigned`},
		{"lower-case jurisdiction", base + "policy:\n  cn: [cn-gz1]\n", 6, "upper-case"},
		{"unknown cell jurisdiction", "cells:\n  - id: a\n    jurisdiction: ZZ\n    operator: Op\npolicy:\n  \"*\": [a]\n", 3, `"ZZ"`},
		{"duplicate cell", base + "  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\npolicy:\n  CN: [cn-gz1]\n", 5, "declared twice"},
		{"no operator", "cells:\n  - id: a\n    jurisdiction: CN\npolicy:\n  CN: [a]\n", 2, "operator"},
		{"bad category", base + "policy:\n  CN: [cn-gz1]\nkinds:\n  profile:\n    name: gossip\n", 9, `unknown data category "gossip"`},
		{"unknown key", base + "policy:\n  CN: [cn-gz1]\nregions: 3\n", 7, `unknown key "regions"`},
		{"duplicate policy", base + "policy:\n  CN: [cn-gz1]\n  CN: [cn-gz1]\n", 7, "twice"},
		{"empty policy list", base + "policy:\n  CN: []\n", 6, "non-empty"},
		{"bad store", "cells:\n  - id: a\n    jurisdiction: CN\n    operator: Op\n    store: {kind: mongo}\npolicy:\n  CN: [a]\n", 2, "store kind"},
		{"no policy", base, 1, "no policy"},
		{"malformed YAML", "cells: [\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Parse = %v, want a LineError", err)
			}
			if tt.line > 0 && le.Line != tt.line {
				t.Errorf("Parse error at line %d (%v), want line %d", le.Line, err, tt.line)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error %q lacks %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte("cells:\n  - id: a\n    jurisdiction: CN\n    operator: Op\npolicy:\n  CN: [a]\n"))
	f.Add([]byte("policy: {EU: [x]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses is consistent: every policy cell exists.
		for _, r := range d.Policy {
			for _, c := range r.Cells {
				if d.Cell(c) == nil {
					t.Fatalf("policy names unknown cell %q", c)
				}
			}
		}
	})
}
