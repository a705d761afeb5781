package httpapi

import (
	"context"
	"fmt"
	"net/url"

	"domicile"
	"domicile/rights"
)

// CreateRequest files a rights request for subject id.
func (c *Client) CreateRequest(ctx context.Context, id string, in rights.Input) (*rights.Request, error) {
	var out rights.Request
	_, err := c.Call(ctx, "POST", "/v1/subjects/"+seg(id)+"/requests", in, &out)
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
		if _, err := c.Call(ctx, "GET", path, nil, &page); err != nil {
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
	_, err := c.Call(ctx, "GET", "/v1/subjects/"+seg(id)+"/requests/"+seg(rid), nil, &out)
	return &out, err
}

// UpdateRequest moves rights request rid of subject id on (app).
func (c *Client) UpdateRequest(ctx context.Context, id, rid string, u rights.Update) (*rights.Request, error) {
	var out rights.Request
	_, err := c.Call(ctx, "PATCH", "/v1/subjects/"+seg(id)+"/requests/"+seg(rid), u, &out)
	return &out, err
}
