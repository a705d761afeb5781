// Package client is the Go client of domicile's HTTP API: the data path
// (tokens, subjects, records, objects, consents, privacy links, rights
// bundles and receipts) typed, and the compliance documents (statements,
// transparency reports, impact reports, transfer evidence, assessments)
// as the bytes the server renders. It depends on the standard library and
// domicile's domain types only, so a business can import it without the
// server's dependencies; domicile/httpapi adds typed calls for the
// compliance areas on top of it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"domicile"
)

// Client is a Go client of the API. Its fields are read on each call;
// set them before use. It is safe for concurrent use.
type Client struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:8700".
	BaseURL string
	Token   string
	// Purpose is sent as Domicile-Purpose (app tokens).
	Purpose string
	// Justification is sent as Domicile-Justification (operator and
	// authority tokens), e.g. "support TICKET-123".
	Justification string
	HTTP          *http.Client
}

// ProblemError is a problem document the server answered.
type ProblemError struct{ Problem }

// Error says the status, the code, the field at fault if any, and the detail.
func (e *ProblemError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s: %s: %s", e.Status, e.Code, e.Field, e.Detail)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail)
}

// HTTPClient returns the HTTP client calls use: HTTP, or the default one.
func (c *Client) HTTPClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Subject path segment: ids may hold any printable character.
func seg(s string) string { return url.PathEscape(s) }

// NewRequest makes a request to path (which starts with "/") with the
// client's token, purpose and justification headers.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Purpose != "" {
		req.Header.Set("Domicile-Purpose", c.Purpose)
	}
	if c.Justification != "" {
		req.Header.Set("Domicile-Justification", c.Justification)
	}
	return req, nil
}

// Do sends req and decodes a JSON answer into out (if not nil); a problem
// answer becomes a *ProblemError.
func (c *Client) Do(req *http.Request, out any) (*http.Response, error) {
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp, DecodeProblem(resp)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
			return resp, fmt.Errorf("decode %s answer: %w", req.URL.Path, err)
		}
	}
	return resp, nil
}

// DecodeProblem reads the problem document of an error answer as a
// *ProblemError (a non-problem body becomes its detail).
func DecodeProblem(resp *http.Response) error {
	var p Problem
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(b, &p); err != nil || p.Status == 0 {
		p = Problem{Status: resp.StatusCode, Code: "http", Detail: strings.TrimSpace(string(b))}
	}
	return &ProblemError{p}
}

