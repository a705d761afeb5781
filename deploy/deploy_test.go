package deploy

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"domicile"
	"domicile/checkpoint"
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
		{"bad store", "cells:\n  - id: a\n    jurisdiction: CN\n    operator: Op\n    store: {kind: mongo}\npolicy:\n  CN: [a]\n", 5, "store.kind"},
		{"no policy", base, 1, "no policy"},
		{"url not http", base + "    url: ftp://10.0.0.1:21\npolicy:\n  CN: [cn-gz1]\n", 5, "http:// or https://"},
		{"url with a path", base + "    url: http://10.0.0.1:8701/api\npolicy:\n  CN: [cn-gz1]\n", 5, "only a scheme, a host and a port"},
		{"url with a query", base + "    url: http://10.0.0.1:8701?x=1\npolicy:\n  CN: [cn-gz1]\n", 5, "only a scheme"},
		{"url with a user", base + "    url: http://op:secret@10.0.0.1:8701\npolicy:\n  CN: [cn-gz1]\n", 5, "user or password"},
		{"url without a host", base + "    url: http://:8701\npolicy:\n  CN: [cn-gz1]\n", 5, "names no host"},
		{"url bad port", base + "    url: http://10.0.0.1:99999\npolicy:\n  CN: [cn-gz1]\n", 5, "invalid port"},
		{"url twice", base + "    url: http://10.0.0.1:8701\n  - id: us-east1\n    jurisdiction: US\n    operator: Op\n    url: http://10.0.0.1:8701\npolicy:\n  CN: [cn-gz1]\n", 9, "two cells"},
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

