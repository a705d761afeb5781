package httpapi

import (
	"net/url"

	"domicile/client"
)

// Client is the Go client of the API with typed calls for the compliance
// areas (statements and transparency reports as structures, authority
// requests, change plans, transfers, rights requests). It embeds the light
// client of package domicile/client, which has the data path and the
// documents as bytes, and which a business can import without this
// package's dependencies.
type Client struct{ client.Client }

// seg escapes one path segment: ids may hold any printable character.
func seg(s string) string { return url.PathEscape(s) }
