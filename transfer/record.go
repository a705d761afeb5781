package transfer

// Record: what the gate writes to the ledger (the transfer record and the
// people it adds to each count), for an allowed decision and for imported
// earlier transfers, and the warnings it raises.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"

	"domicile"
	"domicile/cell"
)

// countAdds is what one transfer adds to the ledger: the people whose
// non-sensitive (pi) and sensitive (spi) personal information left, to
// the route count of its mechanism and destination always, and, when the
// transfer counts toward the thresholds, to the total and its breakdowns
// by mechanism and destination. key names a count of the transfer's
// entity, year and source.
func countAdds(key func(domicile.CountClass, string, string) domicile.CountKey, counted bool, mech string, dest domicile.Jurisdiction, pi, spi []domicile.SubjectRef) []domicile.CountAdd {
	var adds []domicile.CountAdd
	for _, c := range []struct {
		class domicile.CountClass
		refs  []domicile.SubjectRef
	}{{domicile.ClassPI, pi}, {domicile.ClassSPI, spi}} {
		if len(c.refs) == 0 {
			continue
		}
		if counted {
			adds = append(adds, domicile.CountAdd{Key: key(c.class, domicile.DimTotal, ""), Refs: c.refs},
				domicile.CountAdd{Key: key(c.class, domicile.DimMechanism, mech), Refs: c.refs},
				domicile.CountAdd{Key: key(c.class, domicile.DimDestination, string(dest)), Refs: c.refs})
		}
		adds = append(adds, domicile.CountAdd{Key: key(c.class, domicile.DimRoute, domicile.Route(mech, dest)), Refs: c.refs})
	}
	return adds
}

