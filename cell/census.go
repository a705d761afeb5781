package cell

import (
	"context"
	"fmt"

	"domicile"
)

// Census counts what the cell holds (domicile.Census), reading no
// subject's data: ok is false when the cell's store does not count.
// Callers check their reader themselves (the console is for admin and
// auditor tokens).
func (c *Cell) Census(ctx context.Context) (_ domicile.Census, ok bool, err error) {
	cs, ok := c.store.(domicile.Censuser)
	if !ok {
		return domicile.Census{}, false, nil
	}
	n, err := cs.Census(ctx)
	return n, true, err
}

// PendingRequests lists the cell's rights requests in none of the final
// states, by deadline, at most limit, without their subjects or bodies:
// ok is false when the cell's store does not list them.
func (c *Cell) PendingRequests(ctx context.Context, final []string, limit int) (_ []domicile.PendingRequest, ok bool, err error) {
	cs, ok := c.store.(domicile.Censuser)
	if !ok {
		return nil, false, nil
	}
	rs, err := cs.PendingRequests(ctx, final, limit)
	return rs, true, err
}

// ChangeSubjects lists, for a change plan, the cell's subjects whose
// reference sorts after after, at most limit (1..domicile.MaxHoldingsPage),
// each with its jurisdiction and the fields its records hold per kind:
// pseudonymous references and field names, no id and no value. Only an
// admin token plans changes, so only an admin may list them; every
// listing, allowed or refused, is an event of the cell's log (action
// list, resource "subjects") that is durable before the list is
// returned. A store that does not list its subjects is EUnavailable.
func (c *Cell) ChangeSubjects(ctx context.Context, a domicile.Actor, after domicile.SubjectRef, limit int) ([]domicile.SubjectHoldings, error) {
	x := &Access{c: c, actor: a, act: domicile.ActList, res: "subjects"}
	if a.Role != domicile.RoleAdmin {
		return nil, x.deny(ctx, domicile.Errorf(domicile.EForbidden, "the subjects of a cell are listed for an admin's change plan only"))
	}
	sl, ok := c.store.(domicile.SubjectLister)
	if !ok {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s: its store does not list its subjects for a change plan", c.id)
	}
	limit = min(max(limit, 1), domicile.MaxHoldingsPage)
	subs, err := sl.SubjectHoldings(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	if _, err := x.allow(ctx, fmt.Sprintf("change plan: %d subjects", len(subs))); err != nil {
		return nil, logFailure(c, err)
	}
	return subs, nil
}

// MigrationFields returns, per record kind, the fields of the live
// records of subject ref (a reference of this cell), for the transfer
// gate's decision on a cross-border move of plan. It reads on the cell's
// access path as the system (the migration's actor): the reading is an
// event of the subject's trail, durable before the fields are returned.
// A subject the cell does not hold is ErrNotFound.
func (c *Cell) MigrationFields(ctx context.Context, plan string, ref domicile.SubjectRef) (map[string][]string, error) {
	x := &Access{c: c, actor: migrationActor(plan), sub: SubjectKey{Ref: ref}, act: domicile.ActList, res: "fields"}
	sl, ok := c.store.(domicile.SubjectLister)
	if !ok {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s: its store does not list its subjects' fields", c.id)
	}
	// The subjects after ref's predecessor: ref first, if the cell holds it.
	subs, err := sl.SubjectHoldings(ctx, predecessor(ref), 1)
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 || subs[0].Ref != ref {
		return nil, domicile.ErrNotFound
	}
	n := 0
	for _, fs := range subs[0].Fields {
		n += len(fs)
	}
	if _, err := x.allow(ctx, fmt.Sprintf("migration plan=%s: %d kinds, %d fields, for the transfer gate", truncate(plan, 200), len(subs[0].Fields), n)); err != nil {
		return nil, logFailure(c, err)
	}
	if subs[0].Fields == nil {
		return map[string][]string{}, nil
	}
	return subs[0].Fields, nil
}

// predecessor returns the reference just before ref bytewise (ref itself
// when it is all zero bytes, which no subject has).
func predecessor(ref domicile.SubjectRef) domicile.SubjectRef {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] > 0 {
			ref[i]--
			return ref
		}
		ref[i] = 0xff
	}
	return domicile.SubjectRef{}
}
