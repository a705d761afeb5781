package cell

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"

	"domicile"
)

// Access is one attempt by one actor on one subject of this cell: the only
// way to the subject's data or metadata. The cell's exported operations
// each start one with begin, and an Access keeps the order that every
// caller would otherwise have to remember:
//
//	authorize the role → locate the subject here → purpose limitation →
//	remote-access gate → record the event → read or write
//
// Every attempt on a subject that lives here ends in exactly one access
// event in its trail (allowed, denied, or denied with detail "not-found"),
// plus a key-unwrap event for each unwrap the custodian performed for it.
// A read's event is durable before any data is returned; a write's event
// commits in the same transaction as the data. If the event cannot be
// written the access fails closed.
//
// An Access is used by one goroutine.
type Access struct {
	c     *Cell
	actor domicile.Actor
	sub   SubjectKey
	act   domicile.Action
	res   string
	// stored is the subject's row, once located.
	stored *domicile.StoredSubject
	// pending are events that happened on the way (key unwraps).
	pending []domicile.Event
	// notes are added to the final event's detail: the remote grant, the
	// fields withheld.
	notes []string
	done  bool
}

// begin starts an access of actor a to subject s for act on resource res:
// it applies the role rules and locates the subject in this cell. A
// refusal of the role is logged in the subject's trail; a subject that
// does not live here is ENotFound with no event (there is no trail to
// write it to).
func (c *Cell) begin(ctx context.Context, a domicile.Actor, s SubjectKey, act domicile.Action, res string) (*Access, error) {
	x := &Access{c: c, actor: a, sub: s, act: act, res: res}
	if err := Authorize(a, s, act); err != nil {
		return nil, x.deny(ctx, err)
	}
	if err := c.checkMoved(s.Ref); err != nil {
		return nil, err
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	x.stored = sub
	return x, nil
}

// event builds an event of this access.
func (x *Access) event(act domicile.Action, res string, out domicile.Outcome, detail string) domicile.Event {
	a := x.actor
	return domicile.Event{
		Time: x.c.cfg.Now().UTC(), Cell: x.c.id, Subject: x.sub.Ref.String(),
		Role: a.Role, Jurisdiction: a.Jurisdiction, TokenID: a.TokenID,
		Action: act, Resource: res, Basis: a.Basis(), Reference: a.Reference,
		Outcome: out, Detail: detail,
	}
}

// commit makes the access's events (the pending ones and, unless final is
// nil, the final one) durable with ops, in one batch.
func (x *Access) commit(ctx context.Context, final *domicile.Event, ops ...domicile.Op) ([]*domicile.LogEntry, error) {
	evs := x.pending
	if final != nil {
		evs = append(append([]domicile.Event(nil), x.pending...), *final)
	}
	les, err := x.c.entries(evs, x.sub.Ref)
	if err != nil {
		return nil, err
	}
	if err := x.c.store.Commit(ctx, &domicile.Batch{Ops: ops, Events: les}); err != nil {
		return nil, err
	}
	x.pending = nil
	x.done = true
	return les, nil
}

// detail joins the access's notes and extra into an event detail.
func (x *Access) detail(extra string) string {
	parts := x.notes
	if extra != "" {
		parts = append(append([]string(nil), parts...), extra)
	}
	return strings.Join(parts, "; ")
}

// deny records the refusal of this access and returns cause; if the
// refusal cannot be logged, the access fails closed with that error.
func (x *Access) deny(ctx context.Context, cause error) error {
	ev := x.event(x.act, x.res, domicile.Denied, x.detail(errorDetail(cause)))
	if _, err := x.commit(ctx, &ev); err != nil {
		return logFailure(x.c, err)
	}
	return cause
}

// missing records an attempt on something the subject does not have (a
// record, an object) as a denied event with detail "not-found", and
// returns cause. So an operator cannot map what a subject holds without
// appearing in the subject's trail.
func (x *Access) missing(ctx context.Context, cause error) error {
	ev := x.event(x.act, x.res, domicile.Denied, x.detail("not-found"))
	if _, err := x.commit(ctx, &ev); err != nil {
		return logFailure(x.c, err)
	}
	return cause
}

// allow commits the allowed event of this access with ops and returns its
// log entry.
func (x *Access) allow(ctx context.Context, detail string, ops ...domicile.Op) (*domicile.LogEntry, error) {
	ev := x.event(x.act, x.res, domicile.Allowed, x.detail(detail))
	les, err := x.commit(ctx, &ev, ops...)
	if err != nil {
		return nil, err
	}
	return les[len(les)-1], nil
}

// allowRead commits the allowed event of a read, failing closed.
func (x *Access) allowRead(ctx context.Context) error {
	if _, err := x.allow(ctx, ""); err != nil {
		return logFailure(x.c, err)
	}
	return nil
}

// dataKey fetches the subject's data key of generation gen; an unwrap in
// custody becomes a pending key-unwrap event of this access.
func (x *Access) dataKey(ctx context.Context, gen uint8) ([]byte, error) {
	return x.c.keys.DataKey(context.WithValue(ctx, reqKey{}, x), x.c.custodyAccess(x), x.sub.Ref, gen)
}

// purpose applies purpose limitation (PIPL Arts. 6 and 29, GDPR Art.
// 5(1)(b)) to a read by the app of records of kinds (all kinds when
// kinds is nil; domicile.ObjectKind for objects): the purpose must be
// declared, must read at least one of the kinds, and, when it needs the
// subject's consent, the consent must be given now. Other actors read
// under their own rules (the subject itself; operators and authorities
// with a justification).
func (x *Access) purpose(ctx context.Context, kinds ...string) (*domicile.Purpose, error) {
	if x.actor.Role != domicile.RoleApp {
		return nil, nil
	}
	dep := x.c.deployment()
	p := dep.Purpose(x.actor.Purpose)
	if p == nil {
		return nil, &domicile.Error{Code: domicile.EForbidden, Field: "Domicile-Purpose", Message: "purpose " + quote(x.actor.Purpose) + " is not declared by the deployment"}
	}
	if len(kinds) > 0 && !slices.ContainsFunc(kinds, p.ReadsKind) {
		what := kinds[0] + " records"
		if kinds[0] == domicile.ObjectKind {
			what = "objects"
		}
		return nil, domicile.Errorf(domicile.EForbidden, "purpose %q does not read %s (deployment rule purposes.%s)", p.Name, what, p.Name)
	}
	if p.Consent != "" {
		ok, err := x.c.consented(ctx, x.sub.Ref, p.Consent)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, domicile.Errorf(domicile.EForbidden, "purpose %q reads only with the subject's consent %q, which is not given (deployment rule purposes.%s)", p.Name, p.Consent, p.Name)
		}
	}
	if p.Unrestricted() {
		return nil, nil
	}
	return p, nil
}

