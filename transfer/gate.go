package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/law"
	"domicile/residency"
)

// Config configures a Gateway.
type Config struct {
	Store  Store
	Engine *law.Engine
	Router *residency.Router
	// Calendar counts CN working days; nil means [CN].
	Calendar *Calendar
	Now      func() time.Time
	Rand     io.Reader
	Logger   *slog.Logger
}

// Gateway decides and carries out transfers. It is safe for concurrent
// use; decisions of one legal entity are serialised.
type Gateway struct {
	cfg Config

	locks sync.Map // entity -> *sync.Mutex

	mu sync.RWMutex
	// mechs is the registry, cached; guarded by mu.
	mechs []Mechanism

	statsMu sync.Mutex
	// decisions counts decisions by outcome and law mechanism; guarded by statsMu.
	decisions map[[2]string]int64
}

// MaxSubjects bounds the subjects of one transfer request.
const MaxSubjects = 100_000

// New returns a gateway over cfg.Store, loading the registry.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Calendar == nil {
		cfg.Calendar = CN()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bodies, err := cfg.Store.Mechanisms(ctx)
	if err != nil {
		return nil, err
	}
	ms := make([]Mechanism, len(bodies))
	for i, b := range bodies {
		if err := json.Unmarshal(b, &ms[i]); err != nil {
			return nil, fmt.Errorf("transfer: stored mechanism: %v", err)
		}
	}
	return &Gateway{cfg: cfg, mechs: ms, decisions: map[[2]string]int64{}}, nil
}

// Calendar returns the working-day calendar in use.
func (g *Gateway) Calendar() *Calendar { return g.cfg.Calendar }

