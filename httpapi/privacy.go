package httpapi

import (
	"domicile/client"
	"net/http"
	"net/url"
	"time"

	"domicile"
	"domicile/i18n"
)

// Bounds of a privacy-page link's lifetime (?ttl= of
// POST /v1/subjects/{id}/privacy-link).
const (
	DefaultLinkTTL = 15 * time.Minute
	MinLinkTTL     = time.Minute
	MaxLinkTTL     = time.Hour
)

// PrivacyLinkNote is the note of a privacy-page link's token.
const PrivacyLinkNote = "privacy-page link"

// PrivacyPagePath is where the privacy page is served.
const PrivacyPagePath = "/privacy/"

// privacyLink mints a short-lived subject token for the page and answers
// the link. The making of the link is an event in the subject's trail
// (cell.Link), committed before the token exists.
func (s *Server) privacyLink(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	q := r.URL.Query()
	lang := ""
	if v := q.Get("lang"); v != "" {
		l, err := i18n.ParseLang(v)
		if err != nil {
			return domicile.FieldErrorf("lang", "must be en or zh-CN")
		}
		lang = string(l)
	}
	ttl := DefaultLinkTTL
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < MinLinkTTL || d > MaxLinkTTL {
			return domicile.FieldErrorf("ttl", "must be a duration from %s to %s, like 15m", "1m", "1h")
		}
		ttl = d
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActNotice)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	secret, id, err := NewTokenSecret()
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	exp := now.Add(ttl)
	if err := c.Link(r.Context(), a, k, "link token "+id+" valid until "+exp.Format(time.RFC3339)); err != nil {
		return err
	}
	// The link acts from the cell's own jurisdiction: a subject reading
	// its own data exercises its right of access, which is not a
	// transfer by the business.
	t := domicile.Token{ID: id, Role: domicile.RoleSubject, Jurisdiction: c.Config().Jurisdiction, Subject: k.Ref.String(), Note: PrivacyLinkNote, Created: now, Expires: exp}
	// Its minting is in the control log, by the app token that asked.
	ev := domicile.ControlEvent{Time: now, Action: domicile.ControlMint, Token: id, Role: t.Role, Jurisdiction: t.Jurisdiction, Expires: exp, Actor: a.TokenID}
	if err := s.control.PutToken(r.Context(), t, HashTokenSecret(secret), ev); err != nil {
		return err
	}
	u := PrivacyPagePath
	if lang != "" {
		u += "?lang=" + lang
	}
	u += "#" + url.Values{"subject": {k.ID}, "token": {secret}, "expires": {exp.Format(time.RFC3339)}}.Encode()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, client.PrivacyLink{URL: u, TokenID: id, Expires: exp})
	return nil
}
