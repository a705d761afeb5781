package law

import (
	"embed"
	"fmt"
	"path"
	"regexp"
	"sort"
)

//go:embed rules/*.yaml
var ruleFS embed.FS

// Confidence says how well a rule is sourced.
type Confidence string

// Confidence levels. Findings resting on a rule that is not confirmed are
// flagged for legal review.
const (
	Confirmed   Confidence = "confirmed"   // checked against primary text or a verbatim reproduction
	Secondary   Confidence = "secondary"   // checked only against law-firm or regulator summaries
	Unconfirmed Confidence = "unconfirmed" // not verified in the sources consulted
)

// Effects are what a rule produces when it fires.
type Effects struct {
	Mechanism   string   `yaml:"mechanism,omitempty" json:"mechanism,omitempty"`
	Obligations []string `yaml:"obligations,omitempty" json:"obligations,omitempty"`
}

// Rule is one rule of a rule document.
type Rule struct {
	ID             string  `yaml:"id" json:"id"`
	Jurisdiction   string  `yaml:"jurisdiction" json:"jurisdiction"`
	Topic          string  `yaml:"topic" json:"topic"`
	Instrument     string  `yaml:"instrument" json:"instrument"`
	Article        string  `yaml:"article" json:"article"`
	EffectiveFrom  string  `yaml:"effective_from" json:"effective_from"`
	EffectiveUntil string  `yaml:"effective_until,omitempty" json:"effective_until,omitempty"`
	Condition      string  `yaml:"condition" json:"condition"`
	Consequence    string  `yaml:"consequence" json:"consequence"`
	Effects        Effects `yaml:"effects" json:"effects"`
	Deadline       string  `yaml:"deadline,omitempty" json:"deadline,omitempty"`
	// Due is the deadline in a form reports can order by ("10wd", "4h",
	// "before"; see due.go). It needs a Deadline that says it in words.
	Due        string     `yaml:"due,omitempty" json:"due,omitempty"`
	Penalty    string     `yaml:"penalty,omitempty" json:"penalty,omitempty"`
	Confidence Confidence `yaml:"confidence" json:"confidence"`
	Sources    []string   `yaml:"sources" json:"sources"`
	Note       string     `yaml:"note,omitempty" json:"note,omitempty"`

	// Document is the rule document the rule came from (e.g. "cn_pipl.yaml").
	Document string `yaml:"-" json:"document"`
}

// Citation is the rule's instrument and article, as a reader cites it.
func (r *Rule) Citation() string {
	return r.Instrument + ", " + r.Article
}

type ruleDoc struct {
	Rules []Rule `yaml:"rules"`
}

var (
	ruleIDRE       = regexp.MustCompile(`^[A-Z]{2}(\.[A-Za-z0-9-]+)+$`)
	jurisdictionRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// loadRules reads every rules/*.yaml document in name order and checks the
// parts that need no expression engine: ids, dates, effects, sources.
func loadRules(files map[string][]byte, v *Vocabulary) ([]Rule, error) {
	var names []string
	for n := range files {
		if ok, _ := path.Match("rules/*.yaml", n); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	mechs := map[string]bool{}
	for _, m := range v.Effects.Mechanisms {
		mechs[m] = true
	}
	obls := map[string]bool{}
	for _, o := range v.Effects.Obligations {
		obls[o] = true
	}
	seen := map[string]string{}
	var all []Rule
	for _, name := range names {
		data := files[name]
		var doc ruleDoc
		if err := decodeStrict(data, &doc); err != nil {
			return nil, fmt.Errorf("law: %s: %v", name, err)
		}
		if len(doc.Rules) == 0 {
			return nil, fmt.Errorf("law: %s: no rules", name)
		}
		for _, r := range doc.Rules {
			r.Document = path.Base(name)
			bad := func(format string, args ...any) error {
				return fmt.Errorf("law: %s: rule %s: %s", r.Document, r.ID, fmt.Sprintf(format, args...))
			}
			if !ruleIDRE.MatchString(r.ID) {
				return nil, bad("malformed id")
			}
			if prev, dup := seen[r.ID]; dup {
				return nil, bad("duplicate id (also in %s)", prev)
			}
			seen[r.ID] = r.Document
			if !jurisdictionRE.MatchString(r.Jurisdiction) {
				return nil, bad("malformed jurisdiction %q", r.Jurisdiction)
			}
			if r.Instrument == "" || r.Article == "" || r.Consequence == "" || r.Condition == "" {
				return nil, bad("instrument, article, condition and consequence are required")
			}
			if !validDate(r.EffectiveFrom) {
				return nil, bad("effective_from %q is not YYYY-MM-DD", r.EffectiveFrom)
			}
			if r.EffectiveUntil != "" && (!validDate(r.EffectiveUntil) || r.EffectiveUntil < r.EffectiveFrom) {
				return nil, bad("effective_until %q is not a date on or after effective_from", r.EffectiveUntil)
			}
			if r.Effects.Mechanism != "" && !mechs[r.Effects.Mechanism] {
				return nil, bad("mechanism %q not in the vocabulary", r.Effects.Mechanism)
			}
			for _, o := range r.Effects.Obligations {
				if !obls[o] {
					return nil, bad("obligation %q not in the vocabulary", o)
				}
			}
			if _, ok := dueMinutes(r.Due); !ok {
				return nil, bad("due %q: want before, immediately, or 1 to 9999 followed by h, d, wd, m or y", r.Due)
			}
			if r.Due != "" && r.Deadline == "" {
				return nil, bad("due %q without a deadline that says it in words", r.Due)
			}
			switch r.Confidence {
			case Confirmed, Secondary, Unconfirmed:
			default:
				return nil, bad("confidence %q", r.Confidence)
			}
			if len(r.Sources) == 0 {
				return nil, bad("no sources")
			}
			for _, s := range r.Sources {
				if _, ok := v.Sources[s]; !ok {
					return nil, bad("unknown source %q", s)
				}
			}
			all = append(all, r)
		}
	}
	return all, nil
}
