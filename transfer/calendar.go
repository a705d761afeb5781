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
// Its text form has one line per listed date, each "YYYY-MM-DD off|work
// NAME", and, before a year's first date, optionally one line "YYYY
// source TEXT" naming where that year's dates come from; each line ends
// with a newline, and the lines are in ascending order of their first
// field ("2027" sorts before "2027-01-01"); nothing else. It is
// canonical: [ParseCalendar] accepts only what [Calendar.Format] writes.
type Calendar struct {
	days    []CalendarDay
	byDay   map[string]DayKind
	years   map[int]bool
	sources map[int]string
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
	c := newCalendar()
	if len(data) == 0 {
		return c, nil
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: no final newline", ErrMalformedCalendar)
	}
	last := ""
	for i, line := range strings.Split(string(data[:len(data)-1]), "\n") {
		first, _, _ := strings.Cut(line, " ")
		if first <= last {
			return nil, fmt.Errorf("%w: line %d: dates must be unique and ascending", ErrMalformedCalendar, i+1)
		}
		last = first
		if len(first) == 4 {
			year, src, err := parseSourceLine(line)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrMalformedCalendar, i+1, err)
			}
			c.sources[year] = src
			continue
		}
		d, err := parseDayLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformedCalendar, i+1, err)
		}
		c.add(d)
	}
	return c, nil
}

func newCalendar() *Calendar {
	return &Calendar{byDay: map[string]DayKind{}, years: map[int]bool{}, sources: map[int]string{}}
}

// parseSourceLine reads "YYYY source TEXT".
func parseSourceLine(line string) (int, string, error) {
	y, rest, ok1 := strings.Cut(line, " ")
	word, text, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || word != "source" {
		return 0, "", errors.New(`want "YYYY source TEXT"`)
	}
	t, err := time.Parse("2006", y)
	if err != nil || t.Format("2006") != y {
		return 0, "", errors.New("bad year")
	}
	if err := checkText(text, 512); err != nil {
		return 0, "", fmt.Errorf("source %v", err)
	}
	return t.Year(), text, nil
}

// checkText checks a name or a source: 1 to max bytes of UTF-8 without
// surrounding spaces or control characters.
func checkText(s string, max int) error {
	if s == "" || len(s) > max || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return fmt.Errorf("must be 1 to %d bytes of UTF-8 without surrounding spaces", max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("holds a control character")
		}
	}
	return nil
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
	if err := checkText(name, 128); err != nil {
		return CalendarDay{}, fmt.Errorf("name %v", err)
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
	years := make([]int, 0, len(c.sources))
	for y := range c.sources {
		years = append(years, y)
	}
	sort.Ints(years)
	src := func(before string) {
		for len(years) > 0 && fmt.Sprintf("%04d", years[0]) < before {
			fmt.Fprintf(&b, "%04d source %s\n", years[0], c.sources[years[0]])
			years = years[1:]
		}
	}
	for _, d := range c.days {
		src(d.Date)
		fmt.Fprintf(&b, "%s %s %s\n", d.Date, d.Kind, d.Name)
	}
	src("9999-99")
	return b.Bytes()
}

// Source returns where the calendar's dates of year come from, or "".
func (c *Calendar) Source(year int) string { return c.sources[year] }

// CN returns mainland China's working-day calendar as the State Council's
// General Office publishes it each year (国务院办公厅关于部分节假日安排的通知),
// with the weekend days declared working days (调休), for 2023 to 2027.
// Each year names its source ([Calendar.Source]). It is data: the
// embedded file calendars/cn.txt.
func CN() *Calendar {
	c, err := ParseCalendar(cnCalendar)
	if err != nil {
		panic("transfer: embedded CN calendar: " + err.Error())
	}
	return c
}

// Merge returns a calendar with the days of c and those of other; a date
// (or a year's source) listed in both takes other's entry. It is how configuration extends the
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
	out := newCalendar()
	for _, k := range keys {
		out.add(m[k])
	}
	for y, s := range c.sources {
		out.sources[y] = s
	}
	for y, s := range other.sources {
		out.sources[y] = s
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
