package httpapi

import (
	"bytes"
	"context"
	"domicile/client"
	"errors"
	"net/http"
	"strings"
	"time"

	"domicile"
	"domicile/authority"
	"domicile/cell"
	"domicile/i18n"
	"domicile/notice"
	"domicile/report"
	"domicile/tlog"
)

// Reports is what the communication routes need: the document sources,
// the authority request desk, the notice store and sender, and a planner
// that compares the deployment in force with a new deployment file.
type Reports struct {
	Sources *report.Sources
	Desk    *authority.Desk
	Notices notice.Store
	Sender  *notice.Sender
	// Plan makes (and stores) the change plan from the deployment in
	// force to the deployment file data, named name.
	Plan func(ctx context.Context, name string, data []byte) (*notice.Plan, error)
	Now  func() time.Time
}

// reportRoutes installs the data statement, transparency report,
// authority request and change notice routes.
func (s *Server) reportRoutes(rp Reports) {
	if rp.Now == nil {
		rp.Now = time.Now
	}
	if rp.Sources.Logs == nil {
		rp.Sources.Logs = func(cell string) *tlog.Log { return s.cfg.Logs[cell] }
	}
	h := &reportHandlers{s: s, rp: rp}
	s.handleFunc("GET /v1/subjects/{id}/statement", s.auth(h.statement))
	s.handleFunc("GET /v1/transparency", s.auth(h.transparency))
	s.handleFunc("GET /v1/cells/{cell}/transparency", s.auth(h.cellTransparency))
	s.handleFunc("POST /v1/authority/requests", s.auth(h.recordRequest))
	s.handleFunc("GET /v1/authority/requests", s.auth(h.listRequests))
	s.handleFunc("GET /v1/authority/requests/{rid}", s.auth(h.getRequest))
	s.handleFunc("POST /v1/authority/requests/{rid}/review", s.auth(h.reviewRequest))
	s.handleFunc("POST /v1/authority/requests/{rid}/outcome", s.auth(h.decideRequest))
	s.handleFunc("POST /v1/authority/requests/{rid}/disclosure", s.auth(h.disclose))
	s.handleFunc("POST /v1/notices/plans", s.auth(h.makePlan))
	s.handleFunc("GET /v1/notices/plans/{pid}", s.auth(h.getPlan))
	s.handleFunc("POST /v1/notices/plans/{pid}/send", s.auth(h.sendPlan))
	s.handleFunc("POST /v1/notices/{nid}/ack", s.auth(h.ack))
}

type reportHandlers struct {
	s  *Server
	rp Reports
}

// docLang picks the language: ?lang= first, then Accept-Language.
func docLang(r *http.Request) (i18n.Lang, error) {
	if l := r.URL.Query().Get("lang"); l != "" {
		lang, err := i18n.ParseLang(l)
		if err != nil {
			return "", domicile.FieldErrorf("lang", "must be en or zh-CN")
		}
		return lang, nil
	}
	return i18n.Match(r.Header.Get("Accept-Language")), nil
}

// docFormat picks the format: ?format= first, then Accept.
func docFormat(r *http.Request) (report.Format, error) {
	if f := r.URL.Query().Get("format"); f != "" {
		ff, err := report.ParseFormat(f)
		if err != nil {
			return "", domicile.FieldErrorf("format", "must be json, markdown or html")
		}
		return ff, nil
	}
	acc := r.Header.Get("Accept")
	switch {
	case strings.Contains(acc, "text/html"):
		return report.HTML, nil
	case strings.Contains(acc, "text/markdown"):
		return report.Markdown, nil
	}
	return report.JSON, nil
}

// parsePeriod reads ?from= and ?to= (RFC 3339 or YYYY-MM-DD); zero
// values are left for the caller's defaults.
func parsePeriod(r *http.Request) (report.Period, error) {
	var p report.Period
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &p.From}, {"to", &p.To}} {
		v := r.URL.Query().Get(f.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t, err = time.Parse("2006-01-02", v)
		}
		if err != nil {
			return p, domicile.FieldErrorf(f.name, "must be a date (YYYY-MM-DD) or an RFC 3339 time")
		}
		*f.dst = t.UTC()
	}
	if !p.From.IsZero() && !p.To.IsZero() && !p.To.After(p.From) {
		return p, domicile.FieldErrorf("to", "must be after from")
	}
	return p, nil
}

