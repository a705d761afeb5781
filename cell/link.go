package cell

import (
	"context"

	"domicile"
)

// LinkResource is the resource of the event that records a privacy-page
// link made for a subject.
const LinkResource = "privacy-link"

// Link records, in subject s's trail, that actor a made a short-lived
// link to the subject's own privacy page; detail names the link's token
// and its expiry. The event is durable before Link returns, so the token
// that the caller mints next is never in use before its making is logged.
// Only the app makes links: a subject token that could mint tokens for
// itself would outlive its own expiry. Any refusal is logged too.
func (c *Cell) Link(ctx context.Context, a domicile.Actor, s SubjectKey, detail string) error {
	x, err := c.begin(ctx, a, s, domicile.ActNotice, LinkResource)
	if err != nil {
		return err
	}
	if a.Role != domicile.RoleApp {
		return x.deny(ctx, domicile.Errorf(domicile.EForbidden, "only an app token makes a privacy-page link"))
	}
	if _, err := x.allow(ctx, detail); err != nil {
		return logFailure(c, err)
	}
	return nil
}
