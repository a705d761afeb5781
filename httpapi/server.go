// Package httpapi is domicile's HTTP JSON API (server and Go client). It is
// the only place where error codes become HTTP statuses.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"domicile"
	"domicile/law"
	"domicile/residency"
	"domicile/rights"
	"domicile/transfer"
	"domicile/witness"
)

//go:embed openapi.json
var openapiJSON []byte

// mechanismKindsPlaceholder stands, in openapi.json, for the list of
// mechanism kinds, which is defined once (domicile.MechanismKinds).
const mechanismKindsPlaceholder = `[
       "$domicile.MechanismKinds"
      ]`

// openapiDoc is the served document: openapi.json with the mechanism
// kinds filled in.
var openapiDoc = sync.OnceValue(func() []byte {
	kinds, err := json.MarshalIndent(domicile.MechanismKinds(), "      ", " ")
	if err != nil {
		panic(err) // a slice of strings always marshals
	}
	return bytes.Replace(openapiJSON, []byte(mechanismKindsPlaceholder), kinds, 1)
})

// OpenAPI returns the OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return openapiDoc() }

// Config configures a Server.
type Config struct {
	Router  *residency.Router
	Control domicile.ControlStore
	Logger  *slog.Logger
	Now     func() time.Time
	// Registry receives the server's metrics; nil makes a new one.
	Registry *prometheus.Registry
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func(context.Context) error

	// Each of the following is one area of the API, given its service; a
	// nil service means the area's routes are absent.

	// Logs are the cells' running logs: the public tiles under
	// /log/{cell}/, subjects' event trails and consistency proofs.
	Logs Logs
	// Witnesses are the cells' witnesses behind the C2SP tlog-witness
	// add-checkpoint endpoint.
	Witnesses map[string]*witness.Witness
	// EventFilter hides, from a subject reading its own trail, what the
	// law lets an authority keep from it for now; nil hides nothing.
	EventFilter EventFilter
	// Reports serves statements, the transparency report, authority
	// requests and change notices.
	Reports *Reports
	// Law serves POST /v1/assess.
	Law *law.Engine
	// Transfers serves mechanisms, consents, transfers, the ledger and
	// the evidence.
	Transfers *transfer.Gateway
	// PrivacyPage serves the privacy page and its assets under
	// PrivacyPagePath (package web's Privacy.Serve), returning the error
	// to answer; nil means no page.
	PrivacyPage func(w http.ResponseWriter, r *http.Request) error
	// Rights serves individuals' rights requests, their copy bundles and
	// erasure receipts.
	Rights *rights.Service
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	cfg     Config
	router  *residency.Router
	control domicile.ControlStore
	log     *slog.Logger
	mux     *http.ServeMux
	reg     *prometheus.Registry

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	tokens sync.Map // [32]byte -> *domicile.Token
	// patterns lists every route registered, for the OpenAPI check.
	patterns []string
}

// New returns a server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, router: cfg.Router, control: cfg.Control, log: cfg.Logger, mux: http.NewServeMux(), reg: cfg.Registry}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_requests_total", Help: "HTTP requests by route, cell and outcome.",
	}, []string{"route", "cell", "outcome"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "domicile_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	s.reg.MustRegister(s.requests, s.latency)
	// Process CPU and memory, so a load tool can report the server's cost
	// from /metrics, also for a remote deployment.
	s.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	s.routes()
	if s.router != nil {
		s.registerKeys()
		s.registerStoreMetrics()
	}
	if cfg.Logs != nil {
		s.logRoutes()
	}
	if cfg.Witnesses != nil {
		s.witnessRoutes()
	}
	if cfg.Reports != nil {
		s.reportRoutes(*cfg.Reports)
	}
	if cfg.Law != nil {
		s.assessRoutes(cfg.Law)
	}
	if cfg.Transfers != nil {
		s.transferRoutes(cfg.Transfers)
	}
	if cfg.PrivacyPage != nil {
		s.handleFunc("GET "+PrivacyPagePath, s.public(cfg.PrivacyPage))
	}
	if cfg.Rights != nil {
		s.rightsRoutes(cfg.Rights)
	}
	s.mux.HandleFunc("/", s.public(func(w http.ResponseWriter, r *http.Request) error {
		return domicile.Errorf(domicile.ENotFound, "no route %s %s", r.Method, truncate(r.URL.Path, 128))
	}))
	return s
}

