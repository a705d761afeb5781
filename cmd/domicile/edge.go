package main

import (
	"bufio"
	"context"
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
	"sync"
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

	// sink is the server log's buffer, once logger made it.
	sink *logSink
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

// logger returns the server log writing to w, and the function that
// flushes and stops it. Lines are buffered and written every
// logFlushEvery (a write per access line cost more than the line), except
// that a warning or an error is written at once, with what came before it.
func (e *edgeFlags) logger(w io.Writer) (*slog.Logger, func()) {
	level, _ := parseLevel(e.logLevel)
	opts := &slog.HandlerOptions{Level: level}
	sink := newLogSink(w, logFlushEvery)
	var h slog.Handler = slog.NewTextHandler(sink, opts)
	if e.logFormat == "json" {
		h = slog.NewJSONHandler(sink, opts)
	}
	e.sink = sink
	return slog.New(flushingHandler{Handler: h, sink: sink}), sink.Close
}

// listening announces on w that the server listens at url, after writing
// what the log holds: whoever starts the server and waits for this line
// (an operator's script, a supervisor, a test) finds every line logged
// while it started already written.
func (e *edgeFlags) listening(w io.Writer, url string) {
	if e.sink != nil {
		e.sink.Flush()
	}
	fmt.Fprintf(w, "domicile: listening on %s\n", url)
}

// logFlushEvery is how long a log line may wait in the buffer.
const logFlushEvery = 200 * time.Millisecond

// logSink buffers the server log in front of w. It is safe for
// concurrent use; its flusher goroutine stops at Close.
type logSink struct {
	// mu guards w.
	mu sync.Mutex
	w  *bufio.Writer

	stop chan struct{}
	wg   sync.WaitGroup
}

func newLogSink(w io.Writer, every time.Duration) *logSink {
	s := &logSink{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.Flush()
			}
		}
	}()
	return s
}

// Write buffers p (one log line: slog handlers write a line at a time).
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Flush writes what is buffered.
func (s *logSink) Flush() {
	s.mu.Lock()
	s.w.Flush()
	s.mu.Unlock()
}

// Close stops the flusher and flushes.
func (s *logSink) Close() {
	close(s.stop)
	s.wg.Wait()
	s.Flush()
}

// flushingHandler flushes the sink after every warning or error, so that
// they are never held back.
type flushingHandler struct {
	slog.Handler
	sink *logSink
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.sink.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return flushingHandler{Handler: h.Handler.WithAttrs(as), sink: h.sink}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{Handler: h.Handler.WithGroup(name), sink: h.sink}
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
