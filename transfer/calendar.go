package transfer

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

//go:embed calendars/cn.txt
var cnCalendar []byte

// DayKind says whether a listed date is a day off or a working day.
type DayKind string

// Day kinds of a holiday calendar.
const (
	// DayOff is a public holiday, or a weekday made a rest day.
	DayOff DayKind = "off"
	// DayWork is a weekend day declared a working day (调休).
	DayWork DayKind = "work"
)

// CalendarDay is one listed date of a calendar.
type CalendarDay struct {
	Date string // YYYY-MM-DD
	Kind DayKind
	Name string
}

// Calendar is a working-day calendar: Monday to Friday work, except the
// listed days off, plus the listed weekend days declared working days. It
// is immutable and safe for concurrent use.
//
// Its text form has one line per listed date, in ascending order, each
// "YYYY-MM-DD off|work NAME" and a newline; nothing else. It is canonical:
// [ParseCalendar] accepts only what [Calendar.Format] writes.
type Calendar struct {
	days  []CalendarDay
	byDay map[string]DayKind
	years map[int]bool
}

// ErrMalformedCalendar is the error of a calendar text that is not in the
// canonical form.
var ErrMalformedCalendar = errors.New("transfer: malformed calendar")

// MaxCalendarBytes bounds a calendar text.
const MaxCalendarBytes = 1 << 20

// ParseCalendar reads a calendar text. The error wraps
// ErrMalformedCalendar and names the line.
func ParseCalendar(data []byte) (*Calendar, error) {
	if len(data) > MaxCalendarBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrMalformedCalendar, MaxCalendarBytes)
	}
	c := &Calendar{byDay: map[string]DayKind{}, years: map[int]bool{}}
	if len(data) == 0 {
		return c, nil
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: no final newline", ErrMalformedCalendar)
	}
	for i, line := range strings.Split(string(data[:len(data)-1]), "\n") {
		d, err := parseDayLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformedCalendar, i+1, err)
		}
		if n := len(c.days); n > 0 && c.days[n-1].Date >= d.Date {
			return nil, fmt.Errorf("%w: line %d: dates must be unique and ascending", ErrMalformedCalendar, i+1)
		}
		c.add(d)
	}
	return c, nil
}

func parseDayLine(line string) (CalendarDay, error) {
	date, rest, ok1 := strings.Cut(line, " ")
	kind, name, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return CalendarDay{}, errors.New(`want "YYYY-MM-DD off|work NAME"`)
	}
	t, err := time.Parse(time.DateOnly, date)
	if err != nil || t.Format(time.DateOnly) != date {
		return CalendarDay{}, errors.New("bad date")
	}
	if DayKind(kind) != DayOff && DayKind(kind) != DayWork {
		return CalendarDay{}, errors.New(`kind must be "off" or "work"`)
	}
	if name == "" || len(name) > 128 || !utf8.ValidString(name) || strings.TrimSpace(name) != name {
		return CalendarDay{}, errors.New("name must be 1 to 128 bytes of UTF-8 without surrounding spaces")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return CalendarDay{}, errors.New("name holds a control character")
		}
	}
	return CalendarDay{Date: date, Kind: DayKind(kind), Name: name}, nil
}

func (c *Calendar) add(d CalendarDay) {
	c.days = append(c.days, d)
	c.byDay[d.Date] = d.Kind
	y, _ := time.Parse(time.DateOnly, d.Date)
	c.years[y.Year()] = true
}

// Format writes the calendar in its canonical text form.
func (c *Calendar) Format() []byte {
	var b bytes.Buffer
	for _, d := range c.days {
		fmt.Fprintf(&b, "%s %s %s\n", d.Date, d.Kind, d.Name)
	}
	return b.Bytes()
}

// CN returns mainland China's working-day calendar as the State Council's
// General Office publishes it each year (国务院办公厅关于部分节假日安排的通知),
// with the weekend days declared working days (调休), for 2023 to 2026.
func CN() *Calendar {
	c, err := ParseCalendar(cnCalendar)
	if err != nil {
		panic("transfer: embedded CN calendar: " + err.Error())
	}
	return c
}

// Merge returns a calendar with the days of c and those of other; a date
// listed in both takes other's entry. It is how configuration extends the
// embedded schedule with a newly published year.
func (c *Calendar) Merge(other *Calendar) *Calendar {
	m := map[string]CalendarDay{}
	for _, d := range c.days {
		m[d.Date] = d
	}
	for _, d := range other.days {
		m[d.Date] = d
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := &Calendar{byDay: map[string]DayKind{}, years: map[int]bool{}}
	for _, k := range keys {
		out.add(m[k])
	}
	return out
}

// Covers reports whether the calendar lists any day of year: outside the
// years it covers, only weekends are days off.
func (c *Calendar) Covers(year int) bool { return c.years[year] }

// Days returns the listed days in date order.
func (c *Calendar) Days() []CalendarDay { return append([]CalendarDay(nil), c.days...) }

// IsWorkingDay reports whether the calendar day of t is a working day.
func (c *Calendar) IsWorkingDay(t time.Time) bool {
	switch c.byDay[t.Format(time.DateOnly)] {
	case DayOff:
		return false
	case DayWork:
		return true
	}
	wd := t.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// AddWorkingDays returns the n-th working day after the calendar day of t
// (n ≥ 0; for n = 0, t itself), at the same clock time. "Within 10 working
// days after signing" ends at the end of AddWorkingDays(signing, 10).
// exact is false when a day counted falls in a year the calendar does not
// cover, so that the result assumed no holidays there.
func (c *Calendar) AddWorkingDays(t time.Time, n int) (day time.Time, exact bool) {
	exact = c.Covers(t.Year())
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if !c.Covers(t.Year()) {
			exact = false
		}
		if c.IsWorkingDay(t) {
			n--
		}
	}
	return t, exact
}

// SubWorkingDays returns the day n working days before the calendar day of
// t (for a window such as "the last 60 working days before expiry").
func (c *Calendar) SubWorkingDays(t time.Time, n int) (day time.Time, exact bool) {
	exact = c.Covers(t.Year())
	for n > 0 {
		t = t.AddDate(0, 0, -1)
		if !c.Covers(t.Year()) {
			exact = false
		}
		if c.IsWorkingDay(t) {
			n--
		}
	}
	return t, exact
}