func (h *reportHandlers) writeDoc(w http.ResponseWriter, doc any, f report.Format, lang i18n.Lang) error {
	var buf bytes.Buffer
	if err := report.Render(&buf, doc, f); err != nil {
		return err
	}
	ct := map[report.Format]string{report.JSON: "application/json", report.Markdown: "text/markdown; charset=utf-8", report.HTML: "text/html; charset=utf-8"}[f]
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Language", string(lang))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept, Accept-Language")
	if f == report.HTML {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	}
	w.Write(buf.Bytes())
	return nil
}

func (h *reportHandlers) statement(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	lang, err := docLang(r)
	if err == nil {
		var f report.Format
		if f, err = docFormat(r); err == nil {
			var p report.Period
			if p, err = parsePeriod(r); err == nil {
				var st *report.Statement
				if st, err = h.rp.Sources.Statement(r.Context(), a, r.PathValue("id"), p, lang); err == nil {
					setCell(w, st.Home.Cell)
					return h.writeDoc(w, st, f, lang)
				}
			}
		}
	}
	return err
}

func (h *reportHandlers) transparency(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if a.Role != domicile.RoleAdmin && a.Role != domicile.RoleAuditor {
		return domicile.Errorf(domicile.EForbidden, "the transparency report is for admin and auditor tokens")
	}
	lang, err := docLang(r)
	if err != nil {
		return err
	}
	f, err := docFormat(r)
	if err != nil {
		return err
	}
	p, err := h.transparencyPeriod(r)
	if err != nil {
		return err
	}
	t, err := h.rp.Sources.Transparency(r.Context(), p, lang)
	if err != nil {
		return err
	}
	return h.writeDoc(w, t, f, lang)
}

func requireRole(a domicile.Actor, what string, roles ...domicile.Role) error {
	for _, r := range roles {
		if a.Role == r {
			return nil
		}
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return domicile.Errorf(domicile.EForbidden, "%s is for %s tokens", what, strings.Join(names, " or "))
}

func (h *reportHandlers) recordRequest(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "recording an authority request", domicile.RoleAdmin); err != nil {
		return err
	}
	var in authority.NewRequest
	if err := decodeJSON(r, maxJSONBody, &in); err != nil {
		return err
	}
	req, err := h.rp.Desk.Record(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, req)
	return nil
}

func (h *reportHandlers) listRequests(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "the authority request register", domicile.RoleAdmin, domicile.RoleAuditor); err != nil {
		return err
	}
	reqs, err := h.rp.Desk.List(r.Context())
	if err != nil {
		return err
	}
	if reqs == nil {
		reqs = []*authority.Request{}
	}
	writeJSON(w, http.StatusOK, struct {
		Requests []*authority.Request `json:"requests"`
	}{reqs})
	return nil
}

