package figures

import (
	"sort"
	"time"

	"domicile"

	"domicile/law"
)

// The facts the ledger feeds, and so the thresholds it can project.
const (
	FactPIYTD  = "pi_individuals_ytd"
	FactSPIYTD = "sensitive_pi_individuals_ytd"
)

// Crossing is a threshold of the law in force on a day, the year's count
// it applies to, and when that count reaches it at the current rate.
type Crossing struct {
	Fact      string `json:"fact"`
	Threshold int64  `json:"threshold"`
	Rule      string `json:"rule"`
	// What says what changes at the threshold, in the rule set's words.
	What  string `json:"what"`
	Value int64  `json:"value"`
	// Reached is true when Value is at or above Threshold: thresholds
	// read "N or more".
	Reached bool `json:"reached"`
	// Headroom is how many more people the year's count can take before
	// it reaches Threshold: Threshold - Value, and 0 once reached.
	Headroom int64 `json:"headroom"`
	// PerDay is the current rate: Value over the days of the year so
	// far, today included.
	PerDay float64 `json:"per_day"`
	// Date is the day Value reaches Threshold at PerDay (YYYY-MM-DD); ""
	// when it is reached already, or when at that rate it is not reached
	// before the year ends (the counts start again on 1 January).
	Date string `json:"date,omitempty"`
}

// Crossings returns the thresholds on the year-to-date counts pi and spi
// ([PeopleYTD]) in force on today (a calendar day of the source
// jurisdiction, at midnight UTC), in order of fact then threshold, each
// with the day it is reached at the year's rate so far.
func Crossings(ths []law.Threshold, today time.Time, pi, spi int64) []Crossing {
	day := today.Format(time.DateOnly)
	var out []Crossing
	for _, t := range ths {
		var v int64
		switch t.Fact {
		case FactPIYTD:
			v = pi
		case FactSPIYTD:
			v = spi
		default:
			continue
		}
		if day < t.EffectiveFrom || (t.EffectiveUntil != "" && day > t.EffectiveUntil) {
			continue
		}
		c := Crossing{Fact: t.Fact, Threshold: t.Value, Rule: t.Rule, What: t.Crossing, Value: v, Reached: v >= t.Value, Headroom: Headroom(t.Value, v)}
		d := int64(today.YearDay())
		c.PerDay = float64(v) / float64(d)
		if !c.Reached && v > 0 {
			// The count reaches t.Value on day n of the year, n the least
			// with v/d*n ≥ t.Value.
			n := (t.Value*d + v - 1) / v
			jan1 := time.Date(today.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
			if at := jan1.AddDate(0, 0, int(n-1)); at.Year() == today.Year() {
				c.Date = at.Format(time.DateOnly)
			}
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Fact != out[j].Fact {
			return out[i].Fact < out[j].Fact
		}
		return out[i].Threshold < out[j].Threshold
	})
	return out
}

// Headroom is how many more people a count of value can take before it
// reaches threshold (thresholds read "N or more"): threshold - value, and
// 0 when value has reached it.
func Headroom(threshold, value int64) int64 { return max(threshold-value, 0) }

// Next returns, for each fact, the lowest threshold of cs not yet
// reached: what the count moves toward.
func Next(cs []Crossing) []Crossing {
	var out []Crossing
	seen := map[string]bool{}
	for _, c := range cs {
		if c.Reached || seen[c.Fact] {
			continue
		}
		seen[c.Fact] = true
		out = append(out, c)
	}
	return out
}

// Outlook is an entity's year so far for one source jurisdiction, from
// the ledger, and what the law engine makes of it: the figures a change
// plan's impact report (and a console) show.
type Outlook struct {
	Entity string                `json:"entity"`
	Year   int                   `json:"year"`
	Source domicile.Jurisdiction `json:"source"`
	// AsOf is the day (in the source's calendar) the counts and the law
	// are taken on.
	AsOf string `json:"as_of"`
	// People and SensitivePeople are [PeopleYTD].
	People          int64 `json:"people"`
	SensitivePeople int64 `json:"sensitive_people"`
	// Law is the mechanism the law engine requires, on these counts, for
	// a further transfer of personal information abroad ("" when the
	// engine decides none).
	Law string `json:"law_mechanism"`
	// Rule is the rule that decided Law.
	Rule      string     `json:"rule,omitempty"`
	Crossings []Crossing `json:"crossings"`
}