// gate applies the remote-access gate when the actor acts from outside the
// cell's jurisdiction: such a read is a transfer abroad. fields names, per
// kind, the fields the read would return. It returns nil for a read at
// home.
func (x *Access) gate(ctx context.Context, fields map[string][]string) (*RemoteGrant, error) {
	if x.c.cfg.Gate == nil || !x.c.Remote(x.actor) {
		return nil, nil
	}
	cats := map[string]domicile.Category{}
	dep := x.c.deployment()
	for kind, fs := range fields {
		k := dep.Kind(kind)
		for _, f := range fs {
			cat := domicile.Personal
			if k != nil {
				if c, ok := k.Fields[f]; ok {
					cat = c
				}
			}
			cats[kind+"."+f] = cat
		}
	}
	g, err := x.c.cfg.Gate.RemoteAccess(ctx, RemoteRead{Cell: x.c.Config(), Actor: x.actor, Subject: x.sub, Stored: x.stored, Fields: fields, Categories: cats})
	if err != nil {
		return nil, err
	}
	if g == nil {
		g = &RemoteGrant{}
	}
	note := domicile.RemoteReadPrefix + string(x.actor.Jurisdiction)
	if g.Law != "" {
		note += " under " + g.Law
	}
	if g.Mechanism != "" {
		note += " (" + g.Mechanism + ")"
	}
	if g.Transfer != "" {
		note += " counted as transfer " + g.Transfer
	}
	x.notes = append(x.notes, note)
	return g, nil
}

// narrow returns a record's body with only the fields the purpose and the
// remote grant allow, and the names of the fields withheld.
func (x *Access) narrow(p *domicile.Purpose, g *RemoteGrant, rec *domicile.Record) error {
	if p == nil && (g == nil || g.Fields == nil) {
		return nil
	}
	kind := x.c.deployment().Kind(rec.Kind)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Data, &m); err != nil {
		return domicile.Errorf(domicile.EInternal, "stored record %s/%s is not a JSON object", rec.Kind, rec.ID)
	}
	var withheld []string
	for f := range m {
		cat := domicile.Personal
		if kind != nil {
			if c, ok := kind.Fields[f]; ok {
				cat = c
			}
		}
		keep := p == nil || p.ReadsField(rec.Kind, f, cat)
		if keep && g != nil && g.Fields != nil {
			keep = slices.Contains(g.Fields[rec.Kind], f)
		}
		if !keep {
			delete(m, f)
			withheld = append(withheld, f)
		}
	}
	if len(withheld) == 0 {
		return nil
	}
	sort.Strings(withheld)
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	rec.Data, rec.Withheld = data, withheld
	return nil
}