// TestCellURL reads each cell's url, which the router forwards to.
func TestCellURL(t *testing.T) {
	d, err := Parse([]byte("cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\n    url: https://cn.example:8443\n  - id: us-east1\n    jurisdiction: US\n    operator: Op\npolicy:\n  CN: [cn-gz1]\n  \"*\": [us-east1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Cell("cn-gz1").URL; got != "https://cn.example:8443" {
		t.Errorf("cn-gz1 url = %q, want https://cn.example:8443", got)
	}
	if got := d.Cell("us-east1").URL; got != "" {
		t.Errorf("us-east1 url = %q, want none", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte("cells:\n  - id: a\n    jurisdiction: CN\n    operator: Op\npolicy:\n  CN: [a]\n"))
	f.Add([]byte("policy: {EU: [x]}\n"))
	f.Add([]byte(mechBase + "mechanisms:\n  - id: sc-1\n    kind: standard_contract\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n    reference: SC-1\n"))
	f.Add([]byte(mechBase + "mechanisms:\n  - {id: a, kind: sccs, source: EU, destinations: [US], recipients: [\"*\"], purposes: [\"*\"], categories: [personal]}\n  - {id: a, kind: bcrs}\n"))
	f.Add([]byte(witnessBase + "witness_wait: 2s\nwitnesses:\n  - {name: a, url: \"https://w.example/\", key: \"" + wkey1 + "\", required: true, cells: [cn-gz1]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		// Every witness is complete, reachable by URL, and submitted to
		// only by declared cells.
		for _, w := range d.Witnesses {
			if _, err := checkpoint.NewCosignatureVerifier(w.Key); err != nil || checkWitnessURL(w.URL) != "" || w.Name == "" {
				t.Fatalf("witness %+v parsed", w)
			}
			for _, c := range w.Cells {
				if d.Cell(c) == nil {
					t.Fatalf("witness %q names unknown cell %q", w.Name, c)
				}
			}
		}
		// Whatever parses is consistent: every policy cell exists.
		for _, r := range d.Policy {
			for _, c := range r.Cells {
				if d.Cell(c) == nil {
					t.Fatalf("policy names unknown cell %q", c)
				}
			}
		}
		// Every mechanism is complete, of a known kind, and declared once.
		ids := map[string]bool{}
		for _, m := range d.Mechanisms {
			if ids[m.ID] || !m.Kind.Valid() || len(m.Destinations) == 0 || len(m.Recipients) == 0 || len(m.Purposes) == 0 || len(m.Categories) == 0 {
				t.Fatalf("mechanism %+v parsed", m)
			}
			ids[m.ID] = true
			for _, p := range m.Purposes {
				if p != "*" && !d.HasPurpose(p) {
					t.Fatalf("mechanism %q names undeclared purpose %q", m.ID, p)
				}
			}
			for _, c := range m.Categories {
				if _, err := domicile.ParseCategory(string(c)); err != nil {
					t.Fatalf("mechanism %q: %v", m.ID, err)
				}
			}
		}
	})
}

const mechBase = "cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\npolicy:\n  CN: [cn-gz1]\npurposes: [service, support]\n"

func TestParseMechanisms(t *testing.T) {
	doc := mechBase + `mechanisms:
  - id: sc-acme
    kind: standard_contract
    destinations: [US, SG]
    recipients: ["Acme Support Inc."]
    purposes: [support]
    categories: [personal, specific-identity]
    reference: SC-2026-001
  - id: eu-sccs
    kind: sccs
    source: EU
    destinations: [US]
    recipients: ["*"]
    purposes: ["*"]
    categories: [personal]
`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []domicile.MechanismDecl{
		{ID: "sc-acme", Kind: "standard_contract", Source: "CN", Destinations: []domicile.Jurisdiction{"US", "SG"}, Recipients: []string{"Acme Support Inc."},
			Purposes: []string{"support"}, Categories: []domicile.Category{domicile.Personal, domicile.SpecificIdentity}, Reference: "SC-2026-001"},
		{ID: "eu-sccs", Kind: "sccs", Source: "EU", Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"*"}, Purposes: []string{"*"}, Categories: []domicile.Category{domicile.Personal}},
	}
	if diff := cmp.Diff(want, d.Mechanisms); diff != "" {
		t.Errorf("Parse mechanisms (-want +got):\n%s", diff)
	}
	if m := d.Mechanism("eu-sccs"); m == nil || !m.Equal(&want[1]) || m.Equal(&want[0]) {
		t.Errorf("Mechanism(eu-sccs) = %+v", m)
	}
	if len(Default().Mechanisms) != 0 {
		t.Error("the demo deployment declares mechanisms")
	}
}

// TestParseRefusesBadMechanisms checks that each bad mechanism is refused
// with a message naming its line.
func TestParseRefusesBadMechanisms(t *testing.T) {
	// mech builds a one-mechanism file whose mechanism starts at line 9
	// and whose lines after the id line are given.
	mech := func(lines string) string { return mechBase + "mechanisms:\n  - id: m1\n" + lines }
	good := "    kind: standard_contract\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"
	tests := []struct {
		name, doc string
		line      int
		want      string
	}{
		{"unknown kind", mech("    kind: pinky_promise\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 10, `unknown mechanism kind "pinky_promise"`},
		{"bad destination", mech("    kind: sccs\n    source: EU\n    destinations: [US, XX]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 12, `"XX" is not an assigned`},
		{"lower-case destination", mech("    kind: sccs\n    destinations: [us]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 11, "upper-case"},
		{"bad source", mech("    kind: sccs\n    source: Europe\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 11, `"Europe"`},
		{"destination inside source", mech("    kind: sccs\n    source: EU\n    destinations: [DE]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 9, "inside its source"},
		{"unknown category", mech("    kind: standard_contract\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal, gossip]\n"), 14, `unknown data category "gossip"`},
		{"undeclared purpose", mech("    kind: standard_contract\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support, marketing]\n    categories: [personal]\n"), 13, `purpose "marketing" is not a declared purpose`},
		{"duplicate id", mech(good) + "  - id: m1\n" + good, 15, `mechanism "m1" is declared twice`},
		{"bad id", mechBase + "mechanisms:\n  - id: \"no spaces\"\n" + good, 9, "mechanism id"},
		{"no id", mechBase + "mechanisms:\n  - kind: sccs\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n", 9, "no id"},
		{"no kind", mech("    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 9, "has no kind"},
		{"no recipients", mech("    kind: sccs\n    destinations: [US]\n    purposes: [support]\n    categories: [personal]\n"), 9, "no recipients"},
		{"empty categories", mech("    kind: sccs\n    destinations: [US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: []\n"), 14, "non-empty list"},
		{"unknown key", mech(good + "    expires: 2027-01-01\n"), 15, `unknown mechanism key "expires"`},
		{"repeated key", mech(good + "    kind: sccs\n"), 15, "appears twice"},
		{"duplicate destination", mech("    kind: sccs\n    destinations: [US, US]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 11, "listed twice"},
		{"not a list", mechBase + "mechanisms: {id: m1}\n", 8, "must be a list"},
		{"nested list", mech("    kind: sccs\n    destinations: [[US]]\n    recipients: [Acme]\n    purposes: [support]\n    categories: [personal]\n"), 11, "must list strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Parse = %v, want a LineError", err)
			}
			if le.Line != tt.line {
				t.Errorf("Parse error at line %d (%v), want line %d", le.Line, err, tt.line)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error %q lacks %q", err, tt.want)
			}
		})
	}
}

// TestParseObjects checks objects.inline_types: exact media types only,
// never one a browser runs script in.
func TestParseObjects(t *testing.T) {
	base := "cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\npolicy:\n  CN: [cn-gz1]\n"
	d, err := Parse([]byte(base + "objects:\n  inline_types: [image/png, image/jpeg]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Inline("image/png") || !d.Inline("image/jpeg") || d.Inline("text/html") || d.Inline("image/gif") {
		t.Errorf("inline types = %v", d.InlineTypes)
	}
	if Default().Inline("image/png") {
		t.Error("the demo serves objects inline; want every object an attachment")
	}
	for _, bad := range []string{"text/html", "image/svg+xml", "application/atom+xml", "application/pdf", "text/javascript",
		"image/*", "*/*", "Image/PNG", "image/png; q=1", "png", "image/png/x"} {
		doc := base + "objects:\n  inline_types: [\"" + bad + "\"]\n"
		var le *LineError
		if _, err := Parse([]byte(doc)); !errors.As(err, &le) || le.Line != 8 {
			t.Errorf("inline type %q: Parse = %v, want a LineError at line 8", bad, err)
		}
	}
	if _, err := Parse([]byte(base + "objects:\n  inline_types: [image/png, image/png]\n")); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("an inline type listed twice: %v", err)
	}
	if _, err := Parse([]byte(base + "objects:\n  inline: [image/png]\n")); err == nil {
		t.Error("an unknown key under objects was accepted")
	}
}

// TestDocExample parses the example of doc/deployment.md.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../doc/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```yaml\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("doc/deployment.md has no yaml example")
	}
	d, err := Parse([]byte(doc[start+8 : start+8+end]))
	if err != nil {
		t.Fatalf("the example of doc/deployment.md: %v", err)
	}
	if c := d.Cell("cn-gz1"); c == nil || c.Custody.Kind != "keyd" || c.Custody.CertFile == "" || d.Cell("eu-fra1").Custody.PINEnv == "" || !d.Inline("image/jpeg") {
		t.Errorf("the example parsed to %+v", d)
	}
}
