package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"domicile"
	"domicile/cell"
	"domicile/client"
	"domicile/notice"
	"domicile/rights"
)

// The cells' parts of the deployment-wide routes that a router answers
// from every cell process: the subjects a change plan counts, the
// delivery of a plan's notices, the census of the data map and the open
// rights requests. Each is a route of one cell (/v1/cells/{cell}/…) that
// the cell process authenticates and answers itself; the embedded runtime
// answers the same routes for the cells it serves.

// CellSubjectsPage is the answer of GET /v1/cells/{cell}/subjects: a page
// of the cell's subjects as a change plan counts them (pseudonymous
// references and field names, no id and no value).
type CellSubjectsPage struct {
	Cell     string               `json:"cell"`
	Subjects []notice.SubjectInfo `json:"subjects"`
	// Next is the reference to ask after for the next page (?after=);
	// empty on the last page.
	Next string `json:"next,omitempty"`
}

// CellNotices is the answer of GET /v1/cells/{cell}/notices/plans/{pid}
// and of its send: how many of the plan's notices are for the cell's
// subjects, which the cell delivers and logs.
type CellNotices struct {
	Plan    string `json:"plan"`
	Cell    string `json:"cell"`
	Notices int    `json:"notices"`
}

// CellCensus is the answer of GET /v1/cells/{cell}/census: the cell's
// census, or why it has none.
type CellCensus struct {
	Cell    string          `json:"cell"`
	Counted bool            `json:"counted"`
	Reason  string          `json:"reason,omitempty"`
	Census  domicile.Census `json:"census"`
}

// CellPending is the answer of GET /v1/cells/{cell}/requests/pending:
// the cell's rights requests in none of the final states asked for, by
// deadline; Listed is false when the cell's store does not list them.
type CellPending struct {
	Cell     string                    `json:"cell"`
	Listed   bool                      `json:"listed"`
	Requests []domicile.PendingRequest `json:"requests"`
}

// CellParts asks the cells a process does not serve for their parts of
// the console's figures: a router's Proxy, with the caller's credential.
// An error is a *domicile.Error naming the cell.
type CellParts interface {
	CellCensus(ctx context.Context, cell string) (*CellCensus, error)
	CellPending(ctx context.Context, cell string, final []string, limit int) (*CellPending, error)
}

// cellConsoleRoutes installs the cells' parts of the console's figures.
func (s *Server) cellConsoleRoutes() {
	s.handleFunc("GET /v1/cells/{cell}/census", s.auth(s.cellCensus))
	s.handleFunc("GET /v1/cells/{cell}/requests/pending", s.auth(s.cellPending))
	s.handleFunc("GET /v1/cells/{cell}/subjects", s.auth(s.cellSubjects))
}

// servedCell returns the cell the path names, if this process serves it.
func (s *Server) servedCell(r *http.Request) (*cell.Cell, error) {
	id := r.PathValue("cell")
	if s.router.Deployment().Cell(id) == nil {
		return nil, domicile.Errorf(domicile.ENotFound, "no cell %q", truncate(id, 32))
	}
	if err := s.router.Serves(id); err != nil {
		return nil, err
	}
	return s.router.CellByID(id), nil
}

