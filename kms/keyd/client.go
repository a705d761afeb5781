package keyd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"domicile/kms"
)

// DefaultTimeout bounds each request to the custodian unless configured.
const DefaultTimeout = 2 * time.Second

// ClientConfig configures a cell's connection to its custodian.
type ClientConfig struct {
	// URL is the custodian's base URL, "https://host:port". Required.
	URL string
	// TLS holds the cell's client certificate and the custodian's CA
	// (see ClientTLSConfig). Required.
	TLS *tls.Config
	// ID is the KEK id reported by ID. Default "keyd:" + the URL's host.
	ID string
	// Timeout bounds each request. Default DefaultTimeout.
	Timeout time.Duration
	// OnDecision, if set, receives every decision the custodian returns, allowed
	// or denied, so that the cell can record it beside its own event. It is
	// called before Unwrap returns and must not block for long.
	OnDecision func(kms.Decision)
}

// Client is a kms.KEK held by an external custodian. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	id         string
	timeout    time.Duration
	http       *http.Client
	onDecision func(kms.Decision)
}

var _ kms.KEK = (*Client)(nil)

// NewClient returns a client for the custodian at cfg.URL. It does not
// connect until the first request.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New(`keyd: custodian URL must be "https://host[:port]"`)
	}
	if cfg.TLS == nil || len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetClientCertificate == nil {
		return nil, errors.New("keyd: client needs a TLS configuration with a client certificate")
	}
	if cfg.ID == "" {
		cfg.ID = "keyd:" + u.Host
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	tr := &http.Transport{
		TLSClientConfig: cfg.TLS.Clone(),
		// HTTP/1.1 keeps the cause of a TLS failure visible (HTTP/2's
		// connection pool reports only that no connection could be made).
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.Timeout,
	}
	return &Client{
		base:       u.JoinPath("/v1"),
		id:         cfg.ID,
		timeout:    cfg.Timeout,
		http:       &http.Client{Transport: tr},
		onDecision: cfg.OnDecision,
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// ID implements kms.KEK.
func (c *Client) ID() string { return c.id }

// Wrap implements kms.KEK: the custodian wraps under its current version.
func (c *Client) Wrap(ctx context.Context, plaintext, aad []byte) (uint32, []byte, error) {
	if err := kms.CheckWrap(plaintext, aad); err != nil {
		return 0, nil, err
	}
	var resp wrapResponse
	if err := c.call(ctx, http.MethodPost, "wrap", wrapRequest{Plaintext: plaintext, AAD: aad}, &resp); err != nil {
		return 0, nil, c.mapError("wrap", err)
	}
	if resp.Version == 0 || len(resp.Ciphertext) == 0 {
		return 0, nil, errors.New("keyd: custodian returned an empty wrap")
	}
	return resp.Version, resp.Ciphertext, nil
}

// Unwrap implements kms.KEK: the custodian rules on a, logs its decision and
// returns it; the client hands it to OnDecision. A refusal is a
// *kms.DeniedError; an unreachable or slow custodian is kms.ErrUnavailable.
func (c *Client) Unwrap(ctx context.Context, a kms.Access, version uint32, ciphertext, aad []byte) ([]byte, error) {
	if err := kms.CheckUnwrap(a, version, ciphertext, aad); err != nil {
		return nil, err
	}
	var resp unwrapResponse
	err := c.call(ctx, http.MethodPost, "unwrap", unwrapRequest{Access: a, Version: version, Ciphertext: ciphertext, AAD: aad}, &resp)
	if re, ok := err.(*responseError); ok && re.resp.Decision != nil {
		if derr := c.decided(a, version, *re.resp.Decision); derr != nil {
			return nil, derr
		}
	}
	if err != nil {
		return nil, c.mapError("unwrap", err)
	}
	if derr := c.decided(a, version, resp.Decision); derr != nil {
		clear(resp.Plaintext)
		return nil, derr
	}
	if !resp.Decision.Allowed {
		clear(resp.Plaintext)
		return nil, errors.New("keyd: custodian returned plaintext with a denial")
	}
	return resp.Plaintext, nil
}

// decided checks that d is about this request and passes it to OnDecision.
func (c *Client) decided(a kms.Access, version uint32, d kms.Decision) error {
	if d.Access != a || d.Version != version {
		return errors.New("keyd: custodian's decision is about another request")
	}
	if c.onDecision != nil {
		c.onDecision(d)
	}
	return nil
}

// Rotate implements kms.KEK. The custodian's policy must allow it (key_admin).
func (c *Client) Rotate(ctx context.Context) (uint32, error) {
	var resp versionRequest
	if err := c.call(ctx, http.MethodPost, "rotate", struct{}{}, &resp); err != nil {
		return 0, c.mapError("rotate", err)
	}
	return resp.Version, nil
}

// Versions implements kms.KEK.
func (c *Client) Versions(ctx context.Context) (uint32, []uint32, error) {
	var resp versionsResponse
	if err := c.call(ctx, http.MethodGet, "versions", nil, &resp); err != nil {
		return 0, nil, c.mapError("versions", err)
	}
	return resp.Current, resp.All, nil
}

// Retire implements kms.KEK. The custodian's policy must allow it (key_admin).
func (c *Client) Retire(ctx context.Context, version uint32) error {
	return c.mapError("retire", c.call(ctx, http.MethodPost, "retire", versionRequest{Version: version}, &versionRequest{}))
}

// responseError is a well-formed error answer from the custodian.
type responseError struct {
	status int
	resp   errorResponse
}

func (e *responseError) Error() string {
	return fmt.Sprintf("keyd: custodian answered %d %s: %s", e.status, e.resp.Error, e.resp.Message)
}

func (c *Client) call(ctx context.Context, method, op string, req, resp any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var body io.Reader
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("keyd: encode request: %v", err)
		}
		body = bytes.NewReader(b)
	}
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(tctx, method, c.base.JoinPath(op).String(), body)
	if err != nil {
		return fmt.Errorf("keyd: %s request: %v", op, err)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return c.transportError(ctx, op, err)
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, MaxRequestBytes+1))
	if err != nil {
		return c.transportError(ctx, op, err)
	}
	if len(b) > MaxRequestBytes {
		return fmt.Errorf("keyd: %s response larger than %d bytes", op, MaxRequestBytes)
	}
	if hresp.StatusCode != http.StatusOK {
		var er errorResponse
		if err := strictUnmarshal(b, &er); err != nil || er.Error == "" {
			if hresp.StatusCode >= 500 {
				return fmt.Errorf("%w: %s answered %s", kms.ErrUnavailable, op, hresp.Status)
			}
			return fmt.Errorf("keyd: %s answered %s with a malformed body", op, hresp.Status)
		}
		return &responseError{status: hresp.StatusCode, resp: er}
	}
	if err := strictUnmarshal(b, resp); err != nil {
		return fmt.Errorf("keyd: malformed %s response: %v", op, err)
	}
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// mapError turns the custodian's error answer into the kms error callers
// branch on; other errors pass through.
func (c *Client) mapError(op string, err error) error {
	re, ok := err.(*responseError)
	if !ok {
		return err
	}
	er := re.resp
	switch er.Error {
	case codeDenied:
		d := &kms.DeniedError{Reason: er.Message}
		if er.Decision != nil {
			d.Clause, d.Reason = er.Decision.Clause, er.Decision.Reason
		}
		return d
	case codeInvalidCiphertext:
		return fmt.Errorf("%w (custodian: %s)", kms.ErrInvalidCiphertext, er.Message)
	case codeVersion:
		return &kms.VersionError{KEK: c.id, Version: er.Version, Problem: er.VersionProblem}
	case codeUnavailable:
		return fmt.Errorf("%w: %s: custodian: %s", kms.ErrUnavailable, op, er.Message)
	default:
		if re.status >= 500 {
			return fmt.Errorf("%w: %v", kms.ErrUnavailable, re)
		}
		return re
	}
}

// transportError classifies a failure to get an answer. A caller's own
// cancellation is returned as is; a certificate problem is a configuration
// error; anything else (refused, reset, timeout) means unavailable.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("keyd: %s: %w", op, ctx.Err())
	}
	var cve *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var oe *net.OpError
	// crypto/tls reports an alert from the peer (such as "certificate
	// required" or "unknown certificate authority") as a net.OpError with Op
	// "remote error".
	if errors.As(err, &cve) || errors.As(err, &ue) || errors.As(err, &he) || (errors.As(err, &oe) && oe.Op == "remote error") {
		return fmt.Errorf("keyd: %s: TLS authentication with the custodian failed: %v", op, err)
	}
	return fmt.Errorf("%w: %s: %v", kms.ErrUnavailable, op, err)
}
