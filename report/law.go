package report

import (
	"sort"
	"strings"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
	"domicile/law"
)

// ReachLine says who can reach a cell's data and on what ground.
type ReachLine struct {
	// Who is "operator", "prc-authorities", "foreign-authorities",
	// "local-authorities" or "key-holder".
	Who   string    `json:"who"`
	Text  string    `json:"text"`
	Rules []RuleRef `json:"rules,omitempty"`
}

// Custody says who holds the key that unwraps a subject's data key.
type Custody struct {
	Kind   string `json:"kind"`
	Holder string `json:"holder"`
	Text   string `json:"text"`
}

// lawSource maps a cell's jurisdiction to the law engine's
// source_jurisdiction, or "" when the rule set has no entry for it.
func lawSource(j domicile.Jurisdiction) string {
	switch {
	case j.InEU():
		return "EU"
	}
	switch j {
	case "CN", "HK", "MO", "RU", "VN", "ID", "IN", "SA", "TR", "KZ", "NG", "US":
		return string(j)
	}
	return ""
}

// KeyCustody describes who holds the key-encryption key of a cell with
// this declaration. Entity is the business (the deployment's declared
// entity).
func KeyCustody(p *i18n.Printer, cc domicile.CellConfig, entity string) Custody {
	kind := cc.Custody.Kind
	if kind == "" {
		kind = "file"
	}
	if entity == "" {
		entity = p.T("entity.unnamed")
	}
	switch kind {
	case "pkcs11":
		return Custody{Kind: kind, Holder: cc.Operator, Text: p.T("custody.pkcs11", cc.Operator)}
	case "keyd":
		return Custody{Kind: kind, Holder: entity, Text: p.T("custody.keyd", entity, cc.Operator)}
	}
	return Custody{Kind: "file", Holder: cc.Operator, Text: p.T("custody.file", cc.Operator)}
}

func ruleRef(p *i18n.Printer, f law.Finding) RuleRef {
	sum := f.Consequence
	if i18n.Has("rule." + f.Rule) {
		sum = p.T("rule." + f.Rule)
	} else if p.Lang() == i18n.ZH {
		sum = p.T("rule.english-original", f.Consequence)
	}
	return RuleRef{ID: f.Rule, Citation: f.Citation, Summary: sum}
}

