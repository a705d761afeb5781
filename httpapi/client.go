package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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

func (e *ProblemError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s: %s: %s", e.Status, e.Code, e.Field, e.Detail)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Subject path segment: ids may hold any printable character.
func seg(s string) string { return url.PathEscape(s) }

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
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
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp, decodeProblem(resp)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
			return resp, fmt.Errorf("decode %s answer: %w", req.URL.Path, err)
		}
	}
	return resp, nil
}

func decodeProblem(resp *http.Response) error {
	var p Problem
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(b, &p); err != nil || p.Status == 0 {
		p = Problem{Status: resp.StatusCode, Code: "http", Detail: strings.TrimSpace(string(b))}
	}
	return &ProblemError{p}
}

func (c *Client) call(ctx context.Context, method, path string, in, out any, hdr ...string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, body)
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
	_, err := c.call(ctx, http.MethodPost, "/v1/subjects", map[string]string{"id": id, "jurisdiction": jurisdiction, "cell": cell}, &out)
	return &out, err
}

// GetSubject returns a subject's registration.
func (c *Client) GetSubject(ctx context.Context, id string) (*domicile.Subject, error) {
	var out domicile.Subject
	_, err := c.call(ctx, http.MethodGet, "/v1/subjects/"+seg(id), nil, &out)
	return &out, err
}

// EraseSubject crypto-shreds a subject.
func (c *Client) EraseSubject(ctx context.Context, id string) (*domicile.ErasureReceipt, error) {
	var out domicile.ErasureReceipt
	_, err := c.call(ctx, http.MethodDelete, "/v1/subjects/"+seg(id), nil, &out)
	return &out, err
}

func recordPath(id, kind, rid string) string {
	return "/v1/subjects/" + seg(id) + "/records/" + seg(kind) + "/" + seg(rid)
}

// PutRecord writes a record; ifMatch is an ETag or "".
func (c *Client) PutRecord(ctx context.Context, id, kind, rid string, data any, ifMatch string) (*domicile.Record, error) {
	var out domicile.Record
	_, err := c.call(ctx, http.MethodPut, recordPath(id, kind, rid), data, &out, "If-Match", ifMatch)
	return &out, err
}

// GetRecord reads a record.
func (c *Client) GetRecord(ctx context.Context, id, kind, rid string) (*domicile.Record, error) {
	var out domicile.Record
	_, err := c.call(ctx, http.MethodGet, recordPath(id, kind, rid), nil, &out)
	return &out, err
}

// DeleteRecord deletes a record; ifMatch is an ETag or "".
func (c *Client) DeleteRecord(ctx context.Context, id, kind, rid, ifMatch string) error {
	_, err := c.call(ctx, http.MethodDelete, recordPath(id, kind, rid), nil, nil, "If-Match", ifMatch)
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
	_, err := c.call(ctx, http.MethodGet, "/v1/subjects/"+seg(id)+"/records?"+q.Encode(), nil, &out)
	return &out, err
}

func objectPath(id, name string) string {
	return "/v1/subjects/" + seg(id) + "/objects/" + seg(name)
}

// PutObject streams an object up. size may be -1 if unknown.
func (c *Client) PutObject(ctx context.Context, id, name, contentType string, body io.Reader, size int64) (*domicile.Object, error) {
	req, err := c.newRequest(ctx, http.MethodPut, objectPath(id, name), body)
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
	req, err := c.newRequest(ctx, http.MethodGet, objectPath(id, name), nil)
	if err != nil {
		return nil, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return resp, decodeProblem(resp)
	}
	return resp, nil
}

// DeleteObject deletes an object.
func (c *Client) DeleteObject(ctx context.Context, id, name, ifMatch string) error {
	_, err := c.call(ctx, http.MethodDelete, objectPath(id, name), nil, nil, "If-Match", ifMatch)
	return err
}

// Cells returns the public description of the deployment's cells.
func (c *Client) Cells(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.call(ctx, http.MethodGet, "/v1/cells", nil, &out)
	return out, err
}