// Registry returns the server's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	s.mux.ServeHTTP(rec, r)
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	outcome := "ok"
	switch {
	case rec.status >= 500:
		outcome = "error"
	case rec.status >= 400:
		outcome = "refused"
	}
	s.requests.WithLabelValues(route, rec.cell, outcome).Inc()
	s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	cell   string
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// started reports whether the answer to w has begun.
func started(w http.ResponseWriter) bool {
	for {
		switch x := w.(type) {
		case *statusRecorder:
			return x.wrote
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return false
		}
	}
}

// setCell labels the request's metrics with the cell that served it.
func setCell(w http.ResponseWriter, cell string) {
	for {
		switch x := w.(type) {
		case *statusRecorder:
			x.cell = cell
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

func (s *Server) routes() {
	m := s
	m.handleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	m.handleFunc("GET /readyz", s.public(s.readyz))
	m.handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	m.handleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI())
	})
	m.handleFunc("GET /v1/cells", s.public(s.cells))
	m.handleFunc("POST /v1/tokens", s.auth(s.createToken))
	m.handleFunc("POST /v1/subjects", s.auth(s.createSubject))
	m.handleFunc("GET /v1/subjects/{id}", s.auth(s.getSubject))
	m.handleFunc("DELETE /v1/subjects/{id}", s.auth(s.eraseSubject))
	m.handleFunc("GET /v1/subjects/{id}/records", s.auth(s.listRecords))
	m.handleFunc("PUT /v1/subjects/{id}/records/{kind}/{rid}", s.auth(s.putRecord))
	m.handleFunc("GET /v1/subjects/{id}/records/{kind}/{rid}", s.auth(s.getRecord))
	m.handleFunc("DELETE /v1/subjects/{id}/records/{kind}/{rid}", s.auth(s.deleteRecord))
	m.handleFunc("GET /v1/subjects/{id}/objects", s.auth(s.listObjects))
	m.handleFunc("PUT /v1/subjects/{id}/objects/{name}", s.auth(s.putObject))
	m.handleFunc("GET /v1/subjects/{id}/objects/{name}", s.auth(s.getObject))
	m.handleFunc("DELETE /v1/subjects/{id}/objects/{name}", s.auth(s.deleteObject))
	m.handleFunc("POST /v1/subjects/{id}/privacy-link", s.auth(s.privacyLink))
}

// handle registers a route. Every route must be in the OpenAPI document.
func (s *Server) handle(pattern string, h http.Handler) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, h)
}

// handleFunc registers a route handled by f.
func (s *Server) handleFunc(pattern string, f http.HandlerFunc) { s.handle(pattern, f) }

// Patterns returns every registered route pattern ("GET /v1/cells").
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			return &domicile.Error{Code: domicile.EUnavailable, Message: "not ready: " + err.Error(), RetryAfter: 1}
		}
	}
	w.Write([]byte("ready\n"))
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Handler is an authenticated handler: the actor is known. It writes its
// answer, or returns an error that [Server.answer] turns into the problem
// document; no handler writes a problem itself.
type Handler func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error

// publicHandler is a handler of a route that needs no token (the public
// log tiles, the witness endpoint, the cell list).
type publicHandler func(w http.ResponseWriter, r *http.Request) error

