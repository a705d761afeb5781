package transfer

// Export: carrying out an allowed decision, an export bundle streamed to
// the recipient, or a read from abroad granted to the cell.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"domicile"
	"domicile/cell"
)

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
	unlock, err := g.lock(ctx, p.entity)
	if err != nil {
		return nil, err
	}
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
	p := &plan{channel: domicile.ChannelRemote, actor: a, src: r.Cell.Jurisdiction, dest: a.Jurisdiction, recipient: "remote:" + string(a.Role),
		purpose: purpose, ground: "general", basis: "consent",
		subjects:    []subj{{id: r.Subject.ID, key: r.Subject, cell: c, person: g.person(r.Subject)}},
		excludedSet: map[int]bool{}}
	p.setFields(r.Fields, r.Categories)
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
