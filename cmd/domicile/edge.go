package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"domicile/httpapi"
)

// edgeFlags are serve's flags for what faces the network: TLS, timeouts,
// limits, tokens, and the server log.
type edgeFlags struct {
	tlsCert, tlsKey, tlsClientCA string

	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout, bodyTimeout time.Duration
	minRate                                                                int64
	maxHeaderBytes                                                         int

	maxTokenTTL, tokenRecheck time.Duration

	logFormat, logLevel string
}

func (e *edgeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `FILE` (PEM, the chain after the leaf); needs --tls-key")
	fs.StringVar(&e.tlsKey, "tls-key", "", "the TLS private key `FILE` (PEM)")
	fs.StringVar(&e.tlsClientCA, "tls-client-ca", "", "require client certificates issued by the CAs in this `FILE` (PEM): mutual TLS, on top of bearer tokens")
	fs.DurationVar(&e.readHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client gets to send a request's headers")
	fs.DurationVar(&e.readTimeout, "read-timeout", time.Hour, "longest time to read one whole request, body included (0: no limit but the body deadline)")
	fs.DurationVar(&e.writeTimeout, "write-timeout", time.Hour, "longest time to write one whole response (0: no limit but the body deadline)")
	fs.DurationVar(&e.idleTimeout, "idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	fs.DurationVar(&e.bodyTimeout, "body-timeout", httpapi.DefaultBodyTimeout, "per-request body deadline: a request body (and an object download) must move within this, plus one second per --min-rate bytes moved")
	fs.Int64Var(&e.minRate, "min-rate", httpapi.DefaultMinRate, "the rate, in bytes per second, a body must keep up beyond --body-timeout")
	fs.IntVar(&e.maxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block")
	fs.DurationVar(&e.maxTokenTTL, "max-token-ttl", httpapi.DefaultMaxTokenTTL, "longest lifetime a token may be given")
	fs.DurationVar(&e.tokenRecheck, "token-recheck", httpapi.DefaultTokenRecheck, "how often the token cache reads the control store's revocations: the longest a token revoked by another process stays honoured here")
	fs.StringVar(&e.logFormat, "log-format", "text", "server log format: text or json")
	fs.StringVar(&e.logLevel, "log-level", "info", "server log level: debug, info (one access line per request), warn or error")
}

// check validates the flags' values, naming the flag at fault.
func (e *edgeFlags) check() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
		zero bool // 0 allowed
	}{
		{"read-header-timeout", e.readHeaderTimeout, false}, {"read-timeout", e.readTimeout, true}, {"write-timeout", e.writeTimeout, true},
		{"idle-timeout", e.idleTimeout, false}, {"body-timeout", e.bodyTimeout, false}, {"max-token-ttl", e.maxTokenTTL, false},
		{"token-recheck", e.tokenRecheck, false},
	} {
		if d.v < 0 || (d.v == 0 && !d.zero) {
			errs = append(errs, fmt.Errorf("--%s must be positive, not %s", d.name, d.v))
		}
	}
	if e.tokenRecheck > time.Minute {
		errs = append(errs, fmt.Errorf("--token-recheck %s: at most 1m, or revoked tokens stay honoured too long", e.tokenRecheck))
	}
	if e.minRate < 1 {
		errs = append(errs, fmt.Errorf("--min-rate must be at least 1 byte per second"))
	}
	if e.maxHeaderBytes < 4<<10 || e.maxHeaderBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("--max-header-bytes must be from 4096 to 1048576"))
	}
	if (e.tlsCert == "") != (e.tlsKey == "") {
		errs = append(errs, fmt.Errorf("--tls-cert and --tls-key go together"))
	}
	if e.tlsClientCA != "" && e.tlsCert == "" {
		errs = append(errs, fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS"))
	}
	if e.logFormat != "text" && e.logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, not %q", e.logFormat))
	}
	if _, err := parseLevel(e.logLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", s)
}

// logger returns the server log writing to w.
func (e *edgeFlags) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(e.logLevel)
	opts := &slog.HandlerOptions{Level: level}
	if e.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// apiConfig fills the API server's edge settings.
func (e *edgeFlags) apiConfig(c *httpapi.Config) {
	c.MaxTokenTTL, c.TokenRecheck = e.maxTokenTTL, e.tokenRecheck
	c.BodyTimeout, c.MinRate = e.bodyTimeout, e.minRate
	c.ReadTimeout, c.WriteTimeout = e.readTimeout, e.writeTimeout
}

// tlsConfig returns the server's TLS configuration, or nil for plain HTTP.
func (e *edgeFlags) tlsConfig() (*tls.Config, error) {
	if e.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(e.tlsCert, e.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if e.tlsClientCA != "" {
		pem, err := os.ReadFile(e.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca: %s holds no PEM certificate", e.tlsClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// listen opens the listener and returns it with the URL it serves and
// the http.Server to serve it with (serve calls serveOn).
func (e *edgeFlags) listen(addr string, h http.Handler, log *slog.Logger) (net.Listener, string, *http.Server, error) {
	tc, err := e.tlsConfig()
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", nil, err
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: e.readHeaderTimeout,
		ReadTimeout:       e.readTimeout,
		WriteTimeout:      e.writeTimeout,
		IdleTimeout:       e.idleTimeout,
		MaxHeaderBytes:    e.maxHeaderBytes,
		// The http package's own complaints (TLS handshake errors, a
		// client that sent garbage) go to the server log.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if tc != nil {
		hs.TLSConfig = tc
		scheme = "https"
	}
	return ln, scheme + "://" + ln.Addr().String(), hs, nil
}

// serveOn serves hs on ln, over TLS (HTTP/2 and HTTP/1.1) when hs has a
// TLS configuration.
func serveOn(hs *http.Server, ln net.Listener) error {
	if hs.TLSConfig != nil {
		return hs.ServeTLS(ln, "", "")
	}
	return hs.Serve(ln)
}
