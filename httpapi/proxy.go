package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"domicile"
	"domicile/transfer"
)

// Directory finds a subject's home cell by its id (residency.Router
// does, by the keyed hash of the id).
type Directory interface {
	// Home returns the subject's directory entry, read afresh; an id
	// that is not registered is an ENotFound *domicile.Error.
	Home(ctx context.Context, id string) (domicile.Home, error)
	// PersonKey returns the keyed hash the directory files id under: the
	// router's cache of homes is keyed by it, so that it holds no raw id.
	PersonKey(id string) domicile.SubjectRef
}

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Deployment returns the deployment in force: its cells, their urls
	// and the placement policy.
	Deployment func() *domicile.Deployment
	// Directory finds each subject's home cell.
	Directory Directory
	// Own serves the routes the router answers itself, from the state
	// it holds: /healthz, /readyz, /metrics, the OpenAPI document, tokens
	// (the control store) and assessments (the law engine). It is a
	// Server with no cells.
	Own http.Handler
	// AuthorityCell returns the cell of an authority request, from the
	// deployment's authority request store; nil (or an error) forwards
	// its outcome and disclosure to any cell, which answers for the
	// requests of its own subjects only.
	AuthorityCell func(ctx context.Context, id string) (string, error)
	// NoticeCell returns the cell of a change notice's subject, from the
	// deployment's notice store: its acknowledgement is logged there.
	// nil (or an error) forwards it to any cell, which answers from the
	// shared store.
	NoticeCell func(ctx context.Context, id string) (string, error)
	// Transport carries requests to the cells; nil is a transport with
	// bounded dial, TLS and header timeouts that never uses an
	// environment proxy. Mutual TLS between router and cells is a
	// transport with client certificates.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Registry receives the router's metrics; nil makes a new one.
	Registry *prometheus.Registry
	Now      func() time.Time
	// RetryAfter is the Retry-After, in seconds, of the 503 a request
	// for a cell that is down gets; 5 when zero.
	RetryAfter int
	// Probe is how often each cell's /healthz is asked, so that the
	// deployment-wide routes go to a cell that is up; 2s when zero,
	// never when negative.
	Probe time.Duration
}