// record makes an allowed decision durable in the ledger and raises its
// warnings. The caller holds the entity's lock.
func (g *Gateway) record(ctx context.Context, p *plan, d *Decision, included []subj) error {
	r := &domicile.TransferRecord{ID: d.ID, Time: d.Time, Entity: p.entity, Year: p.year, Source: p.src, Destination: p.dest, Recipient: p.recipient,
		Purpose: p.purpose, Channel: p.channel, Law: d.Law, Rules: d.Fired, Counted: d.Counted,
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
	people := map[domicile.SubjectRef]bool{}
	refs := make([]domicile.SubjectRef, 0, len(included))
	for _, s := range included {
		if !people[s.person] {
			people[s.person] = true
			refs = append(refs, s.person)
		}
	}
	r.People = int64(len(refs))
	var pi, spi []domicile.SubjectRef
	if hasPI, hasSPI, _ := catsInfo(d.Categories); hasPI || hasSPI {
		// The categories that actually leave, after minimisation.
		if hasPI {
			pi = refs
		}
		if hasSPI {
			spi = refs
		}
	}
	adds := countAdds(p.key, d.Counted, r.MechanismName(), p.dest, pi, spi)
	if _, err := g.cfg.Store.Record(ctx, r, adds); err != nil {
		return err
	}
	d.NewPI, d.NewSensitivePI = r.NewPI, r.NewSPI
	cur, err := g.cfg.Store.Counts(ctx, []domicile.CountKey{p.key(domicile.ClassPI, domicile.DimTotal, ""), p.key(domicile.ClassSPI, domicile.DimTotal, "")})
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

// importFlush bounds the people an import holds in memory per group.
const importFlush = 50_000

// ImportResult summarises an import.
type ImportResult struct {
	Rows int64 `json:"rows"`
	// Counted is how many rows count toward the thresholds (not under an
	// exemption on its own ground).
	Counted int64            `json:"counted_rows"`
	NewPI   int64            `json:"new_pi_individuals"`
	NewSPI  int64            `json:"new_sensitive_pi_individuals"`
	Counts  []domicile.Count `json:"counts"`
}

// importGroup gathers the rows of one year, destination and mechanism:
// each group is one transfer record, flushed every importFlush people.
type importGroup struct {
	year    int
	dest    domicile.Jurisdiction
	mech    string
	counted bool
	pi, spi map[domicile.SubjectRef]bool
	cats    map[domicile.Category]bool
}

func (gr *importGroup) reset() {
	gr.pi, gr.spi, gr.cats = map[domicile.SubjectRef]bool{}, map[domicile.SubjectRef]bool{}, map[domicile.Category]bool{}
}

// people returns the distinct people of the group, and those of each
// class, each in a stable order.
func (gr *importGroup) people() (all, pi, spi []domicile.SubjectRef) {
	seen := map[domicile.SubjectRef]bool{}
	for _, m := range []map[domicile.SubjectRef]bool{gr.pi, gr.spi} {
		for r := range m {
			if !seen[r] {
				seen[r] = true
				all = append(all, r)
			}
		}
	}
	for r := range gr.pi {
		pi = append(pi, r)
	}
	for r := range gr.spi {
		spi = append(spi, r)
	}
	for _, s := range [][]domicile.SubjectRef{all, pi, spi} {
		sort.Slice(s, func(i, j int) bool { return string(s[i][:]) < string(s[j][:]) })
	}
	return all, pi, spi
}

// Import reads transfers made outside the gateway (before the business
// adopted domicile) from CSV ([ImportReader]: date, subject_id,
// destination, categories, mechanism) and adds them to the ledger of
// source jurisdiction src, in the year of each row's date. Subject ids
// are hashed into person keys ([residency.Router.PersonKey]) and never
// stored; a person listed twice in a group is one person. mechanism is a
// registered mechanism id, a mechanism kind or a law mechanism name; rows
// under an exemption on its own ground are recorded but not counted.
// Admin only. The import is streamed and committed in groups of at most
// 50,000 people; on an error the groups committed before stay.
func (g *Gateway) Import(ctx context.Context, a domicile.Actor, src domicile.Jurisdiction, r io.Reader) (*ImportResult, error) {
	if err := requireAdmin(a, "imports transfers"); err != nil {
		return nil, err
	}
	if _, err := domicile.ParseJurisdiction(string(src)); err != nil {
		return nil, domicile.FieldErrorf("source", "must be a jurisdiction code such as CN")
	}
	entity := g.Entity()
	unlock, err := g.lock(ctx, entity)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ir, err := NewImportReader(r)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	groups := map[string]*importGroup{}
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	g.mu.RLock()
	mechKind := map[string]domicile.MechanismKind{}
	for _, m := range g.mechs {
		mechKind[m.ID] = m.Kind
	}
	g.mu.RUnlock()
	flush := func(gr *importGroup) error {
		all, pi, spi := gr.people()
		if len(all) == 0 {
			return nil
		}
		rec := &domicile.TransferRecord{ID: g.newID("imp_"), Time: g.cfg.Now().UTC(), Entity: entity, Year: gr.year, Source: src, Destination: gr.dest,
			Recipient: "imported", Purpose: "imported", Channel: domicile.ChannelImport, Law: gr.mech, Counted: gr.counted, Token: a.TokenID,
			People: int64(len(all))}
		if k, ok := mechKind[gr.mech]; ok {
			rec.Mechanism, rec.Kind, rec.Law = gr.mech, k, ""
		}
		for c := range gr.cats {
			rec.Categories = append(rec.Categories, c)
		}
		sort.Slice(rec.Categories, func(i, j int) bool { return rec.Categories[i] < rec.Categories[j] })
		key := func(c domicile.CountClass, dim, v string) domicile.CountKey {
			return domicile.CountKey{Entity: entity, Year: gr.year, Source: src, Class: c, Dim: dim, Value: v}
		}
		if _, err := g.cfg.Store.Record(ctx, rec, countAdds(key, gr.counted, rec.MechanismName(), gr.dest, pi, spi)); err != nil {
			return err
		}
		res.NewPI += rec.NewPI
		res.NewSPI += rec.NewSPI
		gr.reset()
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
		kind, registered := mechKind[row.Mechanism]
		if !registered {
			kind = domicile.MechanismKind(row.Mechanism)
		}
		counted := !kind.Exemption() && kind != domicile.MechAdequacy && row.Mechanism != "not_regulated"
		gk := strconv.Itoa(row.Date.Year()) + "|" + string(row.Destination) + "|" + row.Mechanism
		gr := groups[gk]
		if gr == nil {
			gr = &importGroup{year: row.Date.Year(), dest: row.Destination, mech: row.Mechanism, counted: counted}
			gr.reset()
			groups[gk] = gr
		}
		ref := g.cfg.Router.PersonKey(row.SubjectID)
		pi, spi, _ := catsInfo(row.Categories)
		if pi {
			gr.pi[ref] = true
		}
		if spi {
			gr.spi[ref] = true
		}
		for _, c := range row.Categories {
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
	ys := make([]int, 0, len(years))
	for y := range years {
		ys = append(ys, y)
	}
	sort.Ints(ys)
	for _, y := range ys {
		cs, err := g.cfg.Store.Breakdown(ctx, entity, y)
		if err != nil {
			return res, err
		}
		res.Counts = append(res.Counts, cs...)
	}
	return res, nil
}
