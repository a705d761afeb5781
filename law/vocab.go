package law

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"sort"

	"go.yaml.in/yaml/v3"
)

//go:embed vocabulary.yaml
var vocabularyYAML []byte

// FactType is the type of a fact in the vocabulary.
type FactType string

// Fact types. Enum and country facts are strings with a restricted set of values.
const (
	TypeBool    FactType = "bool"
	TypeInt     FactType = "int"
	TypeEnum    FactType = "enum"
	TypeString  FactType = "string"
	TypeCountry FactType = "country"
)

// FactDef declares one fact: its name, type, default and meaning.
type FactDef struct {
	Name    string   `yaml:"name" json:"name"`
	Type    FactType `yaml:"type" json:"type"`
	Default any      `yaml:"default" json:"default"`
	Values  []string `yaml:"values,omitempty" json:"values,omitempty"`
	Meaning string   `yaml:"meaning" json:"meaning"`
}

// DerivedVersion is one dated definition of a derived predicate.
type DerivedVersion struct {
	Label          string `yaml:"label" json:"label"`
	EffectiveFrom  string `yaml:"effective_from" json:"effective_from"`
	EffectiveUntil string `yaml:"effective_until,omitempty" json:"effective_until,omitempty"`
	Expr           string `yaml:"expr" json:"expr"`
}

// Derived is a named boolean predicate over facts and earlier predicates.
// On a given day the version in force is used; with none in force it is false.
type Derived struct {
	Name     string           `yaml:"name" json:"name"`
	Meaning  string           `yaml:"meaning" json:"meaning"`
	Versions []DerivedVersion `yaml:"versions" json:"versions"`
}

// Threshold is a count the report watches for headroom.
type Threshold struct {
	Fact           string `yaml:"fact" json:"fact"`
	Value          int64  `yaml:"value" json:"value"`
	Rule           string `yaml:"rule" json:"rule"`
	EffectiveFrom  string `yaml:"effective_from" json:"effective_from"`
	EffectiveUntil string `yaml:"effective_until,omitempty" json:"effective_until,omitempty"`
	Crossing       string `yaml:"crossing" json:"crossing"`
}

// Vocabulary is the language rules are written in.
type Vocabulary struct {
	SchemaVersion int         `yaml:"schema_version"`
	Version       string      `yaml:"version"` // the rule set's version, e.g. "2026-12-07"
	Facts         []FactDef   `yaml:"facts"`
	Derived       []Derived   `yaml:"derived"`
	Thresholds    []Threshold `yaml:"thresholds"`
	Effects       struct {
		Mechanisms  []string `yaml:"mechanisms"`
		Obligations []string `yaml:"obligations"`
	} `yaml:"effects"`
	Sources map[string]string `yaml:"sources"`
	// Regimes maps a value of source_jurisdiction to the other codes where
	// its rules govern data (the EU's to its member states). A value of
	// source_jurisdiction always governs its own code.
	Regimes map[string]Regime `yaml:"regimes,omitempty"`
}

// Regime lists the jurisdictions, besides its own code, whose data a value
// of source_jurisdiction governs.
type Regime struct {
	Members []string `yaml:"members"`
	Meaning string   `yaml:"meaning"`
}