func (g *Gateway) lock(entity string) func() {
	m, _ := g.locks.LoadOrStore(entity, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Entity returns the legal entity the deployment declares (its name by
// default): the counts are kept per entity.
func (g *Gateway) Entity() string {
	d := g.cfg.Router.Deployment()
	if d.Declarations.Entity != "" {
		return d.Declarations.Entity
	}
	return d.Name
}

// cst is China Standard Time; China has no daylight saving time.
var cst = time.FixedZone("CST", 8*3600)

// zoneOf is where the calendar year and day of a source jurisdiction's
// law are counted.
func zoneOf(src domicile.Jurisdiction) *time.Location {
	if src == "CN" {
		return cst
	}
	return time.UTC
}

// sourceFact maps a cell jurisdiction to the law engine's
// source_jurisdiction, or "" where the engine models no regime.
func sourceFact(j domicile.Jurisdiction) string {
	if j.InEU() {
		return "EU"
	}
	switch j {
	case "CN", "HK", "MO", "RU", "VN", "ID", "IN", "SA", "TR", "KZ", "NG", "US":
		return string(j)
	}
	return ""
}

func (g *Gateway) newID(prefix string) string {
	var b [8]byte
	io.ReadFull(g.cfg.Rand, b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Request is a transfer request.
type Request struct {
	Destination domicile.Jurisdiction `json:"destination"`
	Recipient   string                `json:"recipient"`
	// Purpose is a declared purpose of the deployment; it defaults to the
	// app's Domicile-Purpose.
	Purpose string `json:"purpose,omitempty"`
	// Ground is the law engine's transfer_purpose: general (the default),
	// contract_with_individual, cross_border_hr, emergency, legal_duty or
	// foreign_origin_transit.
	Ground string `json:"ground,omitempty"`
	// Necessary asserts the transfer is necessary for its ground and
	// limited to the minimum (the exemptions need it).
	Necessary bool `json:"necessary,omitempty"`
	// LegalBasis is the PIPL Art. 13 basis of the processing; consent by
	// default.
	LegalBasis string `json:"legal_basis,omitempty"`
	// Subjects are the app's subject ids.
	Subjects []string `json:"subjects"`
	// Fields names, per record kind, the fields asked for.
	Fields map[string][]string `json:"fields"`
	// RecipientKey is the recipient's age X25519 public key.
	RecipientKey string `json:"recipient_key,omitempty"`
	// Plain asks for an unencrypted bundle; it must be explicit.
	Plain bool `json:"plain,omitempty"`
}

var grounds = []string{"general", "contract_with_individual", "cross_border_hr", "emergency", "legal_duty", "foreign_origin_transit"}

// Warning is a headroom warning: a count at 80% or 90% of the next
// threshold.
type Warning struct {
	Fact      string `json:"fact"`
	Value     int64  `json:"value"`
	Threshold int64  `json:"threshold"`
	Percent   int    `json:"percent"`
	Rule      string `json:"rule"`
	Message   string `json:"message"`
}

// Exclusion is a subject left out of a transfer, and why.
type Exclusion struct {
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
	Rule    string `json:"rule"`
}

// MechanismUse names the registered mechanism a transfer relies on.
type MechanismUse struct {
	ID        string `json:"id"`
	Kind      Kind   `json:"kind"`
	Reference string `json:"reference"`
	Status    Status `json:"status"`
}

// Decision is the gate's answer to a request or a remote read.
type Decision struct {
	ID          string                `json:"id"`
	Allowed     bool                  `json:"allowed"`
	Time        time.Time             `json:"time"`
	AsOf        string                `json:"as_of"`
	Entity      string                `json:"entity"`
	Year        int                   `json:"year"`
	Source      domicile.Jurisdiction `json:"source"`
	Destination domicile.Jurisdiction `json:"destination"`
	Recipient   string                `json:"recipient"`
	Purpose     string                `json:"purpose"`
	Channel     string                `json:"channel"`
	// Law is the mechanism the law engine requires; MechanismRule the
	// rule that decided it.
	Law           string        `json:"law_mechanism"`
	MechanismRule string        `json:"mechanism_rule,omitempty"`
	Mechanism     *MechanismUse `json:"mechanism,omitempty"`
	Fired         []string      `json:"fired"`
	Obligations   []string      `json:"obligations"`
	// Counted is false when the transfer is exempt on its own ground.
	Counted bool `json:"counted"`
	// PIYTD and SensitivePIYTD are the year-to-date distinct counts with
	// this transfer (as the engine saw them).
	PIYTD          int64               `json:"pi_individuals_ytd"`
	SensitivePIYTD int64               `json:"sensitive_pi_individuals_ytd"`
	NewPI          int64               `json:"new_pi_individuals"`
	NewSensitivePI int64               `json:"new_sensitive_pi_individuals"`
	Subjects       int                 `json:"subjects"`
	Excluded       []Exclusion         `json:"excluded,omitempty"`
	Categories     []domicile.Category `json:"categories"`
	Fields         map[string][]string `json:"fields,omitempty"`
	Dropped        map[string][]string `json:"dropped_fields,omitempty"`
	// Reasons, Rules and Remedies explain a refusal: why, under which
	// rules, and what would make the request pass.
	Reasons  []string  `json:"reasons,omitempty"`
	Rules    []string  `json:"rules,omitempty"`
	Remedies []string  `json:"remedies,omitempty"`
	Warnings []Warning `json:"warnings,omitempty"`
}

// RefusedError is a refused transfer; Decision says why.
type RefusedError struct{ Decision *Decision }

func (e *RefusedError) Error() string {
	d := e.Decision
	return fmt.Sprintf("transfer refused under %s: %s", strings.Join(d.Rules, ", "), strings.Join(d.Reasons, "; "))
}

// subj is one subject of a plan.
type subj struct {
	id   string
	key  cell.SubjectKey
	cell *cell.Cell
	// person is what the ledger counts the subject by (Gateway.person).
	person domicile.SubjectRef
}

// plan is a request resolved against the deployment.
type plan struct {
	channel     string
	actor       domicile.Actor
	src         domicile.Jurisdiction
	entity      string
	year        int
	asOf        time.Time
	today       string
	dest        domicile.Jurisdiction
	recipient   string
	purpose     string
	ground      string
	necessary   bool
	basis       string
	subjects    []subj
	fields      map[string][]string // requested
	fieldCat    map[string]domicile.Category
	cats        []domicile.Category
	hasPI       bool
	hasSPI      bool
	hasImpData  bool
	excluded    []Exclusion
	excludedSet map[int]bool
}

func catsInfo(cats []domicile.Category) (pi, spi, imp bool) {
	for _, c := range cats {
		switch {
		case c == domicile.ImportantData:
			imp = true
		case c.Sensitive():
			spi = true
		case c == domicile.Personal:
			pi = true
		}
	}
	return
}

// resolve validates a request and locates its subjects.
func (g *Gateway) resolve(ctx context.Context, a domicile.Actor, req *Request) (*plan, error) {
	if a.Role != domicile.RoleApp {
		return nil, domicile.Errorf(domicile.EForbidden, "only an app token requests transfers")
	}
	dep := g.cfg.Router.Deployment()
	dest, err := domicile.ParseJurisdiction(string(req.Destination))
	if err != nil {
		return nil, domicile.FieldErrorf("destination", "must be a jurisdiction code such as US")
	}
	if req.Recipient == "" || len(req.Recipient) > 256 {
		return nil, domicile.FieldErrorf("recipient", "must name the recipient (1 to 256 bytes)")
	}
	purpose := req.Purpose
	if purpose == "" {
		purpose = a.Purpose
	}
	if !dep.HasPurpose(purpose) {
		return nil, domicile.FieldErrorf("purpose", "%q is not a declared purpose", trunc(purpose, 32))
	}
	ground := req.Ground
	if ground == "" {
		ground = "general"
	}
	if !slices.Contains(grounds, ground) {
		return nil, domicile.FieldErrorf("ground", "must be one of %s", strings.Join(grounds, ", "))
	}
	basis := req.LegalBasis
	if basis == "" {
		basis = "consent"
	}
	if len(req.Subjects) == 0 || len(req.Subjects) > MaxSubjects {
		return nil, domicile.FieldErrorf("subjects", "must list 1 to %d subject ids", MaxSubjects)
	}
	if len(req.Fields) == 0 {
		return nil, domicile.FieldErrorf("fields", "must name the fields asked for, per record kind")
	}
	p := &plan{channel: ChannelExport, actor: a, dest: dest, recipient: req.Recipient, purpose: purpose, ground: ground,
		necessary: req.Necessary, basis: basis, fields: map[string][]string{}, fieldCat: map[string]domicile.Category{}, excludedSet: map[int]bool{}}
	seenCat := map[domicile.Category]bool{}
	for kind, fs := range req.Fields {
		k := dep.Kind(kind)
		if k == nil {
			return nil, domicile.FieldErrorf("fields", "unknown record kind %q", trunc(kind, 32))
		}
		if len(fs) == 0 {
			return nil, domicile.FieldErrorf("fields", "kind %q names no field", kind)
		}
		for _, f := range fs {
			c, ok := k.Fields[f]
			if !ok {
				return nil, domicile.FieldErrorf("fields", "field %q is not declared for kind %q", trunc(f, 64), kind)
			}
			if !slices.Contains(p.fields[kind], f) {
				p.fields[kind] = append(p.fields[kind], f)
			}
			p.fieldCat[kind+"."+f] = c
			if !seenCat[c] {
				seenCat[c] = true
				p.cats = append(p.cats, c)
			}
		}
		sort.Strings(p.fields[kind])
	}
	sort.Slice(p.cats, func(i, j int) bool { return p.cats[i] < p.cats[j] })
	p.hasPI, p.hasSPI, p.hasImpData = catsInfo(p.cats)
	seen := map[string]bool{}
	for i, id := range req.Subjects {
		if seen[id] {
			return nil, domicile.FieldErrorf("subjects", "subject #%d is listed twice", i)
		}
		seen[id] = true
		c, k, err := g.cfg.Router.Locate(ctx, id)
		if err != nil {
			if domicile.ErrorCode(err) == domicile.ENotFound {
				return nil, domicile.FieldErrorf("subjects", "subject #%d is not registered", i)
			}
			return nil, err
		}
		j := c.Config().Jurisdiction
		if i == 0 {
			p.src = j
		} else if j != p.src {
			return nil, domicile.FieldErrorf("subjects", "subjects of one request must live in one jurisdiction (%s and %s); send one request per source", p.src, j)
		}
		p.subjects = append(p.subjects, subj{id: id, key: k, cell: c, person: g.cfg.Router.PersonKey(id)})
	}
	g.dates(p)
	return p, nil
}

func (g *Gateway) dates(p *plan) {
	now := g.cfg.Now().In(zoneOf(p.src))
	p.entity, p.year, p.today = g.Entity(), now.Year(), now.Format(time.DateOnly)
	p.asOf = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
}

func (p *plan) key(class Class, dim, value string) CountKey {
	return CountKey{Entity: p.entity, Year: p.year, Source: p.src, Class: class, Dim: dim, Value: value}
}

// candidate is a registered mechanism covering a plan's destination,
// recipient and purpose, with its standing.
type candidate struct {
	m  Mechanism
	st Status
}

func (g *Gateway) candidates(p *plan) []candidate {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []candidate
	for _, m := range g.mechs {
		if !m.Source.Covers(p.src) || !m.Scope.covers(p.dest, p.recipient, p.purpose) {
			continue
		}
		out = append(out, candidate{m: m, st: m.StatusOn(p.today, g.cfg.Calendar)})
	}
	return out
}

func hasValid(cs []candidate, k Kind) bool {
	for _, c := range cs {
		if c.m.Kind == k && c.st.Valid {
			return true
		}
	}
	return false
}

// facts builds the law engine's facts for a plan.
func (g *Gateway) facts(p *plan, cs []candidate, pi, spi int64) law.Facts {
	dep := g.cfg.Router.Deployment()
	f := law.Facts{
		"source_jurisdiction":            sourceFact(p.src),
		"transfers_abroad":               !p.src.Covers(p.dest),
		"transfer_contains_pi":           p.hasPI || p.hasSPI,
		"transfer_contains_sensitive_pi": p.hasSPI,
		"processes_sensitive_pi":         p.hasSPI,
		"has_important_data":             dep.Declarations.ImportantData || p.hasImpData,
		"is_ciio":                        dep.Declarations.CIIO,
		"pi_individuals_ytd":             pi,
		"sensitive_pi_individuals_ytd":   spi,
		"transfer_purpose":               p.ground,
		"transfer_necessary":             p.necessary,
		"legal_basis":                    p.basis,
		"separate_consent_obtained":      true, // subjects without it are left out
		"hr_rules_lawful":                hasValid(cs, KindExemptHR),
		"in_ftz":                         hasValid(cs, KindExemptFTZ),
		"eu_adequacy_recipient":          hasValid(cs, KindAdequacy),
	}
	if p.dest != domicile.EU {
		f["recipient_country"] = string(p.dest)
	}
	if p.actor.Role == domicile.RoleAuthority && p.actor.Reason == domicile.ReasonLawfulForeign {
		// A foreign authority's demand: the government-access rules decide.
		f["foreign_authority_request"] = true
	}
	switch {
	case hasValid(cs, KindSCCs):
		f["eu_safeguard"] = "sccs"
	case hasValid(cs, KindBCRs):
		f["eu_safeguard"] = "bcrs"
	}
	return f
}

// ownGround maps the rules of exemptions on their own ground to the kind
// of registered mechanism documenting them. Transfers under them are left
// out of the counts.
var ownGround = map[string]Kind{
	"CN.CBDF.4":        KindExemptTransit,
	"CN.CBDF.5.1":      KindExemptContract,
	"CN.CBDF.5.2":      KindExemptHR,
	"CN.CBDF.5.3":      KindExemptEmergency,
	"CN.CBDF.6":        KindExemptFTZ,
	"CN.NDSMR.35.DUTY": KindExemptLegalDuty,
	"EU.GDPR.45":       KindAdequacy,
}

// acceptable lists the registered kinds that satisfy a law mechanism,
// strongest first.
func acceptable(law string) []Kind {
	switch law {
	case "security_assessment":
		return []Kind{KindSecurityAssessment}
	case "gba_standard_contract":
		return []Kind{KindSecurityAssessment, KindGBAStandardContract}
	case "sc_or_certification":
		return []Kind{KindSecurityAssessment, KindStandardContract, KindCertification}
	}
	return nil
}

// evaluate decides a plan: consents, counts, the engine, the mechanism,
// minimisation. It records nothing; the caller holds the entity's lock.
func (g *Gateway) evaluate(ctx context.Context, p *plan) (*Decision, []subj, error) {
	d := &Decision{Time: g.cfg.Now().UTC(), AsOf: p.today, Entity: p.entity, Year: p.year, Source: p.src, Destination: p.dest,
		Recipient: p.recipient, Purpose: p.purpose, Channel: p.channel, Categories: p.cats}
	cs := g.candidates(p)
	keys := []CountKey{p.key(ClassPI, DimTotal, ""), p.key(ClassSPI, DimTotal, "")}
	cur, err := g.cfg.Store.Counts(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	// A first pass with today's counts says which consents the law needs.
	rep, err := g.cfg.Engine.Decide(g.facts(p, cs, cur[0], cur[1]), p.asOf)
	if err != nil {
		return nil, nil, err
	}
	included := p.subjects
	if p.excludedSet != nil {
		included, err = g.filterConsents(ctx, p, rep)
		if err != nil {
			return nil, nil, err
		}
	}
	d.Excluded = p.excluded
	refs := make([]domicile.SubjectRef, len(included))
	for i, s := range included {
		refs[i] = s.person
	}
	var newPI, newSPI []domicile.SubjectRef
	if p.hasPI && len(refs) > 0 {
		if newPI, err = g.newMembers(ctx, keys[0], refs); err != nil {
			return nil, nil, err
		}
	}
	if p.hasSPI && len(refs) > 0 {
		if newSPI, err = g.newMembers(ctx, keys[1], refs); err != nil {
			return nil, nil, err
		}
	}
	d.PIYTD, d.SensitivePIYTD = cur[0]+int64(len(newPI)), cur[1]+int64(len(newSPI))
	d.NewPI, d.NewSensitivePI = int64(len(newPI)), int64(len(newSPI))
	rep, err = g.cfg.Engine.Decide(g.facts(p, cs, d.PIYTD, d.SensitivePIYTD), p.asOf)
	if err != nil {
		return nil, nil, err
	}
	d.Fired, d.Obligations, d.MechanismRule = rep.Fired, rep.Obligations, rep.MechanismRule
	d.Law = "none"
	if rep.Mechanism != nil {
		d.Law = *rep.Mechanism
	}
	d.Subjects = len(included)
	d.Counted = d.Law != "not_regulated" && d.Law != "none" && (p.hasPI || p.hasSPI)
	if _, own := ownGround[rep.MechanismRule]; own {
		d.Counted = false
	}
	if !d.Counted {
		d.NewPI, d.NewSensitivePI = 0, 0
		d.PIYTD, d.SensitivePIYTD = cur[0], cur[1]
	}
	g.chooseMechanism(ctx, p, d, rep, cs)
	if len(included) == 0 {
		d.refuse("every subject was left out for want of a consent the law requires", "", "obtain the subjects' separate consents and record them (PUT /v1/subjects/{id}/consents/{kind})")
		for _, x := range p.excluded {
			d.addRule(x.Rule)
		}
	}
	d.Allowed = len(d.Reasons) == 0
	if d.Allowed {
		g.minimise(p, d)
	}
	d.Warnings = g.warnings(p, d.PIYTD, d.SensitivePIYTD)
	return d, included, nil
}

func (d *Decision) addRule(r string) {
	if r != "" && !slices.Contains(d.Rules, r) {
		d.Rules = append(d.Rules, r)
	}
}

func (d *Decision) refuse(reason, rule, remedy string) {
	d.Reasons = append(d.Reasons, reason)
	d.addRule(rule)
	if remedy != "" {
		d.Remedies = append(d.Remedies, remedy)
	}
}

func (g *Gateway) newMembers(ctx context.Context, k CountKey, refs []domicile.SubjectRef) ([]domicile.SubjectRef, error) {
	in, err := g.cfg.Store.Members(ctx, k, refs)
	if err != nil {
		return nil, err
	}
	var out []domicile.SubjectRef
	for i, ok := range in {
		if !ok {
			out = append(out, refs[i])
		}
	}
	return out, nil
}

// filterConsents leaves out the subjects lacking a consent the engine's
// first pass requires: separate consent to transfer (CN.PIPL.39.CONSENT)
// and to sensitive processing (CN.PIPL.28).
func (g *Gateway) filterConsents(ctx context.Context, p *plan, rep *law.Report) ([]subj, error) {
	type need struct {
		kind ConsentKind
		rule string
	}
	var needs []need
	if slices.Contains(rep.Fired, "CN.PIPL.39.CONSENT") {
		needs = append(needs, need{ConsentCrossBorder, "CN.PIPL.39.CONSENT"})
	}
	if slices.Contains(rep.Fired, "CN.PIPL.28") && p.hasSPI {
		needs = append(needs, need{ConsentSensitive, "CN.PIPL.28"})
	}
	if len(needs) == 0 {
		return p.subjects, nil
	}
	refs := make([]domicile.SubjectRef, len(p.subjects))
	for i, s := range p.subjects {
		refs[i] = s.key.Ref
	}
	for _, n := range needs {
		cons, err := g.cfg.Store.Consent(ctx, n.kind, refs)
		if err != nil {
			return nil, err
		}
		for i, c := range cons {
			if p.excludedSet[i] || (c != nil && c.Granted) {
				continue
			}
			p.excludedSet[i] = true
			reason := "no " + string(n.kind) + " consent"
			if c != nil {
				reason = string(n.kind) + " consent withdrawn on " + c.Time.In(zoneOf(p.src)).Format(time.DateOnly)
			}
			p.excluded = append(p.excluded, Exclusion{Subject: p.subjects[i].id, Reason: reason, Rule: n.rule})
		}
	}
	var out []subj
	for i, s := range p.subjects {
		if !p.excludedSet[i] {
			out = append(out, s)
		}
	}
	return out, nil
}

func describeScope(p *plan) string {
	return fmt.Sprintf("destination %s, recipient %q, purpose %s, categories %s", p.dest, p.recipient, p.purpose, joinCats(p.cats))
}

func joinCats(cs []domicile.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// chooseMechanism finds the registered mechanism the engine's answer
// needs, or records why there is none.
func (g *Gateway) chooseMechanism(ctx context.Context, p *plan, d *Decision, rep *law.Report, cs []candidate) {
	var kindsOK []Kind
	switch d.Law {
	case "prohibited":
		d.refuse("the law prohibits this transfer", d.MechanismRule,
			"nothing registered can make it pass: it needs the approval of the competent PRC authority (for a foreign authority's request) or the removal of the prohibited recipient or counterparty, as the rules cited say")
		for _, f := range rep.Findings {
			if f.Mechanism == "prohibited" {
				d.addRule(f.Rule)
			}
		}
		return
	case "legal_review":
		d.refuse("no rule decides this transfer; it needs a lawyer's review before it may pass", d.MechanismRule, "have the transfer reviewed and register the mechanism it rests on")
		return
	case "none", "not_regulated":
		if slices.Contains(rep.Obligations, "eu_sccs") {
			kindsOK = []Kind{KindSCCs, KindBCRs, KindAdequacy}
			break
		}
		return
	case "exempt":
		k, own := ownGround[d.MechanismRule]
		if !own {
			return // statutory exemption decided by the counts (CN.CBDF.5.4) or the regime
		}
		kindsOK = []Kind{k}
	default:
		kindsOK = acceptable(d.Law)
	}
	var problems []string
	for _, k := range kindsOK {
		for _, c := range cs {
			if c.m.Kind != k {
				continue
			}
			if !c.st.Valid {
				problems = append(problems, c.st.Problems...)
				continue
			}
			if !g.anyAllowed(p, &c.m) {
				problems = append(problems, fmt.Sprintf("mechanism %s covers none of the requested categories (%s)", c.m.ID, joinCats(p.cats)))
				continue
			}
			if max := c.m.Scope.MaxIndividuals; max > 0 {
				if over, n := g.overCeiling(ctx, p, &c.m, d); over {
					problems = append(problems, fmt.Sprintf("mechanism %s's volume ceiling of %d people would be exceeded (%d)", c.m.ID, max, n))
					continue
				}
			}
			st := c.st
			d.Mechanism = &MechanismUse{ID: c.m.ID, Kind: c.m.Kind, Reference: c.m.Reference, Status: st}
			return
		}
	}
	names := make([]string, len(kindsOK))
	for i, k := range kindsOK {
		names[i] = string(k)
	}
	d.refuse(fmt.Sprintf("the law requires %s (%s) and no valid registered mechanism of kind %s covers %s",
		d.Law, d.MechanismRule, strings.Join(names, " or "), describeScope(p)), d.MechanismRule,
		fmt.Sprintf("register a valid mechanism of kind %s covering %s", strings.Join(names, " or "), describeScope(p)))
	d.Reasons = append(d.Reasons, problems...)
	for _, f := range rep.Findings {
		if f.Mechanism == d.Law {
			d.addRule(f.Rule)
		}
	}
	if d.Law == "sc_or_certification" {
		d.addRule("CN.SCM.5")
		d.Remedies = append(d.Remedies, "a standard contract must be filed within 10 working days of taking effect (CN.SCM.5); register it with its filing date and reference")
	}
}

func (g *Gateway) anyAllowed(p *plan, m *Mechanism) bool {
	for kind, fs := range p.fields {
		for _, f := range fs {
			if m.Scope.allows(kind, f, p.fieldCat[kind+"."+f]) {
				return true
			}
		}
	}
	return false
}

// overCeiling reports whether m's yearly ceiling would be passed.
func (g *Gateway) overCeiling(ctx context.Context, p *plan, m *Mechanism, d *Decision) (bool, int64) {
	k := p.key(ClassPI, DimMechanism, m.ID)
	n, err := g.cfg.Store.Counts(ctx, []CountKey{k, p.key(ClassSPI, DimMechanism, m.ID)})
	if err != nil {
		return true, 0
	}
	total := max(n[0], n[1]) + int64(d.Subjects)
	return total > m.Scope.MaxIndividuals, total
}

// minimise narrows the fields to the mechanism's scope.
func (g *Gateway) minimise(p *plan, d *Decision) {
	d.Fields = map[string][]string{}
	var m *Mechanism
	if d.Mechanism != nil {
		g.mu.RLock()
		for i := range g.mechs {
			if g.mechs[i].ID == d.Mechanism.ID {
				mm := g.mechs[i]
				m = &mm
			}
		}
		g.mu.RUnlock()
	}
	var leaving []domicile.Category
	for kind, fs := range p.fields {
		for _, f := range fs {
			c := p.fieldCat[kind+"."+f]
			if m == nil || m.Scope.allows(kind, f, c) {
				d.Fields[kind] = append(d.Fields[kind], f)
				if !slices.Contains(leaving, c) {
					leaving = append(leaving, c)
				}
			} else {
				if d.Dropped == nil {
					d.Dropped = map[string][]string{}
				}
				d.Dropped[kind] = append(d.Dropped[kind], f)
			}
		}
	}
	sort.Slice(leaving, func(i, j int) bool { return leaving[i] < leaving[j] })
	d.Categories = leaving
}

// warnings lists the counts at 80% or 90% of the next threshold in force.
func (g *Gateway) warnings(p *plan, pi, spi int64) []Warning {
	if sourceFact(p.src) != "CN" {
		return nil
	}
	var out []Warning
	for _, fact := range []string{"pi_individuals_ytd", "sensitive_pi_individuals_ytd"} {
		v := pi
		if fact == "sensitive_pi_individuals_ytd" {
			v = spi
		}
		var next *law.Threshold
		for _, t := range g.cfg.Engine.Vocabulary().Thresholds {
			if t.Fact != fact || p.today < t.EffectiveFrom || (t.EffectiveUntil != "" && p.today > t.EffectiveUntil) || v >= t.Value {
				continue
			}
			if next == nil || t.Value < next.Value {
				tt := t
				next = &tt
			}
		}
		if next == nil {
			continue
		}
		pct := 0
		switch {
		case v*10 >= next.Value*9:
			pct = 90
		case v*10 >= next.Value*8:
			pct = 80
		default:
			continue
		}
		out = append(out, Warning{Fact: fact, Value: v, Threshold: next.Value, Percent: pct, Rule: next.Rule,
			Message: fmt.Sprintf("%s is %d, at least %d%% of %d: %d left before %s (%s)", fact, v, pct, next.Value, next.Value-v, next.Crossing, next.Rule)})
	}
	return out
}

func (g *Gateway) count(d *Decision) {
	g.statsMu.Lock()
	out := "refused"
	if d.Allowed {
		out = "allowed"
	}
	g.decisions[[2]string{out, d.Law}]++
	g.statsMu.Unlock()
}

// Decide decides a request without carrying it out (a dry run): nothing
// is counted or logged.
func (g *Gateway) Decide(ctx context.Context, a domicile.Actor, req *Request) (*Decision, error) {
	p, err := g.resolve(ctx, a, req)
	if err != nil {
		return nil, err
	}
	unlock := g.lock(p.entity)
	defer unlock()
	d, _, err := g.evaluate(ctx, p)
	if err != nil {
		return nil, err
	}
	d.ID = "dry-run"
	return d, nil
}

// record makes an allowed decision durable in the ledger and raises its
// warnings. The caller holds the entity's lock.
func (g *Gateway) record(ctx context.Context, p *plan, d *Decision, included []subj) error {
	r := &Record{ID: d.ID, Time: d.Time, Entity: p.entity, Year: p.year, Source: p.src, Destination: p.dest, Recipient: p.recipient,
		Purpose: p.purpose, Channel: p.channel, Law: d.Law, Rules: d.Fired, Counted: d.Counted, Subjects: int64(len(included)),
		Categories: d.Categories, Token: p.actor.TokenID}
	if d.Mechanism != nil {
		r.Mechanism, r.Kind = d.Mechanism.ID, d.Mechanism.Kind
	}
	for kind, fs := range d.Fields {
		for _, f := range fs {
			r.Fields = append(r.Fields, kind+"."+f)
		}
	}
	sort.Strings(r.Fields)
	var adds []Add
	if d.Counted {
		pi, spi, _ := catsInfo(d.Categories)
		refs := make([]domicile.SubjectRef, len(included))
		for i, s := range included {
			refs[i] = s.person
		}
		mech := d.Law
		if d.Mechanism != nil {
			mech = d.Mechanism.ID
		}
		for _, c := range []struct {
			class Class
			on    bool
		}{{ClassPI, pi}, {ClassSPI, spi}} {
			if !c.on {
				continue
			}
			adds = append(adds, Add{Key: p.key(c.class, DimTotal, ""), Refs: refs},
				Add{Key: p.key(c.class, DimMechanism, mech), Refs: refs},
				Add{Key: p.key(c.class, DimDestination, string(p.dest)), Refs: refs})
		}
	}
	added, err := g.cfg.Store.Record(ctx, r, adds)
	if err != nil {
		return err
	}
	// The counts actually reached, after minimisation.
	for i, a := range adds {
		if a.Key.Dim != DimTotal {
			continue
		}
		if a.Key.Class == ClassPI {
			d.NewPI = added[i]
		} else {
			d.NewSensitivePI = added[i]
		}
	}
	cur, err := g.cfg.Store.Counts(ctx, []CountKey{p.key(ClassPI, DimTotal, ""), p.key(ClassSPI, DimTotal, "")})
	if err != nil {
		return err
	}
	d.PIYTD, d.SensitivePIYTD = cur[0], cur[1]
	d.Warnings = g.warnings(p, cur[0], cur[1])
	for _, w := range d.Warnings {
		first, err := g.cfg.Store.Warned(ctx, p.entity, p.year, w.Fact, w.Threshold, w.Percent)
		if err != nil {
			return err
		}
		if first && len(included) > 0 {
			g.notice(ctx, included[0].cell, w)
		}
	}
	return nil
}

// notice logs a headroom warning as an event of the source cell that
// concerns no one subject.
func (g *Gateway) notice(ctx context.Context, c *cell.Cell, w Warning) {
	detail := fmt.Sprintf("%s=%d reached %d%% of %d (%s)", w.Fact, w.Value, w.Percent, w.Threshold, w.Rule)
	if _, err := c.NoteSystem(ctx, domicile.ActNotice, "transfer-threshold", detail); err != nil {
		g.cfg.Logger.Error("transfer: threshold warning not logged", slog.String("cell", c.ID()), slog.Any("err", err))
	}
	g.cfg.Logger.Warn("transfer: threshold warning", slog.String("entity", g.Entity()), slog.String("fact", w.Fact),
		slog.Int64("value", w.Value), slog.Int64("threshold", w.Threshold), slog.Int("percent", w.Percent))
}

// Transfer decides a request and, if allowed, records it, calls begin
// with the decision (before any byte of the bundle) and streams the
// bundle to w. A refusal is a *RefusedError and writes nothing. Each
// subject in the bundle gets an export event in its cell's log before its
// records are written.
//
// The counts are raised before the bundle streams: a transfer that fails
// midway still counts, which errs on the side of the thresholds.
func (g *Gateway) Transfer(ctx context.Context, a domicile.Actor, req *Request, begin func(*Decision) error, w io.Writer) (*Decision, error) {
	if !req.Plain && req.RecipientKey == "" {
		return nil, domicile.FieldErrorf("recipient_key", "an export bundle is encrypted to the recipient's age public key; give it, or ask explicitly for \"plain\": true")
	}
	p, err := g.resolve(ctx, a, req)
	if err != nil {
		return nil, err
	}
	unlock := g.lock(p.entity)
	d, included, err := g.evaluate(ctx, p)
	if err != nil {
		unlock()
		return nil, err
	}
	d.ID = g.newID("trf_")
	g.count(d)
	if !d.Allowed {
		unlock()
		return d, &RefusedError{Decision: d}
	}
	err = g.record(ctx, p, d, included)
	unlock()
	if err != nil {
		return nil, err
	}
	hdr := BundleHeader{Transfer: d.ID, Created: d.Time, Entity: d.Entity, Source: d.Source, Destination: d.Destination,
		Recipient: d.Recipient, Purpose: d.Purpose, Law: d.Law, Fields: d.Fields}
	detail := "transfer " + d.ID + " to " + string(d.Destination) + " under " + d.Law
	if d.Mechanism != nil {
		hdr.Mechanism, hdr.Kind = d.Mechanism.ID, d.Mechanism.Kind
		detail += " (" + d.Mechanism.ID + ")"
	}
	bw, err := newBundleWriter(w, req.RecipientKey, req.Plain, hdr)
	if err != nil {
		return d, err
	}
	if begin != nil {
		if err := begin(d); err != nil {
			return d, err
		}
	}
	for _, s := range included {
		_, err := s.cell.Export(ctx, a, s.key, d.Fields, detail, func(r *domicile.Record) error { return bw.record(s.id, r) })
		if err != nil {
			return d, err
		}
	}
	if _, err := bw.finish(len(included)); err != nil {
		return d, err
	}
	return d, nil
}

// RemoteAccess is the cell's gate for reads by actors acting from another
// jurisdiction: the read is a transfer to the actor's jurisdiction, for
// the recipient "remote:<role>", and is decided like any transfer: a
// valid mechanism must cover the purpose, the recipient and at least one
// of the fields read; the grant names the fields the mechanism's scope
// lets leave (the cell withholds the others). The first read of a subject
// in a year is recorded in the ledger and counted; later ones are counted
// already. A refusal is a *domicile.Error (EForbidden) naming the rule
// ids; the cell logs it as a denied event. RemoteAccess itself writes no
// event: the cell's one event for the read carries the grant.
func (g *Gateway) RemoteAccess(ctx context.Context, r cell.RemoteRead) (*cell.RemoteGrant, error) {
	c := g.cfg.Router.CellByID(r.Cell.ID)
	if c == nil {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s is not served by this process", r.Cell.ID)
	}
	a := r.Actor
	purpose := a.Purpose
	if purpose == "" {
		purpose = a.Basis()
	}
	p := &plan{channel: ChannelRemote, actor: a, src: r.Cell.Jurisdiction, dest: a.Jurisdiction, recipient: "remote:" + string(a.Role),
		purpose: purpose, ground: "general", basis: "consent",
		subjects: []subj{{id: r.Subject.ID, key: r.Subject, cell: c, person: g.person(r.Subject)}},
		fields:   map[string][]string{}, fieldCat: map[string]domicile.Category{}, excludedSet: map[int]bool{}}
	seen := map[domicile.Category]bool{}
	for kind, fs := range r.Fields {
		for _, f := range fs {
			cat, ok := r.Categories[kind+"."+f]
			if !ok {
				cat = domicile.Personal
			}
			p.fields[kind] = append(p.fields[kind], f)
			p.fieldCat[kind+"."+f] = cat
			if !seen[cat] {
				seen[cat] = true
				p.cats = append(p.cats, cat)
			}
		}
		sort.Strings(p.fields[kind])
	}
	sort.Slice(p.cats, func(i, j int) bool { return p.cats[i] < p.cats[j] })
	p.hasPI, p.hasSPI, p.hasImpData = catsInfo(p.cats)
	g.dates(p)
	unlock := g.lock(p.entity)
	defer unlock()
	d, included, err := g.evaluate(ctx, p)
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		d.ID = g.newID("trf_")
		g.count(d)
		msg := fmt.Sprintf("a read from %s is a transfer abroad and is refused under %s: %s", a.Jurisdiction, strings.Join(d.Rules, ", "), strings.Join(d.Reasons, "; "))
		if len(d.Remedies) > 0 {
			msg += "; to pass: " + strings.Join(d.Remedies, "; ")
		}
		return nil, &domicile.Error{Code: domicile.EForbidden, Message: msg}
	}
	grant := &cell.RemoteGrant{Fields: d.Fields, Law: d.Law}
	if d.Mechanism != nil {
		grant.Mechanism = d.Mechanism.ID
	}
	if d.NewPI == 0 && d.NewSensitivePI == 0 {
		g.count(d)
		return grant, nil // counted already this year
	}
	d.ID = g.newID("trf_")
	g.count(d)
	if err := g.record(ctx, p, d, included); err != nil {
		return nil, err
	}
	grant.Transfer = d.ID
	return grant, nil
}

// person is the key the ledger counts subject s by: the keyed hash of its
// id, the same for every registration of the id, since the law counts
// natural persons (distinct individuals), not registrations.
func (g *Gateway) person(s cell.SubjectKey) domicile.SubjectRef {
	if s.ID == "" {
		return s.Ref
	}
	return g.cfg.Router.PersonKey(s.ID)
}

// Consented reports whether subject ref has given consent (a purpose's
// consent such as "marketing") and not withdrawn it since. The cell asks
// on every read under a purpose that needs it.
func (g *Gateway) Consented(ctx context.Context, ref domicile.SubjectRef, consent string) (bool, error) {
	cs, err := g.cfg.Store.Consent(ctx, ConsentKind(consent), []domicile.SubjectRef{ref})
	if err != nil {
		return false, err
	}
	return cs[0] != nil && cs[0].Granted, nil
}

// Stats returns the decisions made since start, by outcome and law
// mechanism, for metrics.
func (g *Gateway) Stats() map[[2]string]int64 {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	out := make(map[[2]string]int64, len(g.decisions))
	for k, v := range g.decisions {
		out[k] = v
	}
	return out
}