// findingsWith returns the findings of a decision whose obligations
// include one of codes.
func findingsWith(e *law.Engine, facts law.Facts, asOf time.Time, codes ...string) []law.Finding {
	rep, err := e.Decide(facts, asOf)
	if err != nil {
		return nil
	}
	var out []law.Finding
	for _, f := range rep.Findings {
		for _, o := range f.Obligations {
			if contains(codes, o) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Reach says who can reach the data held in cell cc under the law of its
// jurisdiction, as of asOf, from the law engine's rules. It never says
// "no one": where the rule set is silent, it says so.
func Reach(p *i18n.Printer, e *law.Engine, cc domicile.CellConfig, entity string, asOf time.Time) []ReachLine {
	cust := KeyCustody(p, cc, entity)
	out := []ReachLine{{Who: "operator", Text: p.T("reach.operator", cc.Operator, string(cc.Jurisdiction))}}
	if cust.Kind == "keyd" {
		out = append(out, ReachLine{Who: "key-holder", Text: p.T("reach.keyholder", cust.Holder)})
	}
	src := lawSource(cc.Jurisdiction)
	if e == nil || src == "" {
		return append(out, ReachLine{Who: "local-authorities", Text: p.T("reach.local.unknown", string(cc.Jurisdiction))})
	}
	if src == "CN" {
		seen := map[string]bool{}
		var refs []RuleRef
		for _, req := range []string{"public_security", "state_security", "intelligence", "counter_terrorism"} {
			facts := law.Facts{"source_jurisdiction": "CN", "prc_authority_request": req, "is_telecom_or_internet_provider": true}
			for _, f := range findingsWith(e, facts, asOf, "cooperate_with_prc_authority", "provide_tech_interface_decryption") {
				if !seen[f.Rule] {
					seen[f.Rule] = true
					refs = append(refs, ruleRef(p, f))
				}
			}
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].ID < refs[j].ID })
		out = append(out, ReachLine{Who: "prc-authorities", Text: p.T("reach.prc", cc.Operator), Rules: refs})
		var frefs []RuleRef
		for _, f := range findingsWith(e, law.Facts{"source_jurisdiction": "CN", "foreign_authority_request": true}, asOf, "route_via_prc_authority") {
			frefs = append(frefs, ruleRef(p, f))
		}
		sort.Slice(frefs, func(i, j int) bool { return frefs[i].ID < frefs[j].ID })
		return append(out, ReachLine{Who: "foreign-authorities", Text: p.T("reach.foreign.cn"), Rules: frefs})
	}
	out = append(out, ReachLine{Who: "local-authorities", Text: p.T("reach.local.unknown", string(cc.Jurisdiction))})
	rep, err := e.Decide(law.Facts{"source_jurisdiction": src, "foreign_authority_request": true, "processor_in_prc": false}, asOf)
	if err == nil {
		var refs []RuleRef
		for _, f := range rep.Findings {
			if f.Jurisdiction == src || strings.HasPrefix(f.Rule, src+".") {
				refs = append(refs, ruleRef(p, f))
			}
		}
		if len(refs) > 0 {
			out = append(out, ReachLine{Who: "foreign-authorities", Text: p.T("reach.foreign.other", string(cc.Jurisdiction)), Rules: refs})
		}
	}
	return out
}

// Action is one thing the business must do, from a rule that fired.
type Action struct {
	Rule        string   `json:"rule"`
	Citation    string   `json:"citation"`
	Obligations []string `json:"obligations"`
	Text        string   `json:"text"`
	Deadline    string   `json:"deadline,omitempty"`
	Confidence  string   `json:"confidence"`
}

// obligationOrder ranks obligations: what must happen before the change
// comes first.
var obligationOrder = []string{"route_via_prc_authority", "pipia", "separate_consent", "notice_art17", "retain_sharing_records_3y", "retain_pipia_3y", "cooperate_with_prc_authority", "flag_unconfirmed"}

func obligationRank(obs []string) int {
	best := len(obligationOrder)
	for _, o := range obs {
		for i, x := range obligationOrder {
			if x == o && i < best {
				best = i
			}
		}
	}
	return best
}

// ChangeActions returns what the law engine says a business must do
// because of a change: the findings that fire with the change's facts and
// not without them, plus the duty to tell people of a change (the rules
// with notice obligations). The facts of both are taken from the cell's
// jurisdiction and the deployment's declarations.
func ChangeActions(p *i18n.Printer, e *law.Engine, j domicile.Jurisdiction, decl domicile.Declarations, change law.Facts, asOf time.Time) []Action {
	src := lawSource(j)
	if e == nil || src == "" {
		return nil
	}
	base := law.Facts{"source_jurisdiction": src, "is_ciio": decl.CIIO, "has_important_data": decl.ImportantData}
	if src != "CN" {
		base["processor_in_prc"] = false
	}
	with := law.Facts{}
	for k, v := range base {
		with[k] = v
	}
	for k, v := range change {
		with[k] = v
	}
	before, err1 := e.Decide(base, asOf)
	after, err2 := e.Decide(with, asOf)
	if err1 != nil || err2 != nil {
		return nil
	}
	had := map[string]bool{}
	for _, f := range before.Findings {
		had[f.Rule] = true
	}
	var out []Action
	for _, f := range after.Findings {
		if len(f.Obligations) == 0 {
			continue
		}
		if had[f.Rule] && !contains(f.Obligations, "notice_art17") {
			continue
		}
		out = append(out, Action{Rule: f.Rule, Citation: f.Citation, Obligations: f.Obligations, Text: ruleRef(p, f).Summary, Deadline: f.Deadline, Confidence: string(f.Confidence)})
	}
	sort.SliceStable(out, func(i, k int) bool {
		ri, rk := obligationRank(out[i].Obligations), obligationRank(out[k].Obligations)
		if ri != rk {
			return ri < rk
		}
		return out[i].Rule < out[k].Rule
	})
	return out
}

// MechanismActions returns what the law engine says a business must do
// before data leaves under a newly declared transfer mechanism: for each
// destination, the findings that fire for a transfer of the mechanism's
// categories from its source (as [ChangeActions] computes them), once per
// rule. The facts are the mechanism's own: its categories (personal,
// sensitive, important data), the recipient's country, and what its kind
// stands for (an exemption's ground, taken as necessary, as the business
// relies on it; an EU safeguard or adequacy), and the year's counts of
// people from the transfer ledger (o, the live assessment's outlook of the
// mechanism's source): a plan suggests what the law requires on the
// counts the ledger holds. With o nil (the ledger was not read) the
// counts are not declared, and the report says so.
func MechanismActions(p *i18n.Printer, e *law.Engine, m domicile.MechanismDecl, decl domicile.Declarations, asOf time.Time, o *figures.Outlook) []Action {
	var out []Action
	seen := map[string]bool{}
	for _, dest := range m.Destinations {
		facts := mechanismFacts(m, dest, decl)
		ledgerFacts(facts, o)
		for _, a := range ChangeActions(p, e, m.Source, decl, facts, asOf) {
			if !seen[a.Rule] {
				seen[a.Rule] = true
				out = append(out, a)
			}
		}
	}
	sortActions(out)
	return out
}

// mechanismFacts are the law engine's facts of a transfer under m to dest.
func mechanismFacts(m domicile.MechanismDecl, dest domicile.Jurisdiction, decl domicile.Declarations) law.Facts {
	pi, spi, imp := false, false, decl.ImportantData
	for _, c := range m.Categories {
		switch {
		case c == domicile.ImportantData:
			imp = true
		case c == domicile.NonPersonal:
		default:
			pi = true
			spi = spi || c.Sensitive()
		}
	}
	f := law.Facts{
		"transfers_abroad":               true,
		"transfer_contains_pi":           pi,
		"transfer_contains_sensitive_pi": spi,
		"processes_sensitive_pi":         spi,
		"has_important_data":             imp,
	}
	if dest != domicile.EU {
		f["recipient_country"] = string(dest)
	}
	ground := func(purpose string) {
		f["transfer_purpose"] = purpose
		f["transfer_necessary"] = true
	}
	switch m.Kind {
	case "exemption_contract":
		ground("contract_with_individual")
	case "exemption_hr":
		ground("cross_border_hr")
		f["hr_rules_lawful"] = true
	case "exemption_emergency":
		ground("emergency")
	case "exemption_legal_duty":
		ground("legal_duty")
	case "exemption_transit":
		ground("foreign_origin_transit")
	case "exemption_ftz":
		f["in_ftz"] = true
	case "gba_standard_contract":
		f["in_gba"] = true
	case "adequacy":
		f["eu_adequacy_recipient"] = true
	case "sccs", "bcrs":
		f["eu_safeguard"] = m.Kind
	}
	return f
}
