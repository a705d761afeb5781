// Package httpapi is domicile's HTTP JSON API (server and Go client). It is
// the only place where error codes become HTTP statuses.
package httpapi

import (
	"bytes"
	"context"
	"domicile/migrate"
	_ "embed"
	"encoding/json"
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
	// Migrations plans and runs migrations of subjects between cells.
	Migrations *migrate.Runner
	// MigrationPlanner makes a migration plan from the next deployment
	// file (name and bytes) for actor a; the composition root builds it.
	MigrationPlanner func(ctx context.Context, a domicile.Actor, name string, data []byte) (*migrate.Plan, error)
	// MigrationStart, if set, starts a run instead of Migrations.Start:
	// the router forwards it to the source cells' processes.
	MigrationStart func(ctx context.Context, id string, in MigrationRunRequest, opts migrate.Options) error
	// MigrationTargets, if set, lets the cells this process serves be a
	// migration's target for cells of other processes
	// (/v1/cells/{cell}/migration/…): the migrations the control store
	// lists decide which parcels they accept.
	MigrationTargets domicile.MigrationStore
	// MigrationKey is the verifier key of the migration reports'
	// signatures.
	MigrationKey string
	// BackupDir is where POST /v1/cells/{cell}/backup writes a cell's
	// backups, each in BackupDir/<cell>/<time>; empty, the route answers
	// that this process takes no backups.
	BackupDir string
	// ConsolePage serves the console and its assets under
	// ConsolePagePath (package web's Console.Serve); nil means no
	// console. The console's own API routes come with the router.
	ConsolePage func(w http.ResponseWriter, r *http.Request) error
	// CellParts asks the cells this process does not serve for their
	// parts of the console's data map and open requests (a router's
	// Proxy); nil leaves such cells uncounted.
	CellParts CellParts

	// The edge.

	// MaxTokenTTL is the longest lifetime a token may be given
	// (DefaultMaxTokenTTL if zero).
	MaxTokenTTL time.Duration
	// TokenRecheck is how often, at most, the server reads the control
	// store's revocation number, and so the longest a token revoked by
	// another process stays honoured here (DefaultTokenRecheck if zero).
	TokenRecheck time.Duration
	// TokenCacheSize bounds the cache of tokens (DefaultTokenCacheSize
	// if zero).
	TokenCacheSize int
	// BodyTimeout is the time a request body (and an object download's
	// body) gets to move, growing by a second per MinRate bytes moved
	// (DefaultBodyTimeout if zero; negative: no body deadline).
	BodyTimeout time.Duration
	// MinRate is the rate, in bytes per second, a body must keep up
	// (DefaultMinRate if zero).
	MinRate int64
	// ReadTimeout and WriteTimeout, if set, cap the body deadlines: the
	// http.Server's own limits on a whole request and response.
	ReadTimeout, WriteTimeout time.Duration
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

	tokens *tokenCache
	// backupMu serialises backups.
	backupMu sync.Mutex
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
	if cfg.TokenRecheck <= 0 {
		cfg.TokenRecheck = DefaultTokenRecheck
	}
	if cfg.TokenCacheSize <= 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MinRate <= 0 {
		cfg.MinRate = DefaultMinRate
	}
	s := &Server{cfg: cfg, router: cfg.Router, control: cfg.Control, log: cfg.Logger, mux: http.NewServeMux(), reg: cfg.Registry}
	s.tokens = newTokenCache(cfg.Control, cfg.Now, cfg.TokenCacheSize, cfg.TokenRecheck)
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "domicile_token_cache_entries", Help: "Tokens in the server's cache (bounded by its size).",
	}, func() float64 { return float64(s.tokens.size()) }))
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
		s.handleFunc("POST /v1/cells/{cell}/backup", s.auth(s.backup))
		s.registerStoreMetrics()
		s.consoleRoutes()
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
	if cfg.Migrations != nil {
		s.migrationRoutes(cfg)
	}
	if cfg.MigrationTargets != nil {
		s.cellMigrationRoutes(cfg.MigrationTargets)
	}
	if cfg.ConsolePage != nil {
		s.handleFunc("GET "+ConsolePagePath, s.public(cfg.ConsolePage))
	}
	s.mux.HandleFunc("/", s.public(func(w http.ResponseWriter, r *http.Request) error {
		return domicile.Errorf(domicile.ENotFound, "no route %s %s", r.Method, truncate(r.URL.Path, 128))
	}))
	return s
}

// Registry returns the server's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP serves a request. Every response says nosniff; a request
// body must arrive within the body deadline; and each request is one
// access line in the server log: method, route template, status,
// duration, the actor's role and the cell, never an id, a query or a
// body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.limitBody(w, r)
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	defer func() {
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
		d := time.Since(start)
		s.requests.WithLabelValues(route, rec.cell, outcome).Inc()
		s.latency.WithLabelValues(route).Observe(d.Seconds())
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("route", route), slog.Int("status", rec.status),
			slog.Duration("duration", d), slog.String("role", string(rec.role)), slog.String("cell", rec.cell))
	}()
	s.mux.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	cell   string
	role   domicile.Role
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

// recorder returns the statusRecorder under w, or nil.
func recorder(w http.ResponseWriter) *statusRecorder {
	for {
		switch x := w.(type) {
		case *statusRecorder:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
}

// started reports whether the answer to w has begun.
func started(w http.ResponseWriter) bool {
	rec := recorder(w)
	return rec != nil && rec.wrote
}

// setCell labels the request's metrics and access line with the cell
// that served it.
func setCell(w http.ResponseWriter, cell string) {
	if rec := recorder(w); rec != nil {
		rec.cell = cell
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
	m.handleFunc("GET /v1/tokens", s.auth(s.listTokens))
	m.handleFunc("DELETE /v1/tokens/{tid}", s.auth(s.revokeToken))
	m.handleFunc("POST /v1/tokens/{tid}/rotate", s.auth(s.rotateToken))
	m.handleFunc("GET /v1/control/log", s.auth(s.controlLog))
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
	t, err := s.lookupToken(r.Context(), raw)
	if err != nil {
		return domicile.Actor{}, err
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
		if rec := recorder(w); rec != nil {
			rec.role = a.Role
		}
		if err == nil {
			err = againIfMoved(h, w, r, a)
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
