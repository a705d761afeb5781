// Package web serves domicile's pages: static HTML, JavaScript and CSS
// embedded in the binary, with no framework and nothing loaded from
// another origin.
//
// # The privacy page
//
// [NewPrivacy] serves /privacy/, the page a subject opens from the link
// the app asks for (POST /v1/subjects/{id}/privacy-link). The link's
// fragment carries the subject's id and a short-lived subject token; the
// page reads them in the browser, so the token reaches the server only in
// the Authorization header of the page's API calls, never in a request
// line or a log. The page shows, in English or Simplified Chinese, where
// the subject's data lives, who can unwrap its keys, what the authorities
// of the cell's jurisdiction can reach, every access with its role,
// purpose or justification and time, transfers and their mechanisms,
// consents (each with a button to withdraw it) and the subject's rights.
//
// Each access is checked in the browser with WebCrypto (verify.js): the
// checkpoint of the cell's log is verified against the log key and the
// witnesses' cosignature keys pinned in the page as served, and each
// event's leaf, its hash in the log's tiles and its RFC 6962 inclusion
// proof, built from the tiles, are checked against the signed root. Each
// event row carries data-proof="verified" or data-proof="failed".
//
// # Security
//
// Pages are served with a Content-Security-Policy that allows scripts,
// styles and connections to the page's own origin only, no framing and
// no referrer. All text from the API is inserted as text, never as HTML.
// The page's messages come from the i18n catalog, so both languages are
// complete by that package's test.
package web
