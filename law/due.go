package law

import (
	"math"
	"regexp"
	"strconv"
)

// A rule's due field says, in a form a program can order, how soon the
// business must act once the rule applies: the first period its deadline
// text names, counted from the event that text names (a contract taking
// effect, an incident, reaching a threshold). A validity period counts as
// the time to renew. Periods an authority must keep, and retention
// periods, are not due dates. Reports sort findings by it.
//
//	before       before the processing or transfer starts
//	immediately  at once, no count of hours given
//	N h          N hours
//	N d          N calendar days
//	N wd         N working (business) days
//	N m          N months
//	N y          N years
//
// N is 1 to 9999, written without leading zeros and without a space:
// "10wd", "4h", "3y".
var dueRE = regexp.MustCompile(`^(before|immediately|([1-9][0-9]{0,3})(h|d|wd|m|y))$`)

// noDue orders findings without a due date after every dated one.
const noDue = math.MaxInt64

// dueMinutes returns the sort key of a due value: its length in minutes,
// working days counted as 7/5 of a calendar day, months as 30 days and
// years as 365. "before" is 0 and "immediately" 1; "" is noDue. ok is
// false when s is not a due value.
func dueMinutes(s string) (minutes int64, ok bool) {
	if s == "" {
		return noDue, true
	}
	m := dueRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	switch m[1] {
	case "before":
		return 0, true
	case "immediately":
		return 1, true
	}
	n, _ := strconv.ParseInt(m[2], 10, 64)
	const day = 24 * 60
	switch m[3] {
	case "h":
		return n * 60, true
	case "d":
		return n * day, true
	case "wd":
		return n * day * 7 / 5, true
	case "m":
		return n * 30 * day, true
	default: // y
		return n * 365 * day, true
	}
}

// dueKey is dueMinutes for a value already checked at load.
func dueKey(s string) int64 {
	m, _ := dueMinutes(s)
	return m
}
