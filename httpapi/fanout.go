package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"domicile"
	"domicile/report"
)

// The deployment-wide figures through a router: the router asks each cell
// process for its part, with the caller's own credential (the cell
// authenticates it, as it does every request), and combines the parts
// with the same functions the embedded runtime uses (report.Sources).

// transparencyPeriod reads the report's period: ?from= and ?to=, by
// default the calendar year so far.
func (h *reportHandlers) transparencyPeriod(r *http.Request) (report.Period, error) {
	p, err := parsePeriod(r)
	if err != nil {
		return p, err
	}
	now := h.rp.Now().UTC()
	if p.To.IsZero() {
		p.To = now.Add(time.Second)
	}
	if p.From.IsZero() {
		p.From = time.Date(now.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if !p.To.After(p.From) {
		return p, domicile.FieldErrorf("to", "must be after from")
	}
	return p, nil
}

// cellTransparency answers GET /v1/cells/{cell}/transparency: one cell's
// part of the transparency report (its log figures of the period and the
// checkpoint they were counted at), for admin and auditor tokens. A
// router combines the parts of every cell.
func (h *reportHandlers) cellTransparency(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if a.Role != domicile.RoleAdmin && a.Role != domicile.RoleAuditor {
		return domicile.Errorf(domicile.EForbidden, "the transparency report is for admin and auditor tokens")
	}
	id := r.PathValue("cell")
	if h.s.router.Deployment().Cell(id) == nil {
		return domicile.Errorf(domicile.ENotFound, "no cell %q", truncate(id, 32))
	}
	p, err := h.transparencyPeriod(r)
	if err != nil {
		return err
	}
	part, err := h.rp.Sources.CellFigures(r.Context(), id, p)
	if err != nil {
		return err
	}
	setCell(w, id)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, part)
	return nil
}

// credentialKey is the context key of the caller's Authorization header,
// which the router passes on to the cells it asks for their parts.
type credentialKey struct{}

// withCredential serves a deployment-wide route the router answers
// itself from every cell's part: the caller's Authorization goes with the
// context, so that each cell authenticates the caller itself.
func (p *Proxy) withCredential(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithValue(r.Context(), credentialKey{}, r.Header.Get("Authorization"))
	p.cfg.Own.ServeHTTP(w, r.WithContext(ctx))
}

// maxCellPart bounds a cell's answer with its part of a figure.
const maxCellPart = 4 << 20

// CellFigures asks cell for its part of the transparency report of the
// period, with the caller's credential; it is the router's
// report.Sources.Remote. A cell that cannot be asked is an EUnavailable
// error naming it; a cell's refusal (401, 403) is relayed.
func (p *Proxy) CellFigures(ctx context.Context, cell string, period report.Period) (*report.CellFigures, error) {
	q := url.Values{"from": {period.From.UTC().Format(time.RFC3339Nano)}, "to": {period.To.UTC().Format(time.RFC3339Nano)}}
	var part report.CellFigures
	if err := p.askCell(ctx, http.MethodGet, cell, "/v1/cells/"+url.PathEscape(cell)+"/transparency?"+q.Encode(), nil, &part); err != nil {
		return nil, err
	}
	return &part, nil
}

// askCell sends one request of a fan-out to cell, with the caller's
// credential from ctx, and decodes its JSON answer into out.
func (p *Proxy) askCell(ctx context.Context, method, cell, pathQuery string, body io.Reader, out any) error {
	base := p.target(cell)
	if base == nil {
		return domicile.Errorf(domicile.ENotFound, "no cell %q in the deployment", truncate(cell, 32))
	}
	u, err := url.Parse(base.String() + pathQuery)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if c, _ := ctx.Value(credentialKey{}).(string); c != "" {
		req.Header.Set("Authorization", c)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		p.setUp(cell, false)
		return &domicile.Error{Code: domicile.EUnavailable, RetryAfter: p.cfg.RetryAfter,
			Message: fmt.Sprintf("cell %s could not be asked (%s)", cell, cause(err))}
	}
	defer resp.Body.Close()
	p.setUp(cell, true)
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCellPart+1))
	if err != nil || len(b) > maxCellPart {
		return &domicile.Error{Code: domicile.EUnavailable, RetryAfter: p.cfg.RetryAfter, Message: fmt.Sprintf("cell %s did not answer in full", cell)}
	}
	if resp.StatusCode/100 != 2 {
		var prob struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(b, &prob)
		code := domicile.EUnavailable
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			code = domicile.EUnauthorized
		case http.StatusForbidden:
			code = domicile.EForbidden
		}
		e := &domicile.Error{Code: code, Message: fmt.Sprintf("cell %s answered %d: %s", cell, resp.StatusCode, truncate(prob.Detail, 256))}
		if code == domicile.EUnavailable {
			e.RetryAfter = p.cfg.RetryAfter
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return domicile.Errorf(domicile.EUnavailable, "cell %s answered with a malformed part: %v", cell, err)
	}
	return nil
}
