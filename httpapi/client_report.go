package httpapi

import (
	"context"
	"domicile/client"
	"net/http"

	"domicile/authority"
	"domicile/notice"
	"domicile/report"
)

// Statement returns a subject's data statement.
func (c *Client) Statement(ctx context.Context, subject, lang string) (*report.Statement, error) {
	var out report.Statement
	_, err := c.Call(ctx, http.MethodGet, "/v1/subjects/"+seg(subject)+"/statement"+client.DocOptions{Lang: lang, Format: "json"}.Query(), nil, &out)
	return &out, err
}

// Transparency returns the transparency report (admin or auditor).
func (c *Client) Transparency(ctx context.Context, o client.DocOptions) (*report.Transparency, error) {
	o.Format = "json"
	var out report.Transparency
	_, err := c.Call(ctx, http.MethodGet, "/v1/transparency"+o.Query(), nil, &out)
	return &out, err
}

// RecordAuthorityRequest records an authority request (admin).
func (c *Client) RecordAuthorityRequest(ctx context.Context, r authority.NewRequest) (*authority.Request, error) {
	var out authority.Request
	_, err := c.Call(ctx, http.MethodPost, "/v1/authority/requests", r, &out)
	return &out, err
}

// AuthorityRequest returns one authority request (admin or auditor).
func (c *Client) AuthorityRequest(ctx context.Context, id string) (*authority.Request, error) {
	var out authority.Request
	_, err := c.Call(ctx, http.MethodGet, "/v1/authority/requests/"+seg(id), nil, &out)
	return &out, err
}

// ReviewAuthorityRequest puts a request under review (admin).
func (c *Client) ReviewAuthorityRequest(ctx context.Context, id, note string) (*authority.Request, error) {
	var out authority.Request
	_, err := c.Call(ctx, http.MethodPost, "/v1/authority/requests/"+seg(id)+"/review", map[string]string{"note": note}, &out)
	return &out, err
}

// DecideAuthorityRequest records a request's outcome (admin).
func (c *Client) DecideAuthorityRequest(ctx context.Context, id string, o authority.Outcome) (*authority.Request, error) {
	var out authority.Request
	_, err := c.Call(ctx, http.MethodPost, "/v1/authority/requests/"+seg(id)+"/outcome", o, &out)
	return &out, err
}

// Disclose performs a decided disclosure (an authority token whose
// justification names the request's reference).
func (c *Client) Disclose(ctx context.Context, id string) (*authority.Package, error) {
	var out authority.Package
	_, err := c.Call(ctx, http.MethodPost, "/v1/authority/requests/"+seg(id)+"/disclosure", nil, &out)
	return &out, err
}

// MakePlan makes the change plan from the deployment in force to the
// given deployment file (admin).
func (c *Client) MakePlan(ctx context.Context, name string, deployment []byte) (*PlanView, error) {
	var out PlanView
	_, err := c.Call(ctx, http.MethodPost, "/v1/notices/plans", PlanRequest{Name: name, Deployment: string(deployment)}, &out)
	return &out, err
}

// Plan returns a plan with its notices' delivery state (admin).
func (c *Client) Plan(ctx context.Context, id string) (*PlanView, error) {
	var out PlanView
	_, err := c.Call(ctx, http.MethodGet, "/v1/notices/plans/"+seg(id), nil, &out)
	return &out, err
}

// AckNotice acknowledges a notice (the subject's token or the app).
func (c *Client) AckNotice(ctx context.Context, id string) (*notice.State, error) {
	var out notice.State
	_, err := c.Call(ctx, http.MethodPost, "/v1/notices/"+seg(id)+"/ack", nil, &out)
	return &out, err
}