// Proxy is the HTTP side of a deployment's router (serve --router): it
// forwards each request to the cell that holds what it names, streaming
// bodies both ways and passing the caller's credentials through, and
// answers itself only what it holds (tokens, the cell list, assessments,
// the privacy page with each cell's log keys pinned).
// It keeps nothing of what it forwards: no id, record, object name or
// body, and its log and metrics name route patterns only.
//
// Routes:
//
//   - /v1/subjects/{id} and below: the subject's home cell, found in the
//     directory; an id the directory does not know goes to any cell,
//     which answers as the embedded runtime does.
//   - POST /v1/subjects: the cell the deployment's policy places the
//     subject in (from the bounded body); the cell checks again.
//   - /log/{cell}/…, /witness/{cell}/…, /v1/cells/{cell}/…: that cell.
//   - POST /v1/transfers, POST /v1/authority/requests: the one cell of
//     the subjects the body names; subjects in several cells are refused.
//   - the authority request's outcome and disclosure: the request's cell.
//   - mechanisms, the ledger, evidence, the live assessment, imports and
//     the authority request list: any cell that is up (they read and
//     write only the stores the cells share).
//   - the transparency report: answered by the router (Own) from every
//     cell's part, asked with the caller's credential; a cell that cannot
//     be asked makes it 503, naming the cell.
//   - change plans: answered by the router (Own), which asks each cell
//     for its subjects (GET /v1/cells/{cell}/subjects) with the caller's
//     credential; a plan's notices are sent by the cells of their
//     subjects, each logging its deliveries, after every cell of the
//     plan answered (SendNotices); an acknowledgement goes to its
//     subject's cell.
//   - the console and its data map and open requests: answered by the
//     router from every cell's part (GET /v1/cells/{cell}/census and
//     …/requests/pending), asked with the caller's credential; a cell
//     that cannot be asked is uncounted, and named.
//
// A cell that cannot be reached is one cell down: its requests get 503
// with Retry-After, and every other cell's are served.
//
// Proxy is safe for concurrent use; Close stops its probes.
type Proxy struct {
	cfg       ProxyConfig
	log       *slog.Logger
	mux       *http.ServeMux
	rp        *httputil.ReverseProxy
	transport http.RoundTripper
	targets   atomic.Pointer[proxyTargets]

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	up       *prometheus.GaugeVec

	// mu guards down and logInfo.
	// homes caches the directory for forwarding (homeCache says how a
	// stale entry is made safe).
	homes *homeCache

	mu sync.Mutex
	// down holds the cells last seen unreachable, with when.
	down map[string]time.Time
	// logInfo caches each cell's log keys, which do not change.
	logInfo map[string]*LogInfo

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// proxyTargets are the parsed cell urls of one deployment.
type proxyTargets struct {
	dep  *domicile.Deployment
	urls map[string]*url.URL
}

// ProxyTargets checks that every cell of d has a url the router can
// forward to, and returns them parsed.
func ProxyTargets(d *domicile.Deployment) (map[string]*url.URL, error) {
	out := map[string]*url.URL{}
	for i, c := range d.Cells {
		if c.URL == "" {
			return nil, fmt.Errorf("cells[%d] (%s): no url: a router forwards to each cell's url", i, c.ID)
		}
		u, err := url.Parse(c.URL)
		if err != nil {
			return nil, fmt.Errorf("cells[%d] (%s): url: %v", i, c.ID, err)
		}
		u.Path = ""
		out[c.ID] = u
	}
	return out, nil
}

// ProxyTransport returns the transport a router reaches its cells with,
// and a cell process the other cells' processes (a migration's target,
// a sibling witness): bounded dial, TLS and header timeouts, keep-alive
// connections, never an environment proxy, and tc (nil: the system's
// CAs, no client certificate) for https urls. Mutual TLS is a tc with
// the calling process's client certificate.
func ProxyTransport(tc *tls.Config) *http.Transport {
	return &http.Transport{
		DialContext:       (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:   tc,
		ForceAttemptHTTP2: tc != nil,
		// The caller's Accept-Encoding goes to the cell as it came, and
		// the cell's answer comes back as the cell encoded it.
		DisableCompression: true,
		// A connection to a cell is kept for each request in flight up
		// to this many, so that a burst does not dial and close
		// connections (each a TCP handshake, with TLS a full one).
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}
}

// Bounds of the bodies the router reads to route a request.
const (
	maxRouteJSON     = maxJSONBody
	maxRouteTransfer = 16 << 20
)

// NewProxy returns a router's proxy and starts probing the cells.
// Every cell of the deployment must have a url (ProxyTargets).
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5
	}
	if cfg.Probe == 0 {
		cfg.Probe = 2 * time.Second
	}
	if cfg.Transport == nil {
		cfg.Transport = ProxyTransport(nil)
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), transport: cfg.Transport,
		homes: newHomeCache(homeCacheSize), down: map[string]time.Time{}, logInfo: map[string]*LogInfo{}}
	if _, err := p.targetsFor(cfg.Deployment()); err != nil {
		return nil, err
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: cfg.Transport,
		// Answers with a Content-Length are written as the copy buffer
		// fills and at their end; streamed ones (no Content-Length, or
		// server-sent events) are flushed at each write by the
		// ReverseProxy itself. Flushing every answer at once would write
		// its header and its body in two system calls.
		FlushInterval: 0,
		BufferPool:    copyBuffers{},
		ErrorHandler:  p.proxyError,
		ModifyResponse: func(resp *http.Response) error {
			// A cell that answers is up, whatever the last probe said.
			p.setUp(cellOf(resp.Request), true)
			if resp.StatusCode == http.StatusMisdirectedRequest {
				if s, _ := resp.Request.Context().Value(staleKey{}).(*staleCheck); s != nil {
					return errStaleHome
				}
			}
			return nil
		},
		// The default ErrorLog would print errors that carry the
		// request's URL, which names the subject.
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	p.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domicile_router_requests_total", Help: "Requests the router forwarded or answered, by route pattern, cell and outcome.",
	}, []string{"route", "cell", "outcome"})
	p.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "domicile_router_request_duration_seconds", Help: "Router request latency by route pattern, the cell's time included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	p.up = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "domicile_router_cell_up", Help: "1 if the cell answered the router's last probe or request, 0 if it could not be reached.",
	}, []string{"cell"})
	if err := errors.Join(cfg.Registry.Register(p.requests), cfg.Registry.Register(p.latency), cfg.Registry.Register(p.up)); err != nil {
		return nil, fmt.Errorf("httpapi: router metrics: %w", err)
	}
	for _, c := range cfg.Deployment().Cells {
		p.up.WithLabelValues(c.ID).Set(1)
	}
	p.routes()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if cfg.Probe > 0 {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.probe(ctx) }()
	}
	return p, nil
}

