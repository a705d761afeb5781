package transfer

import (
	"context"
	"sort"
	"time"

	"domicile"
	"domicile/cell"
)

// PortabilityPurpose is the purpose a portability transfer states: the
// individual's own request. A mechanism covers portability when its scope
// lists it among its purposes.
const PortabilityPurpose = "portability"

// Portability decides moving subject s's copy out of its cell's
// jurisdiction to recipient, another handler in dest, at the individual's
// request (PIPL Art. 45(3) with Arts. 38-39; GDPR Art. 20 with Chapter
// V). It is decided like any transfer: a mechanism must cover the
// destination, the recipient, the purpose "portability" and the
// categories; the consents the law requires must be on record; the
// thresholds must have room. fields are the subject's fields per kind
// (domicile.ObjectKind for its files) and cats their categories by
// "kind.field". An allowed decision is recorded in the ledger and counted
// before it returns; the decision's Fields are what may leave. A refusal
// is a *RefusedError, counted in the gate's statistics only. a is the
// subject itself or the app on its behalf.
func (g *Gateway) Portability(ctx context.Context, a domicile.Actor, c *cell.Cell, s cell.SubjectKey, dest domicile.Jurisdiction, recipient string, fields map[string][]string, cats map[string]domicile.Category) (*Decision, error) {
	if recipient == "" || len(recipient) > 256 {
		return nil, domicile.FieldErrorf("recipient", "must name the receiving handler (1 to 256 bytes)")
	}
	p := &plan{channel: domicile.ChannelPortability, actor: a, src: c.Config().Jurisdiction, dest: dest, recipient: recipient,
		purpose: PortabilityPurpose, ground: "general", basis: "consent",
		subjects:    []subj{{id: s.ID, key: s, cell: c, person: g.person(s)}},
		excludedSet: map[int]bool{}}
	p.setFields(fields, cats)
	g.dates(p)
	unlock, err := g.lock(ctx, p.entity)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d, included, err := g.evaluate(ctx, p)
	if err != nil {
		return nil, err
	}
	d.ID = g.newID("trf_")
	g.count(d)
	if !d.Allowed {
		return d, &RefusedError{Decision: d}
	}
	if err := g.record(ctx, p, d, included); err != nil {
		return nil, err
	}
	return d, nil
}

// DescribeTransfer returns the recipient and destination of the ledger's
// transfer id, which was recorded near the time given (the time of the
// event that names it). An erasure asks it to name where copies it cannot
// reach went.
func (g *Gateway) DescribeTransfer(ctx context.Context, id string, near time.Time) (string, domicile.Jurisdiction, bool, error) {
	var rec *domicile.TransferRecord
	err := g.cfg.Store.Records(ctx, near.Add(-time.Hour), near.Add(time.Minute), func(r *domicile.TransferRecord) error {
		if r.ID == id {
			c := *r
			rec = &c
		}
		return nil
	})
	if err != nil || rec == nil {
		return "", "", false, err
	}
	return rec.Recipient, rec.Destination, true, nil
}

// ConsentsOf returns the consents on record for subject ref, without
// logging: the caller's own access (a subject's copy) is the event.
func (g *Gateway) ConsentsOf(ctx context.Context, ref domicile.SubjectRef) ([]domicile.Consent, error) {
	kinds := []domicile.ConsentKind{domicile.ConsentCrossBorder, domicile.ConsentSensitive}
	for _, p := range g.cfg.Router.Deployment().PurposeConsents() {
		kinds = append(kinds, domicile.ConsentKind(p))
	}
	var out []domicile.Consent
	for _, kind := range kinds {
		cs, err := g.cfg.Store.Consent(ctx, kind, []domicile.SubjectRef{ref})
		if err != nil {
			return nil, err
		}
		if cs[0] != nil {
			out = append(out, *cs[0])
		}
	}
	return out, nil
}

// setFields gives a one-subject plan (a remote read, a portable copy) the
// fields it carries, each with its category (Personal when cats does not
// name it), and the categories they make up.
func (p *plan) setFields(fields map[string][]string, cats map[string]domicile.Category) {
	p.fields, p.fieldCat = map[string][]string{}, map[string]domicile.Category{}
	seen := map[domicile.Category]bool{}
	for kind, fs := range fields {
		for _, f := range fs {
			cat, ok := cats[kind+"."+f]
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
}
