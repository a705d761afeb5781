package main

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// legsReport is the part of an assessment the multi-jurisdiction test reads.
type legsReport struct {
	Mechanism string `json:"mechanism"`
	Findings  []struct {
		Rule         string `json:"rule"`
		Jurisdiction string `json:"jurisdiction"`
		Due          string `json:"due"`
		Legs         []struct {
			Flow, From, To, Via, Law string
		} `json:"legs"`
	} `json:"findings"`
	ObligationSources []struct {
		Obligation    string   `json:"obligation"`
		Jurisdictions []string `json:"jurisdictions"`
	} `json:"obligation_sources"`
	Flows []struct {
		Name, Source, Storage string
		Access                []string
		Legs                  []struct {
			From, To, Via, Law string
			Assessed           bool
			Fired              []string
		}
	} `json:"flows"`
	Aggregation struct {
		Counters []struct {
			Jurisdiction, Fact string
			Value              int64
		}
	} `json:"aggregation"`
}

// End to end through the real binary: the example inventory whose flows
// touch China, the EU and the US, assessed by `domicile assess` in every
// format and by POST /v1/assess of a running server, which answer the same.
func TestAssessMultiJurisdictionE2E(t *testing.T) {
	const file = "../../examples/inventory/multi-jurisdiction.yaml"
	jsonOut, err := runBinary(t, "assess", "--format", "json", file)
	if err != nil {
		t.Fatal(err)
	}
	var rep legsReport
	if err := json.Unmarshal(jsonOut, &rep); err != nil {
		t.Fatalf("%v\n%s", err, jsonOut)
	}
	if rep.Mechanism != "sc_or_certification" {
		t.Errorf("mechanism %s", rep.Mechanism)
	}
	legOf := map[string]string{}
	jur := map[string]string{}
	for _, f := range rep.Findings {
		jur[f.Rule] = f.Jurisdiction
		for _, l := range f.Legs {
			legOf[f.Rule] += l.Flow + " " + l.From + "->" + l.To + " " + l.Via + " " + l.Law + ";"
		}
	}
	for rule, want := range map[string]string{
		"CN.CBDF.8":  "cn-orders CN->DE access CN;",
		"EU.GDPR.45": "eu-shop EU->US storage EU;",
		"EU.GDPR.46": "eu-shop EU->CN access EU;",
	} {
		if legOf[rule] != want {
			t.Errorf("%s legs %q, want %q", rule, legOf[rule], want)
		}
		if jur[rule] != rule[:2] {
			t.Errorf("%s jurisdiction %q", rule, jur[rule])
		}
	}
	if len(rep.Findings) == 0 || rep.Findings[0].Due != "before" {
		t.Errorf("findings do not start with the earliest deadline: %+v", rep.Findings[0])
	}
	for _, o := range rep.ObligationSources {
		if o.Obligation == "eu_tia" && !slices.Equal(o.Jurisdictions, []string{"EU"}) {
			t.Errorf("eu_tia from %v", o.Jurisdictions)
		}
	}
	if len(rep.Flows) != 2 || len(rep.Flows[1].Legs) != 3 || rep.Flows[1].Legs[2].Via != "onward" || rep.Flows[1].Legs[2].Law != "US" {
		t.Errorf("flows %+v", rep.Flows)
	}
	for _, c := range rep.Aggregation.Counters {
		if c.Jurisdiction == "CN" && c.Value != 150000 {
			t.Errorf("China's count %d: the EU flow's people were added", c.Value)
		}
	}

	for format, want := range map[string][]string{
		"text":     {"CN→DE (access): rules of CN: sc_or_certification by CN.CBDF.8", "EU.GDPR.46  (EU)", "eu_tia [EU]", "legs: eu-shop EU→CN (access)"},
		"markdown": {"### Legs", "| eu-shop | US→CN (onward) | US |", "### EU.GDPR.45 (EU)", "| `eu_sccs` | EU |"},
		"html":     {"<h3>Legs</h3>", "<td>EU→US (storage)</td><td>EU</td>", `<span class="juris">EU</span>`, "Legs: eu-shop EU→CN (access)"},
	} {
		out, err := runBinary(t, "assess", "--format", format, file)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s output lacks %q", format, w)
			}
		}
	}

	s := startServer(t, "")
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := s.do("POST", "/v1/assess", s.Admin, map[string]string{"Content-Type": "application/yaml"}, bytes.NewReader(doc))
	if code != 200 {
		t.Fatalf("POST /v1/assess: %d %s", code, body)
	}
	if !bytes.Equal(body, jsonOut) {
		t.Errorf("POST /v1/assess and domicile assess differ:\n%s", body)
	}
	bad := strings.Replace(string(doc), "access: [DE]", "access: [DE, DE]", 1)
	code, _, body = s.do("POST", "/v1/assess", s.Admin, map[string]string{"Content-Type": "application/yaml"}, strings.NewReader(bad))
	var p struct {
		Status        int
		Field, Detail string
	}
	if err := json.Unmarshal(body, &p); err != nil || code != 400 || p.Field != "flows[0].access[1]" {
		t.Errorf("bad access: %d %s", code, body)
	}
}
