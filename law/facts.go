package law

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Facts maps fact names to values: bool, int64 or string, as the vocabulary
// declares. A fact that is absent takes its default.
type Facts map[string]any

// InputError reports bad input. Field names the offending fact or inventory
// field (for example "pi_individuals_ytd" or "flows[1].destination").
// Every error about bad input that this package returns is, or wraps, an
// *InputError; any other error is internal.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return "law: " + e.Message
	}
	return "law: " + e.Field + ": " + e.Message
}

func inputErr(field, format string, args ...any) *InputError {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Warning is a remark that does not stop an assessment.
type Warning struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Warning codes.
const (
	WarnHeadroom          = "headroom"           // a count is at 80% or more of a threshold
	WarnUnassignedCountry = "unassigned_country" // a well-formed country code that ISO 3166-1 does not assign
	WarnUpperBound        = "upper_bound"        // a count is the sum over flows, an upper bound of distinct people
	WarnCoverage          = "coverage"           // the date is outside what the rules model well
	WarnStorageAbroad     = "storage_abroad"     // a system abroad holds data with no flow declared for it
	WarnDeclaredCount     = "declared_count"     // a declared distinct count exceeds the sum of the flows
	WarnNoRules           = "no_rules"           // a leg of a flow leaves a jurisdiction whose rules are not modelled
)

func parseDate(s string) (time.Time, error) {
	return time.Parse(time.DateOnly, s)
}

// dateOf returns the calendar day of t, in t's own location, as YYYY-MM-DD.
func dateOf(t time.Time) string {
	return t.Format(time.DateOnly)
}

// checkFact validates one declared value against its definition and returns
// it normalised (ints as int64). field names it in errors.
func (e *Engine) checkFact(field, name string, val any) (any, *Warning, error) {
	def, ok := e.factDefs[name]
	if !ok {
		return nil, nil, inputErr(field, "unknown fact %q", name)
	}
	switch def.Type {
	case TypeBool:
		b, ok := val.(bool)
		if !ok {
			return nil, nil, inputErr(field, "must be a boolean (true or false)")
		}
		return b, nil, nil
	case TypeInt:
		var n int64
		switch x := val.(type) {
		case int64:
			n = x
		case int:
			n = int64(x)
		case int32:
			n = int64(x)
		default:
			return nil, nil, inputErr(field, "must be an integer")
		}
		if n < 0 {
			return nil, nil, inputErr(field, "must not be negative")
		}
		return n, nil, nil
	case TypeEnum:
		s, ok := val.(string)
		if !ok {
			return nil, nil, inputErr(field, "must be a string, one of %s", strings.Join(def.Values, ", "))
		}
		if !contains(def.Values, s) {
			return nil, nil, inputErr(field, "must be one of %s", strings.Join(def.Values, ", "))
		}
		return s, nil, nil
	case TypeCountry:
		s, ok := val.(string)
		if !ok {
			return nil, nil, inputErr(field, "must be a string")
		}
		w, err := checkCountry(field, s)
		return s, w, err
	default: // TypeString
		s, ok := val.(string)
		if !ok {
			return nil, nil, inputErr(field, "must be a string")
		}
		return s, nil, nil
	}
}

// checkCountry accepts two capital letters; a code ISO 3166-1 does not
// assign (nor the EU bloc) is a warning, anything else an error.
func checkCountry(field, s string) (*Warning, error) {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return nil, inputErr(field, "country code must be two capital letters (ISO 3166-1 alpha-2)")
	}
	if !assignedCountries[s] {
		return &Warning{Code: WarnUnassignedCountry, Field: field,
			Message: fmt.Sprintf("%s is not an assigned ISO 3166-1 code; rules keyed to specific countries will not recognise it", s)}, nil
	}
	return nil, nil
}

// subsetPairs lists counts that cannot exceed another count when both are declared.
var subsetPairs = [][2]string{
	{"sensitive_pi_individuals_ytd", "pi_individuals_total"},
	{"sensitive_pi_individuals_since_prev_year", "pi_individuals_since_prev_year"},
	{"sensitive_pi_individuals_since_prev_year", "pi_individuals_total"},
	{"incident_sensitive_individuals_affected", "incident_individuals_affected"},
}

// checkCombinations rejects impossible combinations among declared facts
// only: a default never causes such an error. prefix qualifies field names.
func checkCombinations(prefix string, f Facts) error {
	for _, p := range subsetPairs {
		part, ok1 := f[p[0]].(int64)
		whole, ok2 := f[p[1]].(int64)
		if ok1 && ok2 && part > whole {
			return inputErr(prefix+p[0], "%d is more than the declared %s (%d)", part, p[1], whole)
		}
	}
	return nil
}

// ValidateFacts checks declared facts against the vocabulary and returns a
// normalised copy (ints as int64) and any warnings. Errors are *InputError.
func (e *Engine) ValidateFacts(f Facts) (Facts, []Warning, error) {
	out := make(Facts, len(f))
	var warns []Warning
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, w, err := e.checkFact(k, k, f[k])
		if err != nil {
			return nil, nil, err
		}
		if w != nil {
			warns = append(warns, *w)
		}
		out[k] = v
	}
	if err := checkCombinations("", out); err != nil {
		return nil, nil, err
	}
	return out, warns, nil
}

// assignedCountries holds the ISO 3166-1 alpha-2 codes officially assigned,
// plus EU, the bloc the engine treats as a jurisdiction.
var assignedCountries = func() map[string]bool {
	const codes = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
		"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
		"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
		"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT " +
		"MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
		"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG " +
		"UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW EU"
	m := map[string]bool{}
	for _, c := range strings.Fields(codes) {
		m[c] = true
	}
	return m
}()