// Close stops the probes and waits for them.
func (p *Proxy) Close() {
	p.cancel()
	p.wg.Wait()
}

// targetsFor returns the parsed urls of d's cells, cached per deployment.
func (p *Proxy) targetsFor(d *domicile.Deployment) (*proxyTargets, error) {
	if t := p.targets.Load(); t != nil && t.dep == d {
		return t, nil
	}
	urls, err := ProxyTargets(d)
	if err != nil {
		return nil, err
	}
	t := &proxyTargets{dep: d, urls: urls}
	p.targets.Store(t)
	return t, nil
}

// target returns the url of cell, or nil if the deployment has no such
// cell.
func (p *Proxy) target(cell string) *url.URL {
	t, err := p.targetsFor(p.cfg.Deployment())
	if err != nil {
		return nil
	}
	return t.urls[cell]
}

func (p *Proxy) routes() {
	m := p.mux
	own := func(w http.ResponseWriter, r *http.Request) { p.cfg.Own.ServeHTTP(w, r) }
	for _, pat := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/tokens", "/v1/tokens/", "/v1/assess", PrivacyPagePath, ConsolePagePath} {
		m.HandleFunc(pat, own)
	}
	m.HandleFunc("GET /v1/cells", p.cells)
	// One pattern per subject route, so that the metrics and the access
	// lines say which route without naming anything.
	for _, pat := range []string{"/v1/subjects/{id}", "/v1/subjects/{id}/records", "/v1/subjects/{id}/records/{kind}/{rid}",
		"/v1/subjects/{id}/objects", "/v1/subjects/{id}/objects/{name}", "/v1/subjects/{id}/events", "/v1/subjects/{id}/statement",
		"/v1/subjects/{id}/consents", "/v1/subjects/{id}/consents/{ckind}", "/v1/subjects/{id}/{rest...}"} {
		m.HandleFunc(pat, p.bySubject)
	}
	m.HandleFunc("POST /v1/subjects", p.byPlacement)
	m.HandleFunc("/v1/subjects", p.anyCell)
	for _, pat := range []string{"/log/{cell}/{rest...}", "/witness/{cell}/{rest...}", "/v1/cells/{cell}/{rest...}"} {
		m.HandleFunc(pat, p.byCell)
	}
	m.HandleFunc("POST /v1/transfers", p.bySubjects(maxRouteTransfer))
	m.HandleFunc("POST /v1/authority/requests", p.bySubjects(maxRouteJSON))
	m.HandleFunc("/v1/authority/requests/{rid}/outcome", p.byAuthorityRequest)
	m.HandleFunc("/v1/authority/requests/{rid}/disclosure", p.byAuthorityRequest)
	for _, pat := range []string{"/v1/mechanisms", "/v1/mechanisms/{rest...}", "/v1/transfers", "/v1/transfers/{rest...}",
		"/v1/authority/requests", "/v1/authority/requests/{rest...}"} {
		m.HandleFunc(pat, p.anyCell)
	}
	m.HandleFunc("/v1/receipts/{rcpid}", p.everyCell)
	// The router combines every cell's part with the caller's
	// credential (withCredential); its Own server serves the report.
	m.HandleFunc("/v1/transparency", p.withCredential)
	// A change plan asks each cell for its subjects, and its notices are
	// sent by the cells of their subjects (the Own server, through
	// Reports.Plan and Reports.Deliver); an acknowledgement is logged in
	// its subject's cell.
	for _, pat := range []string{"POST /v1/notices/plans", "GET /v1/notices/plans/{pid}", "POST /v1/notices/plans/{pid}/send"} {
		m.HandleFunc(pat, p.withCredential)
	}
	m.HandleFunc("POST /v1/notices/{nid}/ack", p.byNotice)
	// The console's data map and open requests: every cell's part.
	m.HandleFunc("/v1/census", p.withCredential)
	m.HandleFunc("/v1/requests/open", p.withCredential)
	// A migration is planned by the router from the cells' sizes, run by
	// the source cells' processes, and followed from the control store.
	m.HandleFunc("/v1/migrations", p.withCredential)
	m.HandleFunc("/v1/migrations/{rest...}", p.withCredential)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, domicile.Errorf(domicile.ENotFound, "no route %s %s", r.Method, truncate(r.URL.Path, 128)))
	})
}

