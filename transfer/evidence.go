package transfer

// Evidence: what the ledger shows an admin or auditor (the year's counts,
// every transfer record), the live assessment, and the ledger figures the
// reports print.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/law"
)

// LedgerView is an entity's counts for one year.
type LedgerView struct {
	Entity string           `json:"entity"`
	Year   int              `json:"year"`
	Counts []domicile.Count `json:"counts"`
}

// Ledger returns the counts of a year (0: the current year in China).
// Admin or auditor.
func (g *Gateway) Ledger(ctx context.Context, a domicile.Actor, year int) (*LedgerView, error) {
	if err := requireAdminOrAuditor(a); err != nil {
		return nil, err
	}
	if year == 0 {
		year = g.cfg.Now().In(cst).Year()
	}
	cs, err := g.cfg.Store.Breakdown(ctx, g.Entity(), year)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		cs = []domicile.Count{}
	}
	return &LedgerView{Entity: g.Entity(), Year: year, Counts: cs}, nil
}

// Evidence writes the transfer records made in [from, until) as CSV or
// JSON lines (format "csv" or "json"), streaming. Admin or auditor.
func (g *Gateway) Evidence(ctx context.Context, a domicile.Actor, from, until time.Time, format string, w io.Writer) error {
	if err := requireAdminOrAuditor(a); err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		return g.cfg.Store.Records(ctx, from, until, func(r *domicile.TransferRecord) error { return enc.Encode(r) })
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "time", "entity", "year", "source", "destination", "recipient", "purpose", "channel", "mechanism", "mechanism_kind",
			"law_mechanism", "counted", "people", "new_pi", "new_sensitive_pi", "categories", "fields", "rules"})
		err := g.cfg.Store.Records(ctx, from, until, func(r *domicile.TransferRecord) error {
			cats := make([]string, len(r.Categories))
			for i, c := range r.Categories {
				cats[i] = string(c)
			}
			return cw.Write([]string{r.ID, r.Time.Format(time.RFC3339Nano), r.Entity, strconv.Itoa(r.Year), string(r.Source), string(r.Destination),
				r.Recipient, r.Purpose, r.Channel, r.Mechanism, string(r.Kind), r.Law, strconv.FormatBool(r.Counted),
				strconv.FormatInt(r.People, 10), strconv.FormatInt(r.NewPI, 10), strconv.FormatInt(r.NewSPI, 10),
				strings.Join(cats, ";"), strings.Join(r.Fields, ";"), strings.Join(r.Rules, ";")})
		})
		cw.Flush()
		return errors.Join(err, cw.Error())
	}
	return domicile.FieldErrorf("format", "must be csv or json")
}

// Assessment is the live assessment of the deployment: the law engine's
// report on facts taken from the ledger and the declarations.
type Assessment struct {
	Entity string `json:"entity"`
	Year   int    `json:"year"`
	Source string `json:"source"`
	// PIYTD and SensitivePIYTD are the year's people so far
	// (figures.PeopleYTD).
	PIYTD          int64       `json:"pi_individuals_ytd"`
	SensitivePIYTD int64       `json:"sensitive_pi_individuals_ytd"`
	Facts          law.Facts   `json:"facts"`
	Report         *law.Report `json:"report"`
	// Crossings are the thresholds in force on those counts and the day
	// each is reached at this year's rate (figures.Crossings).
	Crossings []figures.Crossing `json:"crossings"`

	src  domicile.Jurisdiction
	asOf time.Time
}

// Assess assesses the running deployment as the gate would a transfer of
// PI abroad from src today: with the ledger's year-to-date counts and the
// deployment's declarations. Admin or auditor.
func (g *Gateway) Assess(ctx context.Context, a domicile.Actor, src domicile.Jurisdiction) (*Assessment, error) {
	if err := requireAdminOrAuditor(a); err != nil {
		return nil, err
	}
	return g.Assessment(ctx, src)
}

// Assessment is [Gateway.Assess] for the service's own documents (a
// change plan's impact report), which check their reader themselves.
func (g *Gateway) Assessment(ctx context.Context, src domicile.Jurisdiction) (*Assessment, error) {
	if src == "" {
		src = "CN"
	}
	dep := g.cfg.Router.Deployment()
	year, _ := Day(src, g.cfg.Now())
	cs, err := g.cfg.Store.Breakdown(ctx, dep.LegalEntity(), year)
	if err != nil {
		return nil, err
	}
	return AssessCounts(g.cfg.Engine, dep, src, g.cfg.Now(), cs)
}