// Call sends in (JSON, if not nil) with method to path, decodes a JSON
// answer into out (if not nil) and returns a problem answer as a
// *ProblemError; hdr are extra header name/value pairs (empty values are
// not sent). Any route of the OpenAPI document can be called with it.
func (c *Client) Call(ctx context.Context, method, path string, in, out any, hdr ...string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.NewRequest(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return c.Do(req, out)
}

// CreateSubject registers a subject; cell may be empty.
func (c *Client) CreateSubject(ctx context.Context, id, jurisdiction, cell string) (*domicile.Subject, error) {
	var out domicile.Subject
	_, err := c.Call(ctx, http.MethodPost, "/v1/subjects", map[string]string{"id": id, "jurisdiction": jurisdiction, "cell": cell}, &out)
	return &out, err
}

// GetSubject returns a subject's registration.
func (c *Client) GetSubject(ctx context.Context, id string) (*domicile.Subject, error) {
	var out domicile.Subject
	_, err := c.Call(ctx, http.MethodGet, "/v1/subjects/"+seg(id), nil, &out)
	return &out, err
}

// EraseSubject crypto-shreds a subject.
func (c *Client) EraseSubject(ctx context.Context, id string) (*domicile.ErasureReceipt, error) {
	var out domicile.ErasureReceipt
	_, err := c.Call(ctx, http.MethodDelete, "/v1/subjects/"+seg(id), nil, &out)
	return &out, err
}

func recordPath(id, kind, rid string) string {
	return "/v1/subjects/" + seg(id) + "/records/" + seg(kind) + "/" + seg(rid)
}

// PutRecord writes a record; ifMatch is an ETag or "".
func (c *Client) PutRecord(ctx context.Context, id, kind, rid string, data any, ifMatch string) (*domicile.Record, error) {
	var out domicile.Record
	_, err := c.Call(ctx, http.MethodPut, recordPath(id, kind, rid), data, &out, "If-Match", ifMatch)
	return &out, err
}

// GetRecord reads a record.
func (c *Client) GetRecord(ctx context.Context, id, kind, rid string) (*domicile.Record, error) {
	var out domicile.Record
	_, err := c.Call(ctx, http.MethodGet, recordPath(id, kind, rid), nil, &out)
	return &out, err
}

// DeleteRecord deletes a record; ifMatch is an ETag or "".
func (c *Client) DeleteRecord(ctx context.Context, id, kind, rid, ifMatch string) error {
	_, err := c.Call(ctx, http.MethodDelete, recordPath(id, kind, rid), nil, nil, "If-Match", ifMatch)
	return err
}

// RecordPage is a page of records.
type RecordPage struct {
	Records []domicile.Record `json:"records"`
	Next    string            `json:"next,omitempty"`
}

// ListRecords lists a subject's records (kind optional).
func (c *Client) ListRecords(ctx context.Context, id, kind string, limit int, cursor string) (*RecordPage, error) {
	q := url.Values{}
	if kind != "" {
		q.Set("kind", kind)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out RecordPage
	_, err := c.Call(ctx, http.MethodGet, "/v1/subjects/"+seg(id)+"/records?"+q.Encode(), nil, &out)
	return &out, err
}

func objectPath(id, name string) string {
	return "/v1/subjects/" + seg(id) + "/objects/" + seg(name)
}

// PutObject streams an object up. size may be -1 if unknown.
func (c *Client) PutObject(ctx context.Context, id, name, contentType string, body io.Reader, size int64) (*domicile.Object, error) {
	req, err := c.NewRequest(ctx, http.MethodPut, objectPath(id, name), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if size >= 0 {
		req.ContentLength = size
	}
	var out domicile.Object
	_, err = c.Do(req, &out)
	return &out, err
}

// GetObject streams an object (or the range rng, e.g. "bytes=0-99", if not
// empty) down. The caller closes the body.
func (c *Client) GetObject(ctx context.Context, id, name, rng string) (*http.Response, error) {
	req, err := c.NewRequest(ctx, http.MethodGet, objectPath(id, name), nil)
	if err != nil {
		return nil, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return resp, DecodeProblem(resp)
	}
	return resp, nil
}

// DeleteObject deletes an object.
func (c *Client) DeleteObject(ctx context.Context, id, name, ifMatch string) error {
	_, err := c.Call(ctx, http.MethodDelete, objectPath(id, name), nil, nil, "If-Match", ifMatch)
	return err
}

// Cells returns the public description of the deployment's cells.
func (c *Client) Cells(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.Call(ctx, http.MethodGet, "/v1/cells", nil, &out)
	return out, err
}

// DocOptions choose a document's language, format and period.
type DocOptions struct {
	Lang   string // "en" or "zh-CN"; empty: the server's choice
	Format string // "json", "markdown" or "html"; empty: json
	From   string // YYYY-MM-DD or RFC 3339; empty: the default
	To     string
}

// Query is the options as a query string ("" or "?...").
func (o DocOptions) Query() string {
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

// Document fetches a rendered document (at most 64 MiB) from path.
func (c *Client) Document(ctx context.Context, path string) ([]byte, error) {
	req, err := c.NewRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, DecodeProblem(resp)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// StatementDocument returns a subject's data statement as rendered.
func (c *Client) StatementDocument(ctx context.Context, subject string, o DocOptions) ([]byte, error) {
	return c.Document(ctx, "/v1/subjects/"+seg(subject)+"/statement"+o.Query())
}

// TransparencyDocument returns the transparency report as rendered
// (admin or auditor).
func (c *Client) TransparencyDocument(ctx context.Context, o DocOptions) ([]byte, error) {
	return c.Document(ctx, "/v1/transparency"+o.Query())
}

// ImpactDocument returns a plan's stakeholder impact report as rendered.
func (c *Client) ImpactDocument(ctx context.Context, id string, o DocOptions) ([]byte, error) {
	if o.Format == "" {
		o.Format = "markdown"
	}
	return c.Document(ctx, "/v1/notices/plans/"+seg(id)+o.Query())
}

// SendPlan starts delivering a plan's notices to a webhook (admin).
func (c *Client) SendPlan(ctx context.Context, id, webhook string) error {
	_, err := c.Call(ctx, http.MethodPost, "/v1/notices/plans/"+seg(id)+"/send", SendRequest{Webhook: webhook}, nil)
	return err
}

// SetConsent records that a subject gave (granted) or withdrew a consent
// of kind ("cross-border" or "sensitive") shown in text version.
func (c *Client) SetConsent(ctx context.Context, id, kind, version string, granted bool) (*domicile.Consent, error) {
	var out domicile.Consent
	_, err := c.Call(ctx, http.MethodPut, "/v1/subjects/"+seg(id)+"/consents/"+seg(kind), ConsentRequest{TextVersion: version, Granted: granted}, &out)
	return &out, err
}

// Consents returns a subject's consents.
func (c *Client) Consents(ctx context.Context, id string) ([]domicile.Consent, error) {
	var out ConsentList
	_, err := c.Call(ctx, http.MethodGet, "/v1/subjects/"+seg(id)+"/consents", nil, &out)
	return out.Consents, err
}

// Evidence streams the transfer records of [from, until) (YYYY-MM-DD,
// either may be empty) as csv or json lines; the caller closes it.
func (c *Client) Evidence(ctx context.Context, from, until, format string) (io.ReadCloser, error) {
	q := url.Values{}
	for k, v := range map[string]string{"from": from, "until": until, "format": format} {
		if v != "" {
			q.Set(k, v)
		}
	}
	req, err := c.NewRequest(ctx, http.MethodGet, "/v1/transfers/evidence?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, DecodeProblem(resp)
	}
	return resp.Body, nil
}

// Assessment returns the live assessment of the deployment's transfers
// from source (CN by default), as raw JSON (a transfer.Assessment).
func (c *Client) Assessment(ctx context.Context, source string) (json.RawMessage, error) {
	path := "/v1/transfers/assessment"
	if source != "" {
		path += "?source=" + url.QueryEscape(source)
	}
	var out json.RawMessage
	_, err := c.Call(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// RequestBundle streams the copy of request rid of subject id to w and
// returns the file name the server gave it.
func (c *Client) RequestBundle(ctx context.Context, id, rid string, w io.Writer) (string, error) {
	req, err := c.NewRequest(ctx, "GET", "/v1/subjects/"+seg(id)+"/requests/"+seg(rid)+"/bundle", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", DecodeProblem(resp)
	}
	name := "copy-" + rid + ".zip"
	if _, p, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && p["filename"] != "" {
		name = p["filename"]
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return name, err
	}
	return name, nil
}

// Receipt fetches an erasure receipt by its id (no token needed).
func (c *Client) Receipt(ctx context.Context, id string) (*domicile.ErasureReceipt, error) {
	var out domicile.ErasureReceipt
	_, err := c.Call(ctx, "GET", "/v1/receipts/"+seg(id), nil, &out)
	return &out, err
}

// Assess posts a fact file or inventory (any JSON value; with "changes"
// for a change report) to POST /v1/assess and returns the raw JSON answer.
func (c *Client) Assess(ctx context.Context, doc any) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.Call(ctx, http.MethodPost, "/v1/assess", doc, &out)
	return out, err
}

// PrivacyLink is the answer to POST /v1/subjects/{id}/privacy-link: a
// link to the subject's privacy page. URL is relative to the server's
// public address; its fragment carries the subject's id and a subject
// token that expires at Expires. A fragment is never sent to a server, so
// the token stays out of request lines, proxies' logs and Referer headers.
type PrivacyLink struct {
	URL     string    `json:"url"`
	TokenID string    `json:"token_id"`
	Expires time.Time `json:"expires"`
}

// PrivacyLink asks for a link to subject id's privacy page (an app
// token), in language lang ("" for the browser's) and valid for ttl (0
// for DefaultLinkTTL).
func (c *Client) PrivacyLink(ctx context.Context, id, lang string, ttl time.Duration) (*PrivacyLink, error) {
	q := url.Values{}
	if lang != "" {
		q.Set("lang", lang)
	}
	if ttl != 0 {
		q.Set("ttl", ttl.String())
	}
	path := "/v1/subjects/" + seg(id) + "/privacy-link"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out PrivacyLink
	if _, err := c.Call(ctx, http.MethodPost, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the input at fault, when one is.
	Field string `json:"field,omitempty"`
	// Code is the stable error code (the last part of Type).
	Code string `json:"code"`
}

// ProblemTypePrefix starts every problem type URI; the code follows.
const ProblemTypePrefix = "urn:domicile:problem:"

// SendRequest asks for a plan's notices to be delivered to a webhook.
type SendRequest struct {
	Webhook string `json:"webhook"`
}

// ConsentRequest records a consent given or withdrawn.
type ConsentRequest struct {
	TextVersion string `json:"text_version"`
	Granted     bool   `json:"granted"`
}

// ConsentList is the answer to GET /v1/subjects/{id}/consents.
type ConsentList struct {
	Consents []domicile.Consent `json:"consents"`
}

// TokenRequest asks for a token.
type TokenRequest struct {
	Role         string `json:"role"`
	Jurisdiction string `json:"jurisdiction"`
	Subject      string `json:"subject,omitempty"`
	// TTL is the token's lifetime as a Go duration ("24h", "90m"); empty
	// for the default (24h for subject tokens, 90 days for the others).
	TTL string `json:"ttl,omitempty"`
	// Note says what the token is for; it must hold no personal data.
	Note string `json:"note,omitempty"`
}

// TokenResponse is the answer to POST /v1/tokens and to a rotation: the
// secret, shown once.
type TokenResponse struct {
	Token        string                `json:"token"`
	ID           string                `json:"id"`
	Expires      time.Time             `json:"expires,omitzero"`
	Role         domicile.Role         `json:"role"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Subject      string                `json:"subject_ref,omitempty"`
	Note         string                `json:"note,omitempty"`
	// Replaces is the id of the token a rotation revoked.
	Replaces string `json:"replaces,omitempty"`
}

// TokenPage is a page of GET /v1/tokens.
type TokenPage struct {
	Tokens []domicile.Token `json:"tokens"`
	Next   string           `json:"next,omitempty"`
}

// ControlLogPage is a page of GET /v1/control/log.
type ControlLogPage struct {
	Events []domicile.ControlEvent `json:"events"`
	// Next is the sequence number to ask for after this page; 0 at the
	// end of the log.
	Next int64 `json:"next,omitempty"`
}

// CreateToken creates a token (admin only).
func (c *Client) CreateToken(ctx context.Context, r TokenRequest) (*TokenResponse, error) {
	var out TokenResponse
	_, err := c.Call(ctx, http.MethodPost, "/v1/tokens", r, &out)
	return &out, err
}

// TokenListOptions select the tokens ListTokens returns.
type TokenListOptions struct {
	Role   string
	Active bool
	Limit  int
	Cursor string
}

// ListTokens lists a page of tokens, never their secrets (admin only).
func (c *Client) ListTokens(ctx context.Context, o TokenListOptions) (*TokenPage, error) {
	q := make([]string, 0, 4)
	if o.Role != "" {
		q = append(q, "role="+o.Role)
	}
	if o.Active {
		q = append(q, "active=true")
	}
	if o.Limit > 0 {
		q = append(q, "limit="+strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q = append(q, "cursor="+o.Cursor)
	}
	path := "/v1/tokens"
	if len(q) > 0 {
		path += "?" + strings.Join(q, "&")
	}
	var out TokenPage
	_, err := c.Call(ctx, http.MethodGet, path, nil, &out)
	return &out, err
}

// RevokeToken revokes token id at once (admin only) and returns it.
func (c *Client) RevokeToken(ctx context.Context, id string) (*domicile.Token, error) {
	var out domicile.Token
	_, err := c.Call(ctx, http.MethodDelete, "/v1/tokens/"+seg(id), nil, &out)
	return &out, err
}

// RotateToken replaces token id by a new one with the same role,
// jurisdiction and subject (admin only); ttl may be empty for the old
// token's lifetime.
func (c *Client) RotateToken(ctx context.Context, id, ttl string) (*TokenResponse, error) {
	var in any
	if ttl != "" {
		in = map[string]string{"ttl": ttl}
	}
	var out TokenResponse
	_, err := c.Call(ctx, http.MethodPost, "/v1/tokens/"+seg(id)+"/rotate", in, &out)
	return &out, err
}

// ControlLog reads a page of the control log after sequence number
// after (admin and auditor).
func (c *Client) ControlLog(ctx context.Context, after int64, limit int) (*ControlLogPage, error) {
	path := "/v1/control/log?after=" + strconv.FormatInt(after, 10)
	if limit > 0 {
		path += "&limit=" + strconv.Itoa(limit)
	}
	var out ControlLogPage
	_, err := c.Call(ctx, http.MethodGet, path, nil, &out)
	return &out, err
}
