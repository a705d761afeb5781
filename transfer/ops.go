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
func (g *Gateway) SetConsent(ctx context.Context, a domicile.Actor, id string, kind ConsentKind, version string, granted bool) (*Consent, error) {
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
	con := &Consent{Subject: k.Ref, Kind: kind, TextVersion: version, Granted: granted, Time: g.cfg.Now().UTC()}
	if err := g.cfg.Store.PutConsent(ctx, con); err != nil {
		return nil, err
	}
	return con, nil
}

// knownConsent checks that kind is a consent the gateway or one of the
// deployment's purposes asks for.
func (g *Gateway) knownConsent(kind ConsentKind) error {
	if kind == ConsentCrossBorder || kind == ConsentSensitive {
		return nil
	}
	names := []string{string(ConsentCrossBorder), string(ConsentSensitive)}
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
func (g *Gateway) Consents(ctx context.Context, a domicile.Actor, id string) ([]Consent, error) {
	c, k, err := g.cfg.Router.LocateFor(ctx, a, id, domicile.ActConsent)
	if err != nil {
		return nil, err
	}
	if _, err := c.Note(ctx, a, k, domicile.ActConsent, "consents", "read"); err != nil {
		return nil, err
	}
	kinds := []ConsentKind{ConsentCrossBorder, ConsentSensitive}
	for _, p := range g.cfg.Router.Deployment().PurposeConsents() {
		kinds = append(kinds, ConsentKind(p))
	}
	var out []Consent
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

// importFlush bounds the subjects an import holds in memory per group.
const importFlush = 50_000

// ImportResult summarises an import.
type ImportResult struct {
	Rows    int64   `json:"rows"`
	Counted int64   `json:"counted_rows"`
	NewPI   int64   `json:"new_pi_individuals"`
	NewSPI  int64   `json:"new_sensitive_pi_individuals"`
	Counts  []Count `json:"counts"`
}

type importGroup struct {
	year    int
	dest    domicile.Jurisdiction
	mech    string
	counted bool
	pi, spi []domicile.SubjectRef
	cats    map[domicile.Category]bool
}

// Import reads transfers made outside the gateway (before the business
// adopted domicile) from CSV — date,subject_id,destination,categories,mechanism
// with categories separated by ';' — and adds them to the ledger of
// source jurisdiction src. Subject ids are hashed with the deployment's
// key and never stored. mechanism is a registered mechanism id, a
// mechanism kind or a law mechanism name; rows under an exemption on its
// own ground are recorded but not counted. Admin only. The import is
// streamed and committed in groups of at most 50,000 subjects; on an
// error the groups committed before stay.
func (g *Gateway) Import(ctx context.Context, a domicile.Actor, src domicile.Jurisdiction, r io.Reader) (*ImportResult, error) {
	if err := requireAdmin(a, "imports transfers"); err != nil {
		return nil, err
	}
	if _, err := domicile.ParseJurisdiction(string(src)); err != nil {
		return nil, domicile.FieldErrorf("source", "must be a jurisdiction code such as CN")
	}
	entity := g.Entity()
	unlock := g.lock(entity)
	defer unlock()
	ir, err := NewImportReader(r)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	groups := map[string]*importGroup{}
	g.mu.RLock()
	mechKind := map[string]Kind{}
	for _, m := range g.mechs {
		mechKind[m.ID] = m.Kind
	}
	g.mu.RUnlock()
	flush := func(gr *importGroup) error {
		if len(gr.pi)+len(gr.spi) == 0 {
			return nil
		}
		rec := &Record{ID: g.newID("imp_"), Time: g.cfg.Now().UTC(), Entity: entity, Year: gr.year, Source: src, Destination: gr.dest,
			Recipient: "imported", Purpose: "imported", Channel: ChannelImport, Law: gr.mech, Counted: gr.counted, Token: a.TokenID}
		if k, ok := mechKind[gr.mech]; ok {
			rec.Mechanism, rec.Kind, rec.Law = gr.mech, k, ""
		}
		for c := range gr.cats {
			rec.Categories = append(rec.Categories, c)
		}
		sort.Slice(rec.Categories, func(i, j int) bool { return rec.Categories[i] < rec.Categories[j] })
		rec.Subjects = int64(len(gr.pi) + len(gr.spi))
		var adds []Add
		key := func(c Class, dim, v string) CountKey {
			return CountKey{Entity: entity, Year: gr.year, Source: src, Class: c, Dim: dim, Value: v}
		}
		if gr.counted {
			for _, x := range []struct {
				c    Class
				refs []domicile.SubjectRef
			}{{ClassPI, gr.pi}, {ClassSPI, gr.spi}} {
				if len(x.refs) > 0 {
					adds = append(adds, Add{Key: key(x.c, DimTotal, ""), Refs: x.refs}, Add{Key: key(x.c, DimMechanism, gr.mech), Refs: x.refs},
						Add{Key: key(x.c, DimDestination, string(gr.dest)), Refs: x.refs})
				}
			}
		}
		added, err := g.cfg.Store.Record(ctx, rec, adds)
		if err != nil {
			return err
		}
		for i, ad := range adds {
			if ad.Key.Dim == DimTotal {
				if ad.Key.Class == ClassPI {
					res.NewPI += added[i]
				} else {
					res.NewSPI += added[i]
				}
			}
		}
		gr.pi, gr.spi, gr.cats = gr.pi[:0], gr.spi[:0], map[domicile.Category]bool{}
		return nil
	}
	for {
		row, err := ir.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		day, dest, cats, mech := row.Date, row.Destination, row.Categories, row.Mechanism
		kind, registered := mechKind[mech]
		if !registered {
			kind = Kind(mech)
		}
		counted := !kind.Exemption() && kind != KindAdequacy && mech != "not_regulated"
		gk := strconv.Itoa(day.Year()) + "|" + string(dest) + "|" + mech
		gr := groups[gk]
		if gr == nil {
			gr = &importGroup{year: day.Year(), dest: dest, mech: mech, counted: counted, cats: map[domicile.Category]bool{}}
			groups[gk] = gr
		}
		ref := g.cfg.Router.PersonKey(row.SubjectID)
		pi, spi, _ := catsInfo(cats)
		if pi {
			gr.pi = append(gr.pi, ref)
		}
		if spi {
			gr.spi = append(gr.spi, ref)
		}
		for _, c := range cats {
			gr.cats[c] = true
		}
		res.Rows++
		if counted {
			res.Counted++
		}
		if len(gr.pi)+len(gr.spi) >= importFlush {
			if err := flush(gr); err != nil {
				return res, err
			}
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	years := map[int]bool{}
	for _, k := range keys {
		years[groups[k].year] = true
		if err := flush(groups[k]); err != nil {
			return res, err
		}
	}
	for y := range years {
		cs, err := g.cfg.Store.Breakdown(ctx, entity, y)
		if err != nil {
			return res, err
		}
		res.Counts = append(res.Counts, cs...)
	}
	return res, nil
}

// LedgerView is an entity's counts for one year.
type LedgerView struct {
	Entity string  `json:"entity"`
	Year   int     `json:"year"`
	Counts []Count `json:"counts"`
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
		cs = []Count{}
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
		return g.cfg.Store.Records(ctx, from, until, func(r *Record) error { return enc.Encode(r) })
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "time", "entity", "year", "source", "destination", "recipient", "purpose", "channel", "mechanism", "mechanism_kind",
			"law_mechanism", "counted", "subjects", "new_pi", "new_sensitive_pi", "categories", "fields", "rules"})
		err := g.cfg.Store.Records(ctx, from, until, func(r *Record) error {
			cats := make([]string, len(r.Categories))
			for i, c := range r.Categories {
				cats[i] = string(c)
			}
			return cw.Write([]string{r.ID, r.Time.Format(time.RFC3339Nano), r.Entity, strconv.Itoa(r.Year), string(r.Source), string(r.Destination),
				r.Recipient, r.Purpose, r.Channel, r.Mechanism, string(r.Kind), r.Law, strconv.FormatBool(r.Counted),
				strconv.FormatInt(r.Subjects, 10), strconv.FormatInt(r.NewPI, 10), strconv.FormatInt(r.NewSPI, 10),
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
	cur, err := g.cfg.Store.Counts(ctx, []CountKey{p.key(ClassPI, DimTotal, ""), p.key(ClassSPI, DimTotal, "")})
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
func (g *Gateway) Snapshot(ctx context.Context) ([]Count, []Warning, error) {
	entity := g.Entity()
	year := g.cfg.Now().In(cst).Year()
	cs, err := g.cfg.Store.Breakdown(ctx, entity, year)
	if err != nil {
		return nil, nil, err
	}
	var pi, spi int64
	for _, c := range cs {
		if c.Source == "CN" && c.Dim == DimTotal {
			if c.Class == ClassPI {
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
func (g *Gateway) Records(ctx context.Context, from, until time.Time, fn func(*Record) error) error {
	return g.cfg.Store.Records(ctx, from, until, fn)
}