// proxyCellKey is the context key of the cell a request is forwarded to.
type proxyCellKey struct{}

// cellOf returns the cell a request is being forwarded to.
func cellOf(r *http.Request) string {
	c, _ := r.Context().Value(proxyCellKey{}).(string)
	return c
}

// ServeHTTP routes a request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	p.mux.ServeHTTP(rec, r)
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
	p.requests.WithLabelValues(route, rec.cell, outcome).Inc()
	p.latency.WithLabelValues(route).Observe(d.Seconds())
	// The access line names the route pattern, never the path: the path
	// holds the subject's id, a record id or an object name.
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("route", route),
		slog.String("cell", rec.cell), slog.Int("status", rec.status), slog.Duration("took", d))
}

// forward sends r to cell.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, cell string) {
	if p.target(cell) == nil {
		p.fail(w, r, domicile.Errorf(domicile.ENotFound, "no cell %q in the deployment", truncate(cell, 32)))
		return
	}
	setCell(w, cell)
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxyCellKey{}, cell)))
}

// rewrite points the outbound request at its cell. The inbound path,
// query, Authorization and other end-to-end headers are kept; the
// Forwarded and X-Forwarded-* headers are not added: the cell trusts no
// router, and needs nothing the router could vouch for.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.target(cellOf(pr.In)))
}

// proxyError answers a request whose cell could not answer it: 503 with
// Retry-After. A cell that could not be dialled is marked down, so that
// the deployment-wide routes go to another; the error is logged by its
// cause only (it carries the request's URL).
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errStaleHome) {
		p.resend(w, r.Context().Value(staleKey{}).(*staleCheck))
		return
	}
	cell := cellOf(r)
	if r.Context().Err() != nil {
		// The client went away: there is no one to answer.
		return
	}
	var oe *net.OpError
	dial := errors.As(err, &oe) && oe.Op == "dial"
	if dial {
		p.setUp(cell, false)
	}
	p.log.Warn("cell did not answer", slog.String("cell", cell), slog.String("route", r.Pattern), slog.String("cause", cause(err)))
	msg := fmt.Sprintf("cell %s did not answer; the request may have taken effect there: read before writing again", cell)
	if dial {
		msg = fmt.Sprintf("cell %s is unavailable; nothing was sent to it", cell)
	}
	p.fail(w, r, &domicile.Error{Code: domicile.EUnavailable, Message: msg, RetryAfter: p.cfg.RetryAfter})
}

// cause returns the innermost error of a transport failure: without the
// *url.Error wrapping, which carries the request's URL.
func cause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}

// fail answers err as a problem document.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, err, p.log)
}

// byCell forwards to the cell the path names.
func (p *Proxy) byCell(w http.ResponseWriter, r *http.Request) {
	p.forward(w, r, r.PathValue("cell"))
}

// bySubject forwards to the subject's home cell: from the router's cache
// of homes, or else from the directory. An id the directory does not know,
// or refuses, goes to any cell: the cell's answer (404 for the app, 403
// for an actor who could not reach it anyway, 400 for a malformed id) is
// the one the embedded runtime gives.
//
// A cached home may be stale (homeCache): the request then carries a
// staleCheck, and if the cell answers 421 the router drops the entry and
// sends the request once more, to the cell the directory names now.
func (p *Proxy) bySubject(w http.ResponseWriter, r *http.Request) {
	key := p.cfg.Directory.PersonKey(r.PathValue("id"))
	cell := p.homes.get(key)
	if cell == "" || p.target(cell) == nil {
		p.bySubjectFresh(w, r, key)
		return
	}
	s := &staleCheck{in: r, key: key, cell: cell}
	out := r.WithContext(context.WithValue(r.Context(), staleKey{}, s))
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		s.body = &replayBody{src: r.Body}
		out.Body = s.body
	}
	p.forward(w, out, cell)
}

