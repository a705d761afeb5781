package transfer

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"domicile"
)

// MechanismView is a registered mechanism with its standing today.
type MechanismView struct {
	Mechanism
	Status Status `json:"status"`
}

func requireAdmin(a domicile.Actor, what string) error {
	if a.Role != domicile.RoleAdmin {
		return domicile.Errorf(domicile.EForbidden, "only an admin token %s", what)
	}
	return nil
}

func requireAdminOrAuditor(a domicile.Actor) error {
	if a.Role != domicile.RoleAdmin && a.Role != domicile.RoleAuditor {
		return domicile.Errorf(domicile.EForbidden, "only an admin or auditor token reads the transfer ledger and registry")
	}
	return nil
}

func (g *Gateway) today(src domicile.Jurisdiction) string {
	return g.cfg.Now().In(zoneOf(src)).Format(time.DateOnly)
}

// PutMechanism registers (or replaces) a mechanism. Admin only.
func (g *Gateway) PutMechanism(ctx context.Context, a domicile.Actor, m Mechanism) (*MechanismView, error) {
	if err := requireAdmin(a, "registers mechanisms"); err != nil {
		return nil, err
	}
	if m.Source == "" {
		m.Source = "CN"
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	m.Updated = g.cfg.Now().UTC()
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := g.cfg.Store.PutMechanism(ctx, m.ID, body); err != nil {
		return nil, err
	}
	i := sort.Search(len(g.mechs), func(i int) bool { return g.mechs[i].ID >= m.ID })
	if i < len(g.mechs) && g.mechs[i].ID == m.ID {
		g.mechs[i] = m
	} else {
		g.mechs = append(g.mechs[:i], append([]Mechanism{m}, g.mechs[i:]...)...)
	}
	return &MechanismView{Mechanism: m, Status: m.StatusOn(g.today(m.Source), g.cfg.Calendar)}, nil
}

// Mechanisms lists the registry with each mechanism's standing today.
func (g *Gateway) Mechanisms(ctx context.Context, a domicile.Actor) ([]MechanismView, error) {
	if err := requireAdminOrAuditor(a); err != nil {
		return nil, err
	}
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]MechanismView, 0, len(g.mechs))
	for _, m := range g.mechs {
		out = append(out, MechanismView{Mechanism: m, Status: m.StatusOn(g.today(m.Source), g.cfg.Calendar)})
	}
	return out, nil
}

// Mechanism returns one registered mechanism.
func (g *Gateway) Mechanism(ctx context.Context, a domicile.Actor, id string) (*MechanismView, error) {
	ms, err := g.Mechanisms(ctx, a)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.ID == id {
			return &m, nil
		}
	}
	return nil, domicile.Errorf(domicile.ENotFound, "no mechanism %q", trunc(id, 64))
}

// SetConsent records that subject id gave (granted) or withdrew a consent,
// with the version of the text the app showed. It is an event in the
// subject's cell log, committed before the consent takes effect. An app
// token or the subject's own token may do it. kind is cross-border,
// sensitive, or a consent one of the deployment's purposes needs.
func (g *Gateway) SetConsent(ctx context.Context, a domicile.Actor, id string, kind domicile.ConsentKind, version string, granted bool) (*domicile.Consent, error) {
	if version == "" || len(version) > 64 {
		return nil, domicile.FieldErrorf("text_version", "must name the version of the consent text shown (1 to 64 bytes)")
	}
	if err := g.knownConsent(kind); err != nil {
		return nil, err
	}
	c, k, err := g.cfg.Router.LocateFor(ctx, a, id, domicile.ActConsent)
	if err != nil {
		return nil, err
	}
	detail := "granted:" + version
	if !granted {
		detail = domicile.ConsentWithdrawnPrefix + version
	}
	if _, err := c.Note(ctx, a, k, domicile.ActConsent, "consent/"+string(kind), detail); err != nil {
		return nil, err
	}
	con := &domicile.Consent{Subject: k.Ref, Kind: kind, TextVersion: version, Granted: granted, Time: g.cfg.Now().UTC()}
	if err := g.cfg.Store.PutConsent(ctx, con); err != nil {
		return nil, err
	}
	return con, nil
}

// knownConsent checks that kind is a consent the gateway or one of the
// deployment's purposes asks for.
func (g *Gateway) knownConsent(kind domicile.ConsentKind) error {
	if kind == domicile.ConsentCrossBorder || kind == domicile.ConsentSensitive {
		return nil
	}
	names := []string{string(domicile.ConsentCrossBorder), string(domicile.ConsentSensitive)}
	for _, p := range g.cfg.Router.Deployment().PurposeConsents() {
		if string(kind) == p {
			return nil
		}
		names = append(names, p)
	}
	return domicile.FieldErrorf("kind", "unknown consent %q; one of: %s", trunc(string(kind), 32), strings.Join(names, ", "))
}

// Consents returns a subject's consents (app or the subject's token). The
// reading is itself a logged event in the subject's trail.
func (g *Gateway) Consents(ctx context.Context, a domicile.Actor, id string) ([]domicile.Consent, error) {
	c, k, err := g.cfg.Router.LocateFor(ctx, a, id, domicile.ActConsent)
	if err != nil {
		return nil, err
	}
	if _, err := c.Note(ctx, a, k, domicile.ActConsent, "consents", "read"); err != nil {
		return nil, err
	}
	kinds := []domicile.ConsentKind{domicile.ConsentCrossBorder, domicile.ConsentSensitive}
	for _, p := range g.cfg.Router.Deployment().PurposeConsents() {
		kinds = append(kinds, domicile.ConsentKind(p))
	}
	var out []domicile.Consent
	for _, kind := range kinds {
		cs, err := g.cfg.Store.Consent(ctx, kind, []domicile.SubjectRef{k.Ref})
		if err != nil {
			return nil, err
		}
		if cs[0] != nil {
			out = append(out, *cs[0])
		}
	}
	return out, nil
}
