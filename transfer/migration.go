package transfer

import (
	"context"
	"sort"

	"domicile"
	"domicile/cell"
)

// MigrationPurpose is the purpose a migration's cross-border move
// states. A mechanism covers such a move when its scope lists it (or
// "*") among its purposes, the destination, the recipient (the target
// cell's operator) and the categories.
const MigrationPurpose = "migration"

// Migration decides moving the data of one subject of cell c (ref, and
// person, its directory key, which the ledger counts people by) to a
// cell of operator recipient in dest, in a migration of the deployment.
// It is decided like any transfer: a mechanism must cover it, the
// consents the law requires must be on record, the thresholds must have
// room. fields are the subject's fields per kind (domicile.ObjectKind
// for its files) and cats their categories by "kind.field". An allowed
// decision is recorded in the ledger (channel "migration") and counted
// before it returns; a refusal is a *RefusedError, counted in the gate's
// statistics only.
func (g *Gateway) Migration(ctx context.Context, planID string, c *cell.Cell, ref, person domicile.SubjectRef, dest domicile.Jurisdiction, recipient string, fields map[string][]string, cats map[string]domicile.Category) (*Decision, error) {
	a := domicile.Actor{Role: domicile.RoleSystem, Jurisdiction: c.Config().Jurisdiction, Reference: planID}
	p := &plan{channel: domicile.ChannelMigration, actor: a, src: c.Config().Jurisdiction, dest: dest, recipient: recipient,
		purpose: MigrationPurpose, ground: "general", basis: "consent",
		subjects: []subj{{key: cell.SubjectKey{Ref: ref}, cell: c, person: person}},
		fields:   map[string][]string{}, fieldCat: map[string]domicile.Category{}, excludedSet: map[int]bool{}}
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
	if len(p.cats) == 0 {
		p.cats = []domicile.Category{domicile.Personal}
	}
	sort.Slice(p.cats, func(i, j int) bool { return p.cats[i] < p.cats[j] })
	p.hasPI, p.hasSPI, p.hasImpData = catsInfo(p.cats)
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
