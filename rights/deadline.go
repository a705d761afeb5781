package rights

import (
	"time"

	"domicile"
	"domicile/i18n"
	"domicile/transfer"
)

// CNWorkingDays is the default deadline for mainland China, in working
// days on the CN calendar. PIPL Arts. 44-50 ask for a prompt answer and
// set no day count; 15 working days is the benchmark of the 2019 App
// identification method that rule CN.PIPL.44-50 cites.
const CNWorkingDays = 15

// cst is China Standard Time (no daylight saving time).
var cst = time.FixedZone("CST", 8*3600)

// DeadlineFor returns the deadline of a request received at received
// from a subject of jurisdiction j, counted on cal (for CN), with its
// basis in p's language. The deadline is the end of its last day in the
// zone the law counts in (China Standard Time for CN, UTC otherwise).
func DeadlineFor(p *i18n.Printer, cal *transfer.Calendar, j domicile.Jurisdiction, received time.Time) Deadline {
	switch {
	case j == "CN":
		day, exact := cal.AddWorkingDays(received.In(cst), CNWorkingDays)
		return Deadline{Due: endOfDay(day, cst), Rule: "CN.PIPL.44-50", Basis: p.T("rights.deadline.cn", CNWorkingDays), Approximate: !exact}
	case j.InEU():
		return Deadline{Due: endOfDay(AddMonth(received.UTC()), time.UTC), Rule: "GDPR Art. 12(3)", Basis: p.T("rights.deadline.eu")}
	}
	return Deadline{Due: endOfDay(AddMonth(received.UTC()), time.UTC), Rule: "", Basis: p.T("rights.deadline.default", string(j))}
}

// AddMonth returns the same day of the next month, or that month's last
// day when it has no such day (a period of one month ends on the
// corresponding day, Regulation (EEC, Euratom) No 1182/71 Art. 3(2)(c)).
func AddMonth(t time.Time) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+1, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// endOfDay is the last second of t's calendar day in loc.
func endOfDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 23, 59, 59, 0, loc)
}
