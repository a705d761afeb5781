package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"domicile/authority"
	"domicile/notice"
	"domicile/report"
)

// DocOptions choose a document's language, format and period.
type DocOptions struct {
	Lang   string // "en" or "zh-CN"; empty: the server's choice
	Format string // "json", "markdown" or "html"; empty: json
	From   string // YYYY-MM-DD or RFC 3339; empty: the default
	To     string
}

func (o DocOptions) query() string {
	q := url.Values{}
	for k, v := range map[string]string{"lang": o.Lang, "format": o.Format, "from": o.From, "to": o.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func (c *Client) document(ctx context.Context, path string) ([]byte, error) {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, decodeProblem(resp)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// StatementDocument returns a subject's data statement as rendered.
func (c *Client) StatementDocument(ctx context.Context, subject string, o DocOptions) ([]byte, error) {
	return c.document(ctx, "/v1/subjects/"+seg(subject)+"/statement"+o.query())
}

// Statement returns a subject's data statement.
func (c *Client) Statement(ctx context.Context, subject, lang string) (*report.Statement, error) {
	var out report.Statement
	_, err := c.call(ctx, http.MethodGet, "/v1/subjects/"+seg(subject)+"/statement"+DocOptions{Lang: lang, Format: "json"}.query(), nil, &out)
	return &out, err
}

// TransparencyDocument returns the transparency report as rendered
// (admin or auditor).
func (c *Client) TransparencyDocument(ctx context.Context, o DocOptions) ([]byte, error) {
	return c.document(ctx, "/v1/transparency"+o.query())
}

// Transparency returns the transparency report (admin or auditor).
func (c *Client) Transparency(ctx context.Context, o DocOptions) (*report.Transparency, error) {
	o.Format = "json"
	var out report.Transparency
	_, err := c.call(ctx, http.MethodGet, "/v1/transparency"+o.query(), nil, &out)
	return &out, err
}

// RecordAuthorityRequest records an authority request (admin).
func (c *Client) RecordAuthorityRequest(ctx context.Context, r authority.NewRequest) (*authority.Request, error) {
	var out authority.Request
	_, err := c.call(ctx, http.MethodPost, "/v1/authority/requests", r, &out)
	return &out, err
}

// AuthorityRequest returns one authority request (admin or auditor).
func (c *Client) AuthorityRequest(ctx context.Context, id string) (*authority.Request, error) {
	var out authority.Request
	_, err := c.call(ctx, http.MethodGet, "/v1/authority/requests/"+seg(id), nil, &out)
	return &out, err
}

// ReviewAuthorityRequest puts a request under review (admin).
func (c *Client) ReviewAuthorityRequest(ctx context.Context, id, note string) (*authority.Request, error) {
	var out authority.Request
	_, err := c.call(ctx, http.MethodPost, "/v1/authority/requests/"+seg(id)+"/review", map[string]string{"note": note}, &out)
	return &out, err
}

// DecideAuthorityRequest records a request's outcome (admin).
func (c *Client) DecideAuthorityRequest(ctx context.Context, id string, o authority.Outcome) (*authority.Request, error) {
	var out authority.Request
	_, err := c.call(ctx, http.MethodPost, "/v1/authority/requests/"+seg(id)+"/outcome", o, &out)
	return &out, err
}

// Disclose performs a decided disclosure (an authority token whose
// justification names the request's reference).
func (c *Client) Disclose(ctx context.Context, id string) (*authority.Package, error) {
	var out authority.Package
	_, err := c.call(ctx, http.MethodPost, "/v1/authority/requests/"+seg(id)+"/disclosure", nil, &out)
	return &out, err
}

// MakePlan makes the change plan from the deployment in force to the
// given deployment file (admin).
func (c *Client) MakePlan(ctx context.Context, name string, deployment []byte) (*PlanView, error) {
	var out PlanView
	_, err := c.call(ctx, http.MethodPost, "/v1/notices/plans", PlanRequest{Name: name, Deployment: string(deployment)}, &out)
	return &out, err
}

// Plan returns a plan with its notices' delivery state (admin).
func (c *Client) Plan(ctx context.Context, id string) (*PlanView, error) {
	var out PlanView
	_, err := c.call(ctx, http.MethodGet, "/v1/notices/plans/"+seg(id), nil, &out)
	return &out, err
}

// ImpactDocument returns a plan's stakeholder impact report as rendered.
func (c *Client) ImpactDocument(ctx context.Context, id string, o DocOptions) ([]byte, error) {
	if o.Format == "" {
		o.Format = "markdown"
	}
	return c.document(ctx, "/v1/notices/plans/"+seg(id)+o.query())
}

// SendPlan starts delivering a plan's notices to a webhook (admin).
func (c *Client) SendPlan(ctx context.Context, id, webhook string) error {
	_, err := c.call(ctx, http.MethodPost, "/v1/notices/plans/"+seg(id)+"/send", SendRequest{Webhook: webhook}, nil)
	return err
}

// AckNotice acknowledges a notice (the subject's token or the app).
func (c *Client) AckNotice(ctx context.Context, id string) (*notice.State, error) {
	var out notice.State
	_, err := c.call(ctx, http.MethodPost, "/v1/notices/"+seg(id)+"/ack", nil, &out)
	return &out, err
}