// Authenticate returns the actor of a request: its bearer token's role and
// jurisdiction, and the purpose or justification its headers state.
func (s *Server) Authenticate(r *http.Request) (domicile.Actor, error) {
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || raw == "" {
		return domicile.Actor{}, domicile.Errorf(domicile.EUnauthorized, "missing bearer token (Authorization: Bearer ...)")
	}
	sum := sha256.Sum256([]byte(raw))
	var t *domicile.Token
	if v, ok := s.tokens.Load(sum); ok {
		t = v.(*domicile.Token)
	} else {
		var err error
		t, err = s.control.TokenByHash(r.Context(), sum)
		if errors.Is(err, domicile.ErrNotFound) {
			return domicile.Actor{}, domicile.Errorf(domicile.EUnauthorized, "unknown token")
		}
		if err != nil {
			return domicile.Actor{}, err
		}
		s.tokens.Store(sum, t)
	}
	if !t.Revoked.IsZero() {
		return domicile.Actor{}, domicile.Errorf(domicile.EUnauthorized, "token revoked")
	}
	if t.Expired(s.cfg.Now()) {
		return domicile.Actor{}, domicile.Errorf(domicile.EUnauthorized, "token expired")
	}
	a := domicile.Actor{Role: t.Role, Jurisdiction: t.Jurisdiction, Subject: t.Subject, TokenID: t.ID}
	switch t.Role {
	case domicile.RoleApp:
		p := r.Header.Get("Domicile-Purpose")
		if p == "" {
			return a, domicile.FieldErrorf("Domicile-Purpose", "an app request must state its purpose, one of: %s", strings.Join(s.router.Deployment().PurposeNames(), ", "))
		}
		if !s.router.Deployment().HasPurpose(p) {
			return a, domicile.FieldErrorf("Domicile-Purpose", "purpose %q is not declared; one of: %s", truncate(p, 32), strings.Join(s.router.Deployment().PurposeNames(), ", "))
		}
		a.Purpose = p
	case domicile.RoleOperator, domicile.RoleAuthority:
		j := r.Header.Get("Domicile-Justification")
		if j == "" {
			// No justification: the actor goes on without one, and the
			// cell refuses it (cell.Authorize) and logs the attempt in
			// the subject's trail. An unjustified look is still a look.
			return a, nil
		}
		reason, ref, err := domicile.ParseJustification(j)
		if err != nil {
			return a, err
		}
		a.Reason, a.Reference = reason, ref
	}
	return a, nil
}

func (s *Server) auth(h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.Authenticate(r)
		if err == nil {
			err = h(w, r, a)
		}
		s.answer(w, r, err)
	}
}

// public wraps a handler of a route that needs no token.
func (s *Server) public(h publicHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.answer(w, r, h(w, r)) }
}

// answer is the one place where a handler's error becomes the answer: a
// problem document, unless the handler had already begun its answer (a
// download cut short), when all that is left is to log the cause.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	if started(w) {
		s.log.WarnContext(r.Context(), "answer cut short", slog.String("route", r.Pattern), slog.Any("err", err))
		return
	}
	s.writeError(w, r, err)
}

// Router returns the server's router.
func (s *Server) Router() *residency.Router { return s.router }

// NewTokenSecret returns a fresh bearer token secret and its id.
func NewTokenSecret() (secret, id string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	secret = "dmc_" + base64.RawURLEncoding.EncodeToString(b[:])
	var i [6]byte
	if _, err := rand.Read(i[:]); err != nil {
		return "", "", err
	}
	return secret, "tok_" + hex.EncodeToString(i[:]), nil
}

// IssueToken creates a token in store and returns its secret.
func IssueToken(ctx context.Context, store domicile.ControlStore, t domicile.Token) (string, *domicile.Token, error) {
	secret, id, err := NewTokenSecret()
	if err != nil {
		return "", nil, err
	}
	t.ID = id
	if err := store.PutToken(ctx, t, sha256.Sum256([]byte(secret))); err != nil {
		return "", nil, err
	}
	return secret, &t, nil
}