// bySubjectFresh forwards to the home cell the directory names now, and
// caches it.
func (p *Proxy) bySubjectFresh(w http.ResponseWriter, r *http.Request, key domicile.SubjectRef) {
	h, err := p.cfg.Directory.Home(r.Context(), r.PathValue("id"))
	switch code := domicile.ErrorCode(err); {
	case err == nil:
		p.homes.put(key, h.Cell)
		p.forward(w, r, h.Cell)
	case code == domicile.ENotFound || code == domicile.EInvalid:
		p.anyCell(w, r)
	default:
		p.fail(w, r, err)
	}
}

// staleKey is the context key of a request forwarded on a cached home.
type staleKey struct{}

// staleCheck is what the router keeps of a request it forwarded on a
// cached home, to send it once more if that home was stale.
type staleCheck struct {
	in   *http.Request // the inbound request
	key  domicile.SubjectRef
	cell string
	body *replayBody // nil for a request without a body
}

// errStaleHome is ModifyResponse's signal that a cell answered 421 to a
// request forwarded on a cached home.
var errStaleHome = errors.New("httpapi: the cell no longer holds the subject")

// resend answers a request whose cached home answered 421: the cell did
// not act on it, so it is sent once more to the cell the directory names
// now, with its body as it came. A body too large to have been kept is
// answered 503 instead, the entry dropped: nothing was done, and the same
// request sent again goes to the right cell.
func (p *Proxy) resend(w http.ResponseWriter, s *staleCheck) {
	p.homes.drop(s.key, s.cell)
	in := s.in
	if s.body != nil {
		body, ok := s.body.replay()
		if !ok {
			p.fail(w, in, &domicile.Error{Code: domicile.EUnavailable, RetryAfter: 1,
				Message: fmt.Sprintf("the subject is no longer in cell %s, and nothing was done there: send the request again", s.cell)})
			return
		}
		in = in.WithContext(in.Context())
		in.Body = body
	}
	p.bySubjectFresh(w, in, s.key)
}

// copyBuffers lends the ReverseProxy its copy buffers, so that each
// answer does not allocate 32 KiB.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// Get returns a 32 KiB buffer.
func (copyBuffers) Get() []byte { return copyBufferPool.Get().(*[32 << 10]byte)[:] }

// Put returns a buffer from Get.
func (copyBuffers) Put(b []byte) {
	if cap(b) == 32<<10 {
		copyBufferPool.Put((*[32 << 10]byte)(b[:32<<10]))
	}
}

// byPlacement forwards a registration to the cell the policy places the
// subject in. A body the router cannot route by (malformed, too large, an
// unknown jurisdiction or cell) goes to any cell, which refuses it with
// the exact problem. A cell asked for that the policy forbids gets the
// request, so that it refuses and logs the refusal itself.
func (p *Proxy) byPlacement(w http.ResponseWriter, r *http.Request) {
	body, complete, err := peekBody(r, maxRouteJSON)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if cell := placement(p.cfg.Deployment(), body); complete && cell != "" {
		p.forward(w, r, cell)
		return
	}
	p.anyCell(w, r)
}

// placement returns the cell a registration's body goes to: the cell the
// policy places the subject in, or the cell asked for when the policy
// forbids it there (that cell refuses and logs it). It returns "" when
// the body does not say (malformed, an unknown jurisdiction or cell, no
// cell for the jurisdiction).
func placement(dep *domicile.Deployment, body []byte) string {
	var req struct {
		Jurisdiction string `json:"jurisdiction"`
		Cell         string `json:"cell"`
	}
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	j, err := domicile.ParseJurisdiction(req.Jurisdiction)
	if err != nil {
		return ""
	}
	home, err := dep.Place(j, req.Cell)
	switch {
	case err == nil:
		return home
	case domicile.ErrorCode(err) == domicile.EResidency && dep.Cell(req.Cell) != nil:
		return req.Cell
	}
	return ""
}

