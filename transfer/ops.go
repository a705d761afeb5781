package transfer

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
	"domicile/law"
)

// MechanismView is a registered mechanism with its standing today.
type MechanismView struct {
	Mechanism
	Status Status `json:"status"`
}

func requireAdmin(a domicile.Actor, what string) error {
	if a.Role != domicile.RoleAdmin {
		return domicile.Errorf(domicile.EForbidden, "only an admin token %s", what)
	}
	return nil
}

func requireAdminOrAuditor(a domicile.Actor) error {
	if a.Role != domicile.RoleAdmin && a.Role != domicile.RoleAuditor {
		return domicile.Errorf(domicile.EForbidden, "only an admin or auditor token reads the transfer ledger and registry")
	}
	return nil
}

func (g *Gateway) today(src domicile.Jurisdiction) string {
	return g.cfg.Now().In(zoneOf(src)).Format(time.DateOnly)
}

// PutMechanism registers (or replaces) a mechanism. Admin only.
func (g *Gateway) PutMechanism(ctx context.Context, a domicile.Actor, m Mechanism) (*MechanismView, error) {
	if err := requireAdmin(a, "registers mechanisms"); err != nil {
		return nil, err
	}
	if m.Source == "" {
		m.Source = "CN"
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	m.Updated = g.cfg.Now().UTC()
	g.mu.Lock()
	defer g.mu.Unlock()
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := g.cfg.Store.PutMechanism(ctx, m.ID, body); err != nil {
		return nil, err
	}
	i := sort.Search(len(g.mechs), func(i int) bool { return g.mechs[i].ID >= m.ID })
	if i < len(g.mechs) && g.mechs[i].ID == m.ID {
		g.mechs[i] = m
	} else {
		g.mechs = append(g.mechs[:i], append([]Mechanism{m}, g.mechs[i:]...)...)
	}
	return &MechanismView{Mechanism: m, Status: m.StatusOn(g.today(m.Source), g.cfg.Calendar)}, nil
}

// Mechanisms lists the registry with each mechanism's standing today.
func (g *Gateway) Mechanisms(a domicile.Actor) ([]MechanismView, error) {
	if err := requireAdminOrAuditor(a); err != nil {
		return nil, err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]MechanismView, 0, len(g.mechs))
	for _, m := range g.mechs {
		out = append(out, MechanismView{Mechanism: m, Status: m.StatusOn(g.today(m.Source), g.cfg.Calendar)})
	}
	return out, nil
}

// Mechanism returns one registered mechanism.
func (g *Gateway) Mechanism(a domicile.Actor, id string) (*MechanismView, error) {
	ms, err := g.Mechanisms(a)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.ID == id {
			return &m, nil
		}
	}
	return nil, domicile.Errorf(domicile.ENotFound, "no mechanism %q", trunc(id, 64))
}

// SetConsent records that subject id gave (granted) or withdrew a consent,
// with the version of the text the app showed. It is an event in the
// subject's cell log, committed before the consent takes effect. An app
// token or the subject's own token may do it. kind is cross-border,
// sensitive, or a consent one of the deployment's purposes needs.
func (g *Gateway) SetConsent(ctx context.Context, a domicile.Actor, id string, kind domicile.ConsentKind, version string, granted bool) (*domicile.Consent, error) {
	if version == "" || len(version) > 64 {
		return nil, domicile.FieldErrorf("text_version", "must name the version of the consent text shown (1 to 64 bytes)")
	}
	if err := g.knownConsent(kind); err != nil {
		return nil, err
	}
	c, k, err := g.cfg.Router.LocateFor(ctx, a, id, domicile.ActConsent)
	if err != nil {
		return nil, err
	}
	state := "granted"
	if !granted {
		state = "withdrawn"
	}
	if _, err := c.Note(ctx, a, k, domicile.ActConsent, "consent/"+string(kind), state+":"+version); err != nil {
		return nil, err
	}
	con := &domicile.Consent{Subject: k.Ref, Kind: kind, TextVersion: version, Granted: granted, Time: g.cfg.Now().UTC()}
	if err := g.cfg.Store.PutConsent(ctx, con); err != nil {
		return nil, err
	}
	return con, nil
}

// knownConsent checks that kind is a consent the gateway or one of the
// deployment's purposes asks for.
func (g *Gateway) knownConsent(kind domicile.ConsentKind) error {
	if kind == domicile.ConsentCrossBorder || kind == domicile.ConsentSensitive {
		return nil
	}
	names := []string{string(domicile.ConsentCrossBorder), string(domicile.ConsentSensitive)}
	for _, p := range g.cfg.Router.Deployment().PurposeConsents() {
		if string(kind) == p {
			return nil
		}
		names = append(names, p)
	}
	return domicile.FieldErrorf("kind", "unknown consent %q; one of: %s", trunc(string(kind), 32), strings.Join(names, ", "))
}

