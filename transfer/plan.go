package transfer

// Plan: a request (an export, or a read from abroad) resolved against
// the deployment into a plan the gate decides.

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"domicile"
	"domicile/cell"
)

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
	p := &plan{channel: domicile.ChannelExport, actor: a, dest: dest, recipient: req.Recipient, purpose: purpose, ground: ground,
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
	p.entity = g.Entity()
	p.year, p.asOf = Day(p.src, g.cfg.Now())
	p.today = p.asOf.Format(time.DateOnly)
}

func (p *plan) key(class domicile.CountClass, dim, value string) domicile.CountKey {
	return domicile.CountKey{Entity: p.entity, Year: p.year, Source: p.src, Class: class, Dim: dim, Value: value}
}

// person is the key the ledger counts subject s by: the keyed hash of its
// id, the same for every registration of the id, since the law counts
// natural persons (distinct individuals), not registrations. An access
// that knows the subject by reference only (an authority's disclosure)
// is counted by that reference: the one case where a person could count
// twice, and one that never reaches CN's thresholds, since a disclosure
// of CN data is made from within China (doc/transfers.md).
func (g *Gateway) person(s cell.SubjectKey) domicile.SubjectRef {
	if s.ID == "" {
		return s.Ref
	}
	return g.cfg.Router.PersonKey(s.ID)
}
