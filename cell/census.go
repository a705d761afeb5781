package cell

import (
	"context"

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