// cellCensus answers one cell's census (admin and auditor tokens).
func (s *Server) cellCensus(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireAdminOrAuditor(a, "the data map"); err != nil {
		return err
	}
	c, err := s.servedCell(r)
	if err != nil {
		return err
	}
	n, ok, err := c.Census(r.Context())
	if err != nil {
		return err
	}
	out := CellCensus{Cell: c.ID(), Counted: ok, Census: n}
	if !ok {
		out.Reason = storeNoCount
	}
	setCell(w, c.ID())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// storeNoCount is the reason a cell whose store does not count is not
// on the data map.
const storeNoCount = "the cell's store does not count its holdings"

// cellPending answers one cell's pending rights requests (admin and
// auditor tokens): ?final= (repeated) are the states left out, ?limit=
// at most rights.MaxOpenPerCell.
func (s *Server) cellPending(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireAdminOrAuditor(a, "the open rights requests"); err != nil {
		return err
	}
	c, err := s.servedCell(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	final := q["final"]
	if len(final) > 16 {
		return domicile.FieldErrorf("final", "at most 16 states")
	}
	limit := rights.MaxOpenPerCell
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > rights.MaxOpenPerCell {
			return domicile.FieldErrorf("limit", "must be a number from 1 to %d", rights.MaxOpenPerCell)
		}
		limit = n
	}
	rs, ok, err := c.PendingRequests(r.Context(), final, limit)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []domicile.PendingRequest{}
	}
	setCell(w, c.ID())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, CellPending{Cell: c.ID(), Listed: ok, Requests: rs})
	return nil
}

// cellSubjects answers a page of one cell's subjects for a change plan
// (cell.ChangeSubjects: admin tokens, each page an event of the cell's
// log): ?after= is the last reference of the previous page.
func (s *Server) cellSubjects(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	c, err := s.servedCell(r)
	if err != nil {
		return err
	}
	var after domicile.SubjectRef
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = domicile.ParseSubjectRef(v); err != nil {
			return domicile.FieldErrorf("after", "must be a subject reference (64 hex digits)")
		}
	}
	limit := domicile.MaxHoldingsPage
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > domicile.MaxHoldingsPage {
			return domicile.FieldErrorf("limit", "must be a number from 1 to %d", domicile.MaxHoldingsPage)
		}
		limit = n
	}
	subs, err := c.ChangeSubjects(r.Context(), a, after, limit)
	if err != nil {
		return err
	}
	out := CellSubjectsPage{Cell: c.ID(), Subjects: make([]notice.SubjectInfo, 0, len(subs))}
	for _, h := range subs {
		out.Subjects = append(out.Subjects, notice.SubjectInfo{Ref: h.Ref.String(), Jurisdiction: h.Jurisdiction, Fields: h.Fields})
	}
	if len(subs) == limit {
		out.Next = subs[len(subs)-1].Ref.String()
	}
	setCell(w, c.ID())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// SubjectsOf lists every subject of a cell this process serves, for a
// change plan, page by page through cell.ChangeSubjects with actor a
// (each page logged in the cell). A cell served by another process is
// its Serves error.
func SubjectsOf(ctx context.Context, c *cell.Cell, a domicile.Actor) ([]notice.SubjectInfo, error) {
	var out []notice.SubjectInfo
	var after domicile.SubjectRef
	for {
		subs, err := c.ChangeSubjects(ctx, a, after, domicile.MaxHoldingsPage)
		if err != nil {
			return nil, err
		}
		for _, h := range subs {
			out = append(out, notice.SubjectInfo{Ref: h.Ref.String(), Jurisdiction: h.Jurisdiction, Fields: h.Fields})
		}
		if len(subs) < domicile.MaxHoldingsPage {
			return out, nil
		}
		after = subs[len(subs)-1].Ref
	}
}

// cellNoticeRoutes installs a cell's part of a plan's delivery.
func (h *reportHandlers) cellNoticeRoutes() {
	h.s.handleFunc("GET /v1/cells/{cell}/notices/plans/{pid}", h.s.auth(h.cellPlanNotices))
	h.s.handleFunc("POST /v1/cells/{cell}/notices/plans/{pid}/send", h.s.auth(h.cellSendPlan))
}

// cellPlan returns the plan the path names and the number of its
// notices for the cell the path names, which this process serves
// (admin tokens).
func (h *reportHandlers) cellPlan(r *http.Request, a domicile.Actor) (*notice.Plan, *cell.Cell, int, error) {
	if err := requireRole(a, "sending notices", domicile.RoleAdmin); err != nil {
		return nil, nil, 0, err
	}
	c, err := h.s.servedCell(r)
	if err != nil {
		return nil, nil, 0, err
	}
	p, err := h.plan(r)
	if err != nil {
		return nil, nil, 0, err
	}
	n := 0
	for _, pn := range p.Notices {
		if pn.Cell == c.ID() {
			n++
		}
	}
	return p, c, n, nil
}