// bySubjects forwards a request that names subjects in its JSON body
// ("subjects") to their one home cell. Subjects in several cells are
// refused: each cell process serves its own subjects only.
func (p *Proxy) bySubjects(limit int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, complete, err := peekBody(r, limit)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		ids, ok := subjectsOf(body)
		if !complete || !ok {
			p.anyCell(w, r)
			return
		}
		home := ""
		for _, id := range ids {
			h, err := p.cfg.Directory.Home(r.Context(), id)
			switch code := domicile.ErrorCode(err); {
			case err == nil:
			case code == domicile.ENotFound || code == domicile.EInvalid:
				continue // the cell names it in its answer
			default:
				p.fail(w, r, err)
				return
			}
			if home != "" && h.Cell != home {
				p.fail(w, r, domicile.FieldErrorf("subjects", "the subjects live in cells %s and %s; in a deployment of cell processes each cell serves its own subjects: send one request per cell", home, h.Cell))
				return
			}
			home = h.Cell
		}
		if home == "" {
			p.anyCell(w, r)
			return
		}
		p.forward(w, r, home)
	}
}

// subjectsOf returns the subject ids a JSON body names ("subjects"), at
// most transfer.MaxSubjects of them, or false if the body is not such an
// object.
func subjectsOf(body []byte) ([]string, bool) {
	var req struct {
		Subjects []string `json:"subjects"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.Subjects) > transfer.MaxSubjects {
		return nil, false
	}
	return req.Subjects, true
}

// byAuthorityRequest forwards an authority request's outcome or
// disclosure to the cell of its subjects.
func (p *Proxy) byAuthorityRequest(w http.ResponseWriter, r *http.Request) {
	if p.cfg.AuthorityCell != nil {
		if cell, err := p.cfg.AuthorityCell(r.Context(), r.PathValue("rid")); err == nil && p.target(cell) != nil {
			p.forward(w, r, cell)
			return
		}
	}
	p.anyCell(w, r)
}

// byNotice forwards a change notice's acknowledgement to the cell of its
// subject.
func (p *Proxy) byNotice(w http.ResponseWriter, r *http.Request) {
	if p.cfg.NoticeCell != nil {
		if cell, err := p.cfg.NoticeCell(r.Context(), r.PathValue("nid")); err == nil && p.target(cell) != nil {
			p.forward(w, r, cell)
			return
		}
	}
	p.anyCell(w, r)
}

// anyCell forwards to the first cell of the deployment that is up: the
// deployment-wide routes, which every cell answers alike from the stores
// the cells share. When every cell was last seen down, the request goes
// to the first: it is the freshest probe there is.
func (p *Proxy) anyCell(w http.ResponseWriter, r *http.Request) {
	dep := p.cfg.Deployment()
	p.mu.Lock()
	cell := dep.Cells[0].ID
	for _, c := range dep.Cells {
		if _, down := p.down[c.ID]; !down {
			cell = c.ID
			break
		}
	}
	p.mu.Unlock()
	p.forward(w, r, cell)
}

// maxFanOutAnswer bounds a cell's answer the router relays from
// everyCell.
const maxFanOutAnswer = 1 << 20

// everyCell answers a GET that one unknown cell can answer (an erasure
// receipt, kept by the cell of the subject it no longer names): it asks
// each cell in turn and relays the first answer that is not 404. If no
// cell has it but one could not be asked, the answer is 503, not 404:
// the receipt may be in that cell.
func (p *Proxy) everyCell(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		p.anyCell(w, r) // the cell answers 405
		return
	}
	var last *http.Response
	var lastBody []byte
	unreachable := ""
	for _, c := range p.cfg.Deployment().Cells {
		u := *p.target(c.ID)
		u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		for _, h := range []string{"Authorization", "Accept", "Accept-Language"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			p.setUp(c.ID, false)
			unreachable = c.ID
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxFanOutAnswer))
		resp.Body.Close()
		if err != nil {
			unreachable = c.ID
			continue
		}
		p.setUp(c.ID, true)
		last, lastBody = resp, body
		if resp.StatusCode != http.StatusNotFound {
			setCell(w, c.ID)
			break
		}
	}
	if (last == nil || last.StatusCode == http.StatusNotFound) && unreachable != "" {
		p.fail(w, r, &domicile.Error{Code: domicile.EUnavailable, Message: fmt.Sprintf("cell %s could not be asked, and no other cell has it", unreachable), RetryAfter: p.cfg.RetryAfter})
		return
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Language", "Retry-After"} {
		if v := last.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(last.StatusCode)
	w.Write(lastBody)
}

// peekBody reads up to limit bytes of r's body, to route by, and puts
// them back in front of the rest, so that the cell reads the whole body.
// complete is false when the body is longer than limit.
func peekBody(r *http.Request, limit int64) (head []byte, complete bool, err error) {
	if r.ContentLength > limit {
		return nil, false, nil
	}
	head, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, domicile.Errorf(domicile.EInvalid, "reading body: %v", err)
	}
	rest := r.Body
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), rest), rest}
	return head, int64(len(head)) <= limit, nil
}

// setUp records whether cell can be reached, logging a change.
func (p *Proxy) setUp(cell string, up bool) {
	p.mu.Lock()
	_, wasDown := p.down[cell]
	if up {
		delete(p.down, cell)
	} else if !wasDown {
		p.down[cell] = p.cfg.Now()
	}
	p.mu.Unlock()
	switch {
	case up && wasDown:
		p.log.Info("cell reachable again", slog.String("cell", cell))
		p.up.WithLabelValues(cell).Set(1)
	case !up && !wasDown:
		p.log.Warn("cell unreachable", slog.String("cell", cell))
		p.up.WithLabelValues(cell).Set(0)
	}
}

// probe asks each cell's /healthz every cfg.Probe until ctx ends.
func (p *Proxy) probe(ctx context.Context) {
	t := time.NewTicker(p.cfg.Probe)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, c := range p.cfg.Deployment().Cells {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if up := p.healthy(ctx, c.ID); ctx.Err() == nil {
					p.setUp(c.ID, up)
				}
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// healthy reports whether cell answers GET /healthz.
func (p *Proxy) healthy(ctx context.Context, cell string) bool {
	u := p.target(cell)
	if u == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, max(p.cfg.Probe, time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("/healthz").String(), nil)
	if err != nil {
		return false
	}
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// cells answers GET /v1/cells for the whole deployment: each cell as the
// deployment declares it, with its log's keys as the cell itself
// publishes them (asked once, then kept: they do not change). A cell that
// has never been reached has no log keys in the answer, as a cell that
// refuses to serve has none in the embedded runtime's.
func (p *Proxy) cells(w http.ResponseWriter, r *http.Request) {
	dep := p.cfg.Deployment()
	out := struct {
		Deployment string                `json:"deployment"`
		Cells      []cellView            `json:"cells"`
		Policy     []domicile.PolicyRule `json:"policy"`
	}{Deployment: dep.Name, Policy: dep.Policy}
	infos := p.LogInfos(r.Context())
	for _, c := range dep.Cells {
		out.Cells = append(out.Cells, cellView{ID: c.ID, Jurisdiction: c.Jurisdiction, Operator: c.Operator, Location: c.Location, Custody: c.Custody.Kind, Log: infos[c.ID]})
	}
	writeJSON(w, http.StatusOK, out)
}

// LogInfos returns the log keys of each cell of the deployment as the
// cell publishes them (GET /v1/cells), asking the cells whose keys the
// router does not have yet; a cell it cannot reach is absent. The
// router's privacy page pins them.
func (p *Proxy) LogInfos(ctx context.Context) map[string]*LogInfo {
	dep := p.cfg.Deployment()
	infos := make([]*LogInfo, len(dep.Cells))
	var wg sync.WaitGroup
	for i, c := range dep.Cells {
		wg.Add(1)
		go func() { defer wg.Done(); infos[i] = p.cellLogInfo(ctx, c.ID) }()
	}
	wg.Wait()
	out := map[string]*LogInfo{}
	for i, c := range dep.Cells {
		if infos[i] != nil {
			out[c.ID] = infos[i]
		}
	}
	return out
}

// maxCellList bounds a cell's answer to GET /v1/cells.
const maxCellList = 1 << 20

// cellLogInfo returns cell's log keys, asking the cell the first time.
func (p *Proxy) cellLogInfo(ctx context.Context, cell string) *LogInfo {
	p.mu.Lock()
	info := p.logInfo[cell]
	p.mu.Unlock()
	if info != nil {
		return info
	}
	u := p.target(cell)
	if u == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("/v1/cells").String(), nil)
	if err != nil {
		return nil
	}
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var list struct {
		Cells []cellView `json:"cells"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, maxCellList)).Decode(&list) != nil {
		return nil
	}
	for _, c := range list.Cells {
		if c.ID == cell && c.Log != nil {
			p.mu.Lock()
			p.logInfo[cell] = c.Log
			p.mu.Unlock()
			return c.Log
		}
	}
	return nil
}