// RemoteRead is a read of a subject's data from outside the cell's
// jurisdiction, as the gate sees it.
type RemoteRead struct {
	Cell    domicile.CellConfig
	Actor   domicile.Actor
	Subject SubjectKey
	Stored  *domicile.StoredSubject
	// Fields names, per record kind (domicile.ObjectKind for objects), the
	// fields the read would return; Categories gives the category of each
	// "kind.field".
	Fields     map[string][]string
	Categories map[string]domicile.Category
}

// RemoteGrant is the gate's permission for a remote read.
type RemoteGrant struct {
	// Fields names, per kind, the fields the covering mechanism's scope
	// lets leave; nil means every field asked for.
	Fields map[string][]string
	// Law is the law mechanism the read falls under; Mechanism the
	// registered mechanism relied on, if any.
	Law, Mechanism string
	// Transfer is the ledger entry that counted the read, if the law
	// counts it (the first read of the subject this year).
	Transfer string
}

// RemoteGate decides a remote read: an actor acting from another
// jurisdiction than the cell's reads data of a subject. It must count the
// subject against the transfer thresholds when it allows, and return the
// refusal (a *domicile.Error) otherwise. It must not log: the cell
// records the read's one event, with the grant in its detail.
type RemoteGate interface {
	RemoteAccess(ctx context.Context, r RemoteRead) (*RemoteGrant, error)
}

// Consents tells whether a subject has given a consent (and not withdrawn
// it); purposes that need a consent ask it on every read, so a withdrawal
// takes effect at once.
type Consents interface {
	Consented(ctx context.Context, ref domicile.SubjectRef, consent string) (bool, error)
}

func (c *Cell) consented(ctx context.Context, ref domicile.SubjectRef, consent string) (bool, error) {
	if c.cfg.Consents == nil {
		return false, nil
	}
	return c.cfg.Consents.Consented(ctx, ref, consent)
}

// Authorize applies the role rules to an attempt of actor a on subject s:
//
//   - admin and auditor reach no subject data (an auditor reads a
//     subject's trail, which SubjectEvents allows);
//   - a subject token reaches only its own subject;
//   - the app reads, writes, lists, exports and records consents and
//     notices; it erases;
//   - operators and authorities read and list, with a justification;
//   - the system records notices and transfers.
func Authorize(a domicile.Actor, s SubjectKey, act domicile.Action) error {
	switch a.Role {
	case domicile.RoleAdmin:
		return domicile.Errorf(domicile.EForbidden, "an admin token runs the deployment and reads no subject data")
	case domicile.RoleAuditor:
		return domicile.Errorf(domicile.EForbidden, "an auditor reads logs and proofs, not subject data")
	case domicile.RoleSubject:
		if a.Subject != s.Ref.String() {
			return domicile.Errorf(domicile.EForbidden, "a subject token reaches only its own subject's data")
		}
		if act == domicile.ActExport || act == domicile.ActTransfer {
			return domicile.Errorf(domicile.EForbidden, "a subject token does not %s", act)
		}
		return nil
	case domicile.RoleApp:
		return nil
	case domicile.RoleSystem:
		switch act {
		case domicile.ActNotice, domicile.ActTransfer:
			return nil
		}
		return domicile.Errorf(domicile.EForbidden, "the system does not %s subject data", act)
	case domicile.RoleOperator, domicile.RoleAuthority:
		if a.Reason == "" || a.Reference == "" {
			return domicile.Errorf(domicile.EForbidden, "an %s access needs a justification", a.Role)
		}
		switch act {
		case domicile.ActRead, domicile.ActList:
			return nil
		}
		return domicile.Errorf(domicile.EForbidden, "an %s may read with a justification but not change subject data", a.Role)
	}
	return domicile.Errorf(domicile.EForbidden, "role %q may not access subject data", a.Role)
}

// isNotFound reports whether err is the store's "no such row".
func isNotFound(err error) bool { return errors.Is(err, domicile.ErrNotFound) }