var (
	dateRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// validDate reports whether s is a real calendar date written YYYY-MM-DD.
func validDate(s string) bool {
	if !dateRE.MatchString(s) {
		return false
	}
	_, err := parseDate(s)
	return err == nil
}

// inForce reports whether date lies in [from, until]; until "" is open.
// Dates are YYYY-MM-DD strings, which order correctly as strings.
func inForce(date, from, until string) bool {
	return from <= date && (until == "" || date <= until)
}

func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func loadVocabulary(data []byte) (*Vocabulary, error) {
	var v Vocabulary
	if err := decodeStrict(data, &v); err != nil {
		return nil, fmt.Errorf("law: vocabulary: %v", err)
	}
	if v.SchemaVersion != 1 {
		return nil, fmt.Errorf("law: vocabulary: unsupported schema_version %d", v.SchemaVersion)
	}
	if !versionRE.MatchString(v.Version) {
		return nil, fmt.Errorf("law: vocabulary: version %q: want 1 to 64 letters, digits, dots, dashes or underscores", v.Version)
	}
	seen := map[string]bool{}
	for i := range v.Facts {
		f := &v.Facts[i]
		if f.Name == "" || seen[f.Name] {
			return nil, fmt.Errorf("law: vocabulary: fact %q empty or duplicated", f.Name)
		}
		seen[f.Name] = true
		switch f.Type {
		case TypeBool:
			if _, ok := f.Default.(bool); !ok {
				return nil, fmt.Errorf("law: vocabulary: fact %s: default must be bool", f.Name)
			}
		case TypeInt:
			n, ok := f.Default.(int)
			if !ok {
				return nil, fmt.Errorf("law: vocabulary: fact %s: default must be int", f.Name)
			}
			f.Default = int64(n)
		case TypeEnum, TypeString, TypeCountry:
			s, ok := f.Default.(string)
			if !ok {
				return nil, fmt.Errorf("law: vocabulary: fact %s: default must be string", f.Name)
			}
			if f.Type == TypeEnum && !contains(f.Values, s) {
				return nil, fmt.Errorf("law: vocabulary: fact %s: default %q not among values", f.Name, s)
			}
		default:
			return nil, fmt.Errorf("law: vocabulary: fact %s: unknown type %q", f.Name, f.Type)
		}
	}
	for _, d := range v.Derived {
		if d.Name == "" || seen[d.Name] {
			return nil, fmt.Errorf("law: vocabulary: derived %q empty or clashes", d.Name)
		}
		seen[d.Name] = true
		if len(d.Versions) == 0 {
			return nil, fmt.Errorf("law: vocabulary: derived %s has no version", d.Name)
		}
		for i, dv := range d.Versions {
			if !validDate(dv.EffectiveFrom) || (dv.EffectiveUntil != "" && (!validDate(dv.EffectiveUntil) || dv.EffectiveUntil < dv.EffectiveFrom)) {
				return nil, fmt.Errorf("law: vocabulary: derived %s version %d: bad dates", d.Name, i)
			}
			for j := 0; j < i; j++ {
				o := d.Versions[j]
				if overlap(dv.EffectiveFrom, dv.EffectiveUntil, o.EffectiveFrom, o.EffectiveUntil) {
					return nil, fmt.Errorf("law: vocabulary: derived %s: versions %d and %d overlap", d.Name, j, i)
				}
			}
		}
	}
	for _, t := range v.Thresholds {
		if !validDate(t.EffectiveFrom) || (t.EffectiveUntil != "" && !validDate(t.EffectiveUntil)) || t.Value <= 0 {
			return nil, fmt.Errorf("law: vocabulary: threshold %s %d: bad value or dates", t.Fact, t.Value)
		}
	}
	if err := checkRegimes(&v); err != nil {
		return nil, err
	}
	return &v, nil
}

// checkRegimes checks that every regime is a value of source_jurisdiction
// and that no code belongs to two regimes.
func checkRegimes(v *Vocabulary) error {
	if len(v.Regimes) == 0 {
		return nil
	}
	var values []string
	for _, f := range v.Facts {
		if f.Name == "source_jurisdiction" && f.Type == TypeEnum {
			values = f.Values
		}
	}
	owner := map[string]string{}
	for _, k := range sortedKeys(v.Regimes) {
		if !contains(values, k) {
			return fmt.Errorf("law: vocabulary: regime %s is not a value of source_jurisdiction", k)
		}
		for _, m := range v.Regimes[k].Members {
			if !jurisdictionRE.MatchString(m) {
				return fmt.Errorf("law: vocabulary: regime %s: member %q is not two capital letters", k, m)
			}
			if contains(values, m) {
				return fmt.Errorf("law: vocabulary: regime %s: member %s has rules of its own", k, m)
			}
			if o, dup := owner[m]; dup {
				return fmt.Errorf("law: vocabulary: member %s is in regimes %s and %s", m, o, k)
			}
			owner[m] = k
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// overlap reports whether two inclusive date ranges ("" = open end) share a day.
func overlap(f1, u1, f2, u2 string) bool {
	end1, end2 := u1, u2
	if end1 == "" {
		end1 = "9999-12-31"
	}
	if end2 == "" {
		end2 = "9999-12-31"
	}
	return f1 <= end2 && f2 <= end1
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