func (h *reportHandlers) getRequest(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "the authority request register", domicile.RoleAdmin, domicile.RoleAuditor); err != nil {
		return err
	}
	req, err := h.rp.Desk.Get(r.Context(), r.PathValue("rid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (h *reportHandlers) reviewRequest(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "reviewing an authority request", domicile.RoleAdmin); err != nil {
		return err
	}
	var in struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(r, maxJSONBody, &in); err != nil {
		return err
	}
	req, err := h.rp.Desk.Review(r.Context(), r.PathValue("rid"), in.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (h *reportHandlers) decideRequest(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "deciding an authority request", domicile.RoleAdmin); err != nil {
		return err
	}
	var in authority.Outcome
	if err := decodeJSON(r, maxJSONBody, &in); err != nil {
		return err
	}
	req, err := h.rp.Desk.Decide(r.Context(), r.PathValue("rid"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (h *reportHandlers) disclose(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	pkg, err := h.rp.Desk.Disclose(r.Context(), a, r.PathValue("rid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pkg)
	return nil
}

// PlanRequest asks for a change plan from the deployment in force to a new
// deployment file.
type PlanRequest struct {
	Name       string `json:"name"`
	Deployment string `json:"deployment"`
}

func (h *reportHandlers) makePlan(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "change plans", domicile.RoleAdmin); err != nil {
		return err
	}
	var in PlanRequest
	if err := decodeJSON(r, 1<<20, &in); err != nil {
		return err
	}
	if in.Name == "" {
		in.Name = "deployment.yaml"
	}
	p, err := h.rp.Plan(r.Context(), in.Name, []byte(in.Deployment))
	if err != nil {
		return err
	}
	return h.writePlan(w, r, p, http.StatusCreated)
}

// PlanView is a plan with the delivery state of its notices.
type PlanView struct {
	*notice.Plan
	States []notice.State `json:"states"`
}

func (h *reportHandlers) writePlan(w http.ResponseWriter, r *http.Request, p *notice.Plan, status int) error {
	if f := r.URL.Query().Get("format"); f != "" && f != "json" {
		lang, err := docLang(r)
		if err != nil {
			return err
		}
		ff, err := docFormat(r)
		if err != nil {
			return err
		}
		return h.writeDoc(w, p.Reports[string(lang)], ff, lang)
	}
	sts, err := h.rp.Notices.Notices(r.Context(), p.ID)
	if err != nil {
		return err
	}
	if sts == nil {
		sts = []notice.State{}
	}
	writeJSON(w, status, PlanView{Plan: p, States: sts})
	return nil
}

func (h *reportHandlers) getPlan(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "change plans", domicile.RoleAdmin); err != nil {
		return err
	}
	p, err := h.rp.Notices.Plan(r.Context(), r.PathValue("pid"))
	if errors.Is(err, domicile.ErrNotFound) {
		err = domicile.Errorf(domicile.ENotFound, "no change plan %q", truncate(r.PathValue("pid"), 32))
	}
	if err != nil {
		return err
	}
	return h.writePlan(w, r, p, http.StatusOK)
}

func (h *reportHandlers) sendPlan(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireRole(a, "sending notices", domicile.RoleAdmin); err != nil {
		return err
	}
	var in client.SendRequest
	if err := decodeJSON(r, maxJSONBody, &in); err != nil {
		return err
	}
	if !strings.HasPrefix(in.Webhook, "https://") && !strings.HasPrefix(in.Webhook, "http://") {
		return domicile.FieldErrorf("webhook", "must be an http or https URL")
	}
	p, err := h.rp.Notices.Plan(r.Context(), r.PathValue("pid"))
	if errors.Is(err, domicile.ErrNotFound) {
		err = domicile.Errorf(domicile.ENotFound, "no change plan %q", truncate(r.PathValue("pid"), 32))
	}
	if err != nil {
		return err
	}
	h.rp.Sender.Start(p.ID, in.Webhook)
	writeJSON(w, http.StatusAccepted, struct {
		Plan    string `json:"plan"`
		Notices int    `json:"notices"`
	}{p.ID, len(p.Notices)})
	return nil
}

func (h *reportHandlers) ack(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	st, err := h.rp.Notices.Notice(r.Context(), r.PathValue("nid"))
	if errors.Is(err, domicile.ErrNotFound) {
		err = domicile.Errorf(domicile.ENotFound, "no notice %q", truncate(r.PathValue("nid"), 32))
	}
	if err != nil {
		return err
	}
	ref, err := domicile.ParseSubjectRef(st.Notice.SubjectRef)
	if err != nil {
		return err
	}
	c := h.s.router.CellByID(st.Cell)
	if c == nil {
		return domicile.Errorf(domicile.EUnavailable, "the notice's cell %s is not served by this process", st.Cell)
	}
	k := cellKey(ref)
	// The role rules (cell.Authorize) let the app and the subject's own
	// token acknowledge; any other attempt is refused and logged.
	if _, err := c.Note(r.Context(), a, k, domicile.ActNotice, "notice/"+st.Notice.ID, "acknowledged"); err != nil {
		return err
	}
	if err := h.rp.Notices.Acknowledge(r.Context(), st.Notice.ID, h.rp.Now().UTC()); err != nil {
		return err
	}
	st, err = h.rp.Notices.Notice(r.Context(), st.Notice.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func cellKey(ref domicile.SubjectRef) cell.SubjectKey { return cell.SubjectKey{Ref: ref} }