// Day returns the calendar year and day (at midnight UTC) of src's law
// at now: China's for CN, UTC elsewhere. The ledger counts per such year.
func Day(src domicile.Jurisdiction, now time.Time) (year int, asOf time.Time) {
	t := now.In(zoneOf(src))
	return t.Year(), time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// AssessCounts is the live assessment of the year of dep's legal entity
// from counts (the year's breakdown as the ledger gives it) and dep's
// declarations, as of now: what the law requires of a further transfer
// of personal information abroad from src. It is pure: the gateway and
// `domicile notice plan --data` both call it.
func AssessCounts(e *law.Engine, dep *domicile.Deployment, src domicile.Jurisdiction, now time.Time, counts []domicile.Count) (*Assessment, error) {
	sf := sourceFact(src)
	if sf == "" {
		return nil, domicile.FieldErrorf("source", "the law engine models no regime for %s", src)
	}
	year, asOf := Day(src, now)
	pi, spi := figures.PeopleYTD(counts, src)
	f := law.Facts{
		"source_jurisdiction":            sf,
		"transfers_abroad":               true,
		"transfer_contains_pi":           true,
		"transfer_contains_sensitive_pi": spi > 0,
		"processes_sensitive_pi":         spi > 0,
		"has_important_data":             dep.Declarations.ImportantData,
		"is_ciio":                        dep.Declarations.CIIO,
		figures.FactPIYTD:                pi,
		figures.FactSPIYTD:               spi,
	}
	rep, err := e.Decide(f, asOf)
	if err != nil {
		return nil, err
	}
	return &Assessment{Entity: dep.LegalEntity(), Year: year, Source: sf, PIYTD: pi, SensitivePIYTD: spi, Facts: f, Report: rep,
		Crossings: figures.Crossings(e.Thresholds(sf), asOf, pi, spi), src: src, asOf: asOf}, nil
}

// Outlook returns the assessment's figures as a change plan shows them.
func (a *Assessment) Outlook() figures.Outlook {
	o := figures.Outlook{Entity: a.Entity, Year: a.Year, Source: a.src, AsOf: a.asOf.Format(time.DateOnly),
		People: a.PIYTD, SensitivePeople: a.SensitivePIYTD, Crossings: a.Crossings}
	if a.Report != nil && a.Report.Mechanism != nil {
		o.Law, o.Rule = *a.Report.Mechanism, a.Report.MechanismRule
	}
	return o
}

// Snapshot returns the current year's counts for metrics.
func (g *Gateway) Snapshot(ctx context.Context) ([]domicile.Count, []Warning, error) {
	p := &plan{src: "CN"}
	g.dates(p)
	cs, err := g.cfg.Store.Breakdown(ctx, p.entity, p.year)
	if err != nil {
		return nil, nil, err
	}
	pi, spi := figures.PeopleYTD(cs, p.src)
	return cs, g.warnings(p, pi, spi), nil
}

// Records calls fn for each transfer record with from ≤ Time < until, in
// time order: the evidence, for the reports.
func (g *Gateway) Records(ctx context.Context, from, until time.Time, fn func(*domicile.TransferRecord) error) error {
	return g.cfg.Store.Records(ctx, from, until, fn)
}

// MaxLedgerYears bounds the calendar years one document's ledger figures
// cover.
const MaxLedgerYears = 50

// LedgerFigures returns the ledger figures of the calendar years from the
// year of from to the year of the last instant before to (UTC), those of
// them any transfer record of the deployment's entity has
// (figures.LedgerOf). It is for the service's own documents, which check
// their reader themselves.
func (g *Gateway) LedgerFigures(ctx context.Context, from, to time.Time) (*figures.Ledger, error) {
	y0, y1 := from.UTC().Year(), to.UTC().Add(-time.Nanosecond).Year()
	if y1 < y0 {
		y1 = y0
	}
	entity := g.Entity()
	var recs []domicile.TransferRecord
	years := map[int]bool{}
	err := g.cfg.Store.Records(ctx, time.Time{}, maxTime, func(r *domicile.TransferRecord) error {
		if r.Entity != entity || r.Year < y0 || r.Year > y1 {
			return nil
		}
		years[r.Year] = true
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(years) > MaxLedgerYears {
		return nil, domicile.FieldErrorf("from", "the period covers transfers of %d calendar years; at most %d", len(years), MaxLedgerYears)
	}
	ys := make([]int, 0, len(years))
	for y := range years {
		ys = append(ys, y)
	}
	sort.Ints(ys)
	var counts []domicile.Count
	for _, y := range ys {
		cs, err := g.cfg.Store.Breakdown(ctx, entity, y)
		if err != nil {
			return nil, err
		}
		counts = append(counts, cs...)
	}
	l := figures.LedgerOf(entity, ys, recs, counts)
	return &l, nil
}

// maxTime is later than any record.
var maxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