// plan returns the stored plan the path names.
func (h *reportHandlers) plan(r *http.Request) (*notice.Plan, error) {
	p, err := h.rp.Notices.Plan(r.Context(), r.PathValue("pid"))
	if errors.Is(err, domicile.ErrNotFound) {
		err = domicile.Errorf(domicile.ENotFound, "no change plan %q", truncate(r.PathValue("pid"), 32))
	}
	return p, err
}

// cellPlanNotices answers how many of a plan's notices the cell would
// deliver: a router asks every cell of a plan before it lets any send.
func (h *reportHandlers) cellPlanNotices(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	p, c, n, err := h.cellPlan(r, a)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	writeJSON(w, http.StatusOK, CellNotices{Plan: p.ID, Cell: c.ID(), Notices: n})
	return nil
}

// cellSendPlan starts delivering the plan's notices to the cell's
// subjects; each delivery is logged in the subject's trail here.
func (h *reportHandlers) cellSendPlan(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	p, c, n, err := h.cellPlan(r, a)
	if err != nil {
		return err
	}
	hook, err := webhookOf(r)
	if err != nil {
		return err
	}
	if n > 0 {
		h.rp.Sender.StartCell(p.ID, c.ID(), hook)
	}
	setCell(w, c.ID())
	writeJSON(w, http.StatusAccepted, CellNotices{Plan: p.ID, Cell: c.ID(), Notices: n})
	return nil
}

// webhookOf reads a send request's webhook.
func webhookOf(r *http.Request) (string, error) {
	var in client.SendRequest
	if err := decodeJSON(r, maxJSONBody, &in); err != nil {
		return "", err
	}
	if !strings.HasPrefix(in.Webhook, "https://") && !strings.HasPrefix(in.Webhook, "http://") {
		return "", domicile.FieldErrorf("webhook", "must be an http or https URL")
	}
	return in.Webhook, nil
}

// planCells returns the cells of a plan's notices, in id order, with the
// number of notices of each.
func planCells(p *notice.Plan) ([]string, map[string]int) {
	count := map[string]int{}
	var cells []string
	for _, pn := range p.Notices {
		if count[pn.Cell] == 0 {
			cells = append(cells, pn.Cell)
		}
		count[pn.Cell]++
	}
	sort.Strings(cells)
	return cells, count
}

// deliverHere starts the delivery of a plan's notices from this process,
// which must serve every cell the plan has notices for: each delivery is
// logged in its subject's cell. A cell served elsewhere refuses the whole
// send before any notice goes out.
func (h *reportHandlers) deliverHere(p *notice.Plan, hook string) error {
	cells, _ := planCells(p)
	for _, c := range cells {
		if err := h.s.router.Serves(c); err != nil {
			return fmt.Errorf("%w (a plan's notices are delivered and logged in each subject's cell; nothing was sent)", err)
		}
	}
	for _, c := range cells {
		h.rp.Sender.StartCell(p.ID, c, hook)
	}
	return nil
}

// The router's side: each cell's part, asked with the caller's
// credential.

