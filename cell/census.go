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