// Consents returns a subject's consents (app or the subject's token). The
// reading is itself a logged event in the subject's trail.
func (g *Gateway) Consents(ctx context.Context, a domicile.Actor, id string) ([]domicile.Consent, error) {
	c, k, err := g.cfg.Router.LocateFor(ctx, a, id, domicile.ActConsent)
	if err != nil {
		return nil, err
	}
	if _, err := c.Note(ctx, a, k, domicile.ActConsent, "consents", "read"); err != nil {
		return nil, err
	}
	kinds := []domicile.ConsentKind{domicile.ConsentCrossBorder, domicile.ConsentSensitive}
	for _, p := range g.cfg.Router.Deployment().PurposeConsents() {
		kinds = append(kinds, domicile.ConsentKind(p))
	}
	var out []domicile.Consent
	for _, kind := range kinds {
		cs, err := g.cfg.Store.Consent(ctx, kind, []domicile.SubjectRef{k.Ref})
		if err != nil {
			return nil, err
		}
		if cs[0] != nil {
			out = append(out, *cs[0])
		}
	}
	return out, nil
}

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
	Entity         string      `json:"entity"`
	Year           int         `json:"year"`
	Source         string      `json:"source"`
	PIYTD          int64       `json:"pi_individuals_ytd"`
	SensitivePIYTD int64       `json:"sensitive_pi_individuals_ytd"`
	Facts          law.Facts   `json:"facts"`
	Report         *law.Report `json:"report"`
}

// Assess assesses the running deployment as the gate would a transfer of
// PI abroad from src today: with the ledger's year-to-date counts and the
// deployment's declarations. Admin or auditor.
func (g *Gateway) Assess(ctx context.Context, a domicile.Actor, src domicile.Jurisdiction) (*Assessment, error) {
	if err := requireAdminOrAuditor(a); err != nil {
		return nil, err
	}
	if src == "" {
		src = "CN"
	}
	sf := sourceFact(src)
	if sf == "" {
		return nil, domicile.FieldErrorf("source", "the law engine models no regime for %s", src)
	}
	p := &plan{src: src}
	g.dates(p)
	cur, err := g.cfg.Store.Counts(ctx, []domicile.CountKey{p.key(domicile.ClassPI, domicile.DimTotal, ""), p.key(domicile.ClassSPI, domicile.DimTotal, "")})
	if err != nil {
		return nil, err
	}
	dep := g.cfg.Router.Deployment()
	f := law.Facts{
		"source_jurisdiction":            sf,
		"transfers_abroad":               true,
		"transfer_contains_pi":           true,
		"transfer_contains_sensitive_pi": cur[1] > 0,
		"processes_sensitive_pi":         cur[1] > 0,
		"has_important_data":             dep.Declarations.ImportantData,
		"is_ciio":                        dep.Declarations.CIIO,
		"pi_individuals_ytd":             cur[0],
		"sensitive_pi_individuals_ytd":   cur[1],
	}
	rep, err := g.cfg.Engine.Decide(f, p.asOf)
	if err != nil {
		return nil, err
	}
	return &Assessment{Entity: p.entity, Year: p.year, Source: sf, PIYTD: cur[0], SensitivePIYTD: cur[1], Facts: f, Report: rep}, nil
}

// Snapshot returns the current year's counts for metrics.
func (g *Gateway) Snapshot(ctx context.Context) ([]domicile.Count, []Warning, error) {
	entity := g.Entity()
	year := g.cfg.Now().In(cst).Year()
	cs, err := g.cfg.Store.Breakdown(ctx, entity, year)
	if err != nil {
		return nil, nil, err
	}
	var pi, spi int64
	for _, c := range cs {
		if c.Source == "CN" && c.Dim == domicile.DimTotal {
			if c.Class == domicile.ClassPI {
				pi = c.N
			} else {
				spi = c.N
			}
		}
	}
	p := &plan{src: "CN"}
	g.dates(p)
	return cs, g.warnings(p, pi, spi), nil
}

// Records calls fn for each transfer record with from ≤ Time < until, in
// time order: the evidence, for the reports.
func (g *Gateway) Records(ctx context.Context, from, until time.Time, fn func(*domicile.TransferRecord) error) error {
	return g.cfg.Store.Records(ctx, from, until, fn)
}