// CellSubjects lists every subject of a cell process for a change plan,
// page by page (GET /v1/cells/{cell}/subjects), with the caller's
// credential: the cell checks it and logs each page.
func (p *Proxy) CellSubjects(ctx context.Context, cell string) ([]notice.SubjectInfo, error) {
	var out []notice.SubjectInfo
	after := ""
	for range 1 << 20 {
		q := url.Values{"limit": {strconv.Itoa(domicile.MaxHoldingsPage)}}
		if after != "" {
			q.Set("after", after)
		}
		var page CellSubjectsPage
		if err := p.askCell(ctx, http.MethodGet, cell, "/v1/cells/"+url.PathEscape(cell)+"/subjects?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Subjects...)
		if page.Next == "" {
			return out, nil
		}
		if page.Next <= after {
			return nil, domicile.Errorf(domicile.EUnavailable, "cell %s answered a page of subjects out of order", cell)
		}
		after = page.Next
	}
	return nil, domicile.Errorf(domicile.EUnavailable, "cell %s lists too many subjects", cell)
}

// SendNotices delivers a plan's notices from the cells of their
// subjects: it first asks every cell of the plan whether it is up, takes
// the caller's token and holds the plan with the same number of notices
// (GET /v1/cells/{cell}/notices/plans/{pid}), and only then asks each to
// send (POST …/send), so that a cell down is a 503 naming it with nothing
// sent. A cell lost between the two rounds leaves its notices unsent
// while the others go out: the error names it, and sending the plan again
// completes it (delivered notices are not sent twice).
func (p *Proxy) SendNotices(ctx context.Context, plan *notice.Plan, webhook string) error {
	cells, count := planCells(plan)
	path := func(c string) string {
		return "/v1/cells/" + url.PathEscape(c) + "/notices/plans/" + url.PathEscape(plan.ID)
	}
	for _, c := range cells {
		var part CellNotices
		if err := p.askCell(ctx, http.MethodGet, c, path(c), nil, &part); err != nil {
			return fmt.Errorf("%w; no notice was sent", err)
		}
		if part.Notices != count[c] {
			return domicile.Errorf(domicile.EConflict, "cell %s holds %d notices of plan %s, the plan says %d; no notice was sent", c, part.Notices, plan.ID, count[c])
		}
	}
	body, err := json.Marshal(client.SendRequest{Webhook: webhook})
	if err != nil {
		return err
	}
	for i, c := range cells {
		if err := p.askCell(ctx, http.MethodPost, c, path(c)+"/send", bytes.NewReader(body), nil); err != nil {
			var de *domicile.Error
			if errors.As(err, &de) && i > 0 {
				de.Message += fmt.Sprintf("; the notices of %s are being sent: send the plan again to complete it", strings.Join(cells[:i], ", "))
			}
			return err
		}
	}
	return nil
}

// CellCensus asks a cell process for its census.
func (p *Proxy) CellCensus(ctx context.Context, cell string) (*CellCensus, error) {
	var out CellCensus
	if err := p.askCell(ctx, http.MethodGet, cell, "/v1/cells/"+url.PathEscape(cell)+"/census", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CellPending asks a cell process for its pending rights requests.
func (p *Proxy) CellPending(ctx context.Context, cell string, final []string, limit int) (*CellPending, error) {
	q := url.Values{"final": final, "limit": {strconv.Itoa(limit)}}
	var out CellPending
	if err := p.askCell(ctx, http.MethodGet, cell, "/v1/cells/"+url.PathEscape(cell)+"/requests/pending?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// remotePending is a cell of another process as rights.OpenRequests
// lists it: a cell that cannot be asked is not listed (uncounted); a
// refusal of the caller's token is an error.
type remotePending struct {
	id    string
	parts CellParts
}

func (rp remotePending) ID() string { return rp.id }

func (rp remotePending) PendingRequests(ctx context.Context, final []string, limit int) ([]domicile.PendingRequest, bool, error) {
	part, err := rp.parts.CellPending(ctx, rp.id, final, limit)
	if err != nil {
		if refused(err) {
			return nil, false, err
		}
		return nil, false, nil
	}
	return part.Requests, part.Listed, nil
}

// refused reports whether err is a cell's refusal of the caller's token,
// which fails the whole answer; any other failure of a cell leaves only
// that cell uncounted.
func refused(err error) bool {
	switch domicile.ErrorCode(err) {
	case domicile.EUnauthorized, domicile.EForbidden:
		return true
	}
	return false
}
