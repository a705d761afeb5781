package httpapi

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/url"

	"domicile"
	"domicile/rights"
)

// CreateRequest files a rights request for subject id.
func (c *Client) CreateRequest(ctx context.Context, id string, in rights.Input) (*rights.Request, error) {
	var out rights.Request
	_, err := c.call(ctx, "POST", "/v1/subjects/"+seg(id)+"/requests", in, &out)
	return &out, err
}

// Requests returns every rights request of subject id, page by page.
func (c *Client) Requests(ctx context.Context, id string) ([]rights.Request, error) {
	var all []rights.Request
	cursor := ""
	for range 10_000 {
		path := "/v1/subjects/" + seg(id) + "/requests?limit=" + fmt.Sprint(domicile.MaxListLimit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page RequestPage
		if _, err := c.call(ctx, "GET", path, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Requests...)
		if page.Next == "" {
			return all, nil
		}
		cursor = page.Next
	}
	return all, fmt.Errorf("requests of %s: too many pages", id)
}

// Request returns rights request rid of subject id.
func (c *Client) Request(ctx context.Context, id, rid string) (*rights.Request, error) {
	var out rights.Request
	_, err := c.call(ctx, "GET", "/v1/subjects/"+seg(id)+"/requests/"+seg(rid), nil, &out)
	return &out, err
}

// UpdateRequest moves rights request rid of subject id on (app).
func (c *Client) UpdateRequest(ctx context.Context, id, rid string, u rights.Update) (*rights.Request, error) {
	var out rights.Request
	_, err := c.call(ctx, "PATCH", "/v1/subjects/"+seg(id)+"/requests/"+seg(rid), u, &out)
	return &out, err
}

// RequestBundle streams the copy of request rid of subject id to w and
// returns the file name the server gave it.
func (c *Client) RequestBundle(ctx context.Context, id, rid string, w io.Writer) (string, error) {
	req, err := c.newRequest(ctx, "GET", "/v1/subjects/"+seg(id)+"/requests/"+seg(rid)+"/bundle", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", decodeProblem(resp)
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
	_, err := c.call(ctx, "GET", "/v1/receipts/"+seg(id), nil, &out)
	return &out, err
}
