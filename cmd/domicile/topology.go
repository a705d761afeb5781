package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"domicile"
	"domicile/deploy"
	"domicile/httpapi"
	"domicile/law"
	"domicile/notice"
	"domicile/report"
	"domicile/residency"
	"domicile/web"
	"domicile/witness"
)

// topology is serve's choice of what this process serves of the
// deployment: everything (the embedded runtime, the default), one cell
// (--cell), or the router in front of the cells (--router).
type topology struct {
	cell    string
	router  bool
	control string
	// cellCA, cellCert and cellKey are this process's TLS to the cells'
	// processes (the router's forwarding; a cell's calls to the other
	// cells): the CAs it trusts for their certificates, and its client
	// certificate for mutual TLS (the cells' --tls-client-ca).
	cellCA, cellCert, cellKey string
}

func (t *topology) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cell, "cell", "", "serve only cell `ID` of the deployment file, as its own process: its own store, key custody and log under --data; it authenticates every request itself from the control store (--control); --addr defaults to the cell's url")
	fs.BoolVar(&t.router, "router", false, "serve the deployment's router: the control store (tokens, the directory) and admin.token under --data, each request forwarded to its cell's url; it holds no subject data")
	fs.StringVar(&t.control, "control", "", "with --cell: the `DIR` of the deployment's control store, that is the router's --data: the directory key, the deployment-wide stores, and the tokens and directory unless the deployment file's control: names a PostgreSQL store")
	fs.StringVar(&t.cellCA, "cell-ca", "", "with --router or --cell: trust the CAs in this `FILE` (PEM) for the cells' https urls, instead of the system's: the router's forwarding, and a cell's calls to the other cells (as a migration's source, as their witness)")
	fs.StringVar(&t.cellCert, "cell-cert", "", "with --router or --cell: the client certificate `FILE` (PEM, for client authentication) this process presents to the cells' processes, for mutual TLS (their --tls-client-ca); needs --cell-key")
	fs.StringVar(&t.cellKey, "cell-key", "", "with --router or --cell: the private key `FILE` (PEM) of --cell-cert")
}

// check validates the flags against the deployment and, for a cell whose
// --addr was not given, listens on the host and port of its url.
func (t *topology) check(fs *flag.FlagSet, depFile string, dep *domicile.Deployment, addr *string, data string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case t.router && t.cell != "":
		return fmt.Errorf("--router and --cell: a process is either the router or one cell")
	case t.control != "" && t.cell == "":
		return fmt.Errorf("--control is for --cell: the router and the embedded runtime keep the control store under --data")
	case (t.router || t.cell != "") && depFile == "":
		return fmt.Errorf("--router and --cell need --deployment FILE: the embedded demo names no cell urls (see examples/topology/local.yaml)")
	case !t.router && t.cell == "" && (t.cellCA != "" || t.cellCert != "" || t.cellKey != ""):
		return fmt.Errorf("--cell-ca, --cell-cert and --cell-key are for --router and --cell: how a process reaches the other cells' processes; the embedded runtime serves every cell itself")
	case (t.cellCert == "") != (t.cellKey == ""):
		return fmt.Errorf("--cell-cert and --cell-key go together")
	}
	if t.router {
		if _, err := httpapi.ProxyTargets(dep); err != nil {
			return fmt.Errorf("--router: %s: %v", depFile, err)
		}
		return nil
	}
	if t.cell == "" {
		return nil
	}
	c := dep.Cell(t.cell)
	if c == nil {
		return fmt.Errorf("--cell: %q is not a cell of %s (cells: %s)", truncateFlag(t.cell), depFile, cellIDs(dep))
	}
	if t.control == "" {
		return fmt.Errorf("--cell needs --control DIR: the router's --data, which holds the directory key, the deployment-wide stores and, unless the deployment file's control: names a PostgreSQL store, the tokens and the directory")
	}
	same, err := sameDir(data, t.control)
	if err != nil {
		return err
	}
	if same {
		return fmt.Errorf("--data and --control are the same directory: a cell's data must not sit with the router's")
	}
	if !set["addr"] && c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			return fmt.Errorf("--cell %s: url: %v", c.ID, err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		*addr = net.JoinHostPort(u.Hostname(), port)
	}
	return nil
}

// layout is where a process of this topology keeps what (openRuntimeAt).
func (t *topology) layout(data string) layout {
	return layout{Data: data, Control: t.control, Cell: t.cell}
}

// cellTLS returns this process's TLS configuration for reaching the
// cells' processes (--cell-ca, --cell-cert, --cell-key), the one both the
// router and a cell process use, or nil when the flags set none (https
// urls are then checked against the system's CAs, and no client
// certificate is presented). Each refusal names the flag at fault; now
// is when the client certificate must be valid.
func (t *topology) cellTLS(now time.Time) (*tls.Config, error) {
	if t.cellCA == "" && t.cellCert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.cellCA != "" {
		pem, err := os.ReadFile(t.cellCA)
		if err != nil {
			return nil, fmt.Errorf("--cell-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cell-ca: %s holds no PEM certificate", t.cellCA)
		}
		cfg.RootCAs = pool
	}
	if t.cellCert != "" {
		cert, err := loadClientCert(t.cellCert, t.cellKey, now)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// loadClientCert reads the client certificate of --cell-cert and its key
// of --cell-key, and checks that they are a pair and that the certificate
// may authenticate a client at now.
func loadClientCert(certFile, keyFile string, now time.Time) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--cell-cert: %w", err)
	}
	if !hasPEM(certPEM, func(typ string) bool { return typ == "CERTIFICATE" }) {
		return tls.Certificate{}, fmt.Errorf("--cell-cert: %s holds no PEM certificate", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--cell-key: %w", err)
	}
	if !hasPEM(keyPEM, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		return tls.Certificate{}, fmt.Errorf("--cell-key: %s holds no PEM private key", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--cell-cert %s and --cell-key %s are not a pair: %v", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("--cell-cert: %s: %v", certFile, err)
		}
	}
	switch {
	case len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny):
		return tls.Certificate{}, fmt.Errorf("--cell-cert: %s is not a client certificate (its extended key usage lacks clientAuth): the cells' --tls-client-ca would refuse it", certFile)
	case now.After(leaf.NotAfter):
		return tls.Certificate{}, fmt.Errorf("--cell-cert: %s expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return tls.Certificate{}, fmt.Errorf("--cell-cert: %s is not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// hasPEM reports whether b holds a PEM block whose type is wanted.
func hasPEM(b []byte, want func(typ string) bool) bool {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return false
		}
		if want(blk.Type) {
			return true
		}
	}
}

// cellTransport is the one transport this process reaches the cells'
// processes with (httpapi.ProxyTransport over cellTLS): the router's
// forwarding, and a cell process's calls to the other cells.
func (t *topology) cellTransport(now time.Time) (*http.Transport, error) {
	tc, err := t.cellTLS(now)
	if err != nil {
		return nil, err
	}
	return httpapi.ProxyTransport(tc), nil
}

// cellTLSRefusal returns, for an error of a call to another cell's
// process that failed in TLS, the error with what to set: the peer sent
// a TLS alert (it refused this process's client certificate, or wanted
// one), or this process does not trust the peer's certificate. It
// returns nil for any other error (a cell down, an answer of the cell):
// only a change of the processes' TLS cures a refusal, a retry does not.
func cellTLSRefusal(err error) error {
	var (
		verify *tls.CertificateVerificationError
		ua     x509.UnknownAuthorityError
		host   x509.HostnameError
		inv    x509.CertificateInvalidError
		op     *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &ua), errors.As(err, &host), errors.As(err, &inv):
		return fmt.Errorf("%w (this process does not trust the cell's TLS certificate: give it the CA that issued it with --cell-ca)", err)
	case errors.As(err, &op) && op.Op == "remote error":
		return fmt.Errorf("%w (the cell's process refused the TLS handshake: a cell served with --tls-client-ca wants a client certificate its CAs issued; give this process one with --cell-cert and --cell-key)", err)
	}
	return nil
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	return filepath.Clean(aa) == filepath.Clean(bb), nil
}

func truncateFlag(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// openRouterRuntime opens what a router holds: the control store and the
// directory key under dir (making them on first start) and the directory
// over them, with no cell.
func openRouterRuntime(ctx context.Context, dir string, dep *domicile.Deployment, now func() time.Time, e *law.Engine, log *slog.Logger) (_ *runtime, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	rt := &runtime{dir: dir, controlDir: dir, shared: true, dep: dep, now: now, law: e, log: log, witnesses: map[string]*witness.Witness{}}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	dirKey, err := secretFile(filepath.Join(dir, "directory.key"), 32)
	if err != nil {
		return nil, fmt.Errorf("directory key: %w", err)
	}
	if rt.control, err = openControl(ctx, dep, dir); err != nil {
		return nil, err
	}
	rt.router = residency.New(dep, nil, rt.control, dirKey)
	// The deployment-wide stores the cells share: the router reads the
	// authority register and the transfer ledger for the transparency
	// report, and an authority request's cell to forward to.
	if rt.gateway, err = openGateway(ctx, rt); err != nil {
		return nil, fmt.Errorf("transfer ledger: %w", err)
	}
	if rt.comm, err = openComm(ctx, rt); err != nil {
		return nil, fmt.Errorf("notices and authority requests: %w", err)
	}
	return rt, nil
}

// serveRouter runs `serve --router`: the router of a deployment of cell
// processes, in front of the cells' urls.
// tr is how it reaches the cells (topology.cellTransport).
func serveRouter(ctx context.Context, env *cmdEnv, edge *edgeFlags, tr *http.Transport, dep *domicile.Deployment, depFile, data, addr string, rules *law.Engine, log *slog.Logger) error {
	rt, err := openRouterRuntime(ctx, data, dep, env.Now, rules, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := ensureAdminToken(ctx, env, rt); err != nil {
		return err
	}
	reqs := rt.comm.reqs
	reg := prometheus.NewRegistry()
	var px *httpapi.Proxy
	page := &routerPrivacy{dep: rt.router.Deployment, logs: func(ctx context.Context) map[string]*httpapi.LogInfo { return px.LogInfos(ctx) }}
	// The router's own reports combine every cell's part, asked through
	// the proxy with the caller's credential.
	rp := reports(rt)
	rp.Sources.Remote = func(ctx context.Context, cell string, p report.Period) (*report.CellFigures, error) {
		return px.CellFigures(ctx, cell, p)
	}
	// A change plan counts each cell's subjects by asking the cell, and
	// its notices are delivered and logged by the cells of their
	// subjects; the console's data map and open requests are every
	// cell's parts.
	rp.Plan = func(ctx context.Context, a domicile.Actor, name string, data []byte) (*notice.Plan, error) {
		next, err := deploy.Parse(data)
		if err != nil {
			return nil, domicile.Errorf(domicile.EInvalid, "deployment %s: %v", name, err)
		}
		return planFor(ctx, rt, rt.comm, rt.router.Deployment(), next, name, data, true, notice.SubjectsFunc(func(ctx context.Context, cell string) ([]notice.SubjectInfo, error) {
			return px.CellSubjects(ctx, cell)
		}))
	}
	rp.Deliver = func(ctx context.Context, p *notice.Plan, webhook string) error {
		return px.SendNotices(ctx, p, webhook)
	}
	parts := &proxyParts{}
	console := &routerConsole{dep: rt.router.Deployment, sources: consoleSources(rt), logs: page.logs}
	ownCfg := httpapi.Config{Router: rt.router, Control: rt.control, Logger: log, Now: env.Now, Registry: reg, Law: rt.law, PrivacyPage: page.Serve, Reports: rp,
		ConsolePage: console.Serve, CellParts: parts}
	if err := routerMigrations(rt, &ownCfg, func() *httpapi.Proxy { return px }); err != nil {
		return err
	}
	edge.apiConfig(&ownCfg)
	own := httpapi.New(ownCfg)
	px, err = httpapi.NewProxy(httpapi.ProxyConfig{
		Transport:  tr,
		Deployment: rt.router.Deployment,
		Directory:  rt.router,
		Own:        own,
		AuthorityCell: func(ctx context.Context, id string) (string, error) {
			r, err := reqs.Get(ctx, id)
			if err != nil {
				return "", err
			}
			return r.Cell, nil
		},
		NoticeCell: func(ctx context.Context, id string) (string, error) {
			st, err := rt.comm.notices.Notice(ctx, id)
			if err != nil {
				return "", err
			}
			return st.Cell, nil
		},
		Logger:   log,
		Registry: reg,
		Now:      env.Now,
	})
	if err != nil {
		return err
	}
	defer px.Close()
	parts.Proxy = px
	ln, url, hs, err := edge.listen(addr, px, log)
	if err != nil {
		return err
	}
	var cells []string
	for _, c := range dep.Cells {
		cells = append(cells, c.ID+" "+c.URL)
	}
	fmt.Fprintf(env.Stdout, "domicile: router of deployment %s: %s\n", dep.Name, strings.Join(cells, ", "))
	fmt.Fprintf(env.Stdout, "domicile: law rules %s\n", rules.RuleSet())
	edge.listening(env.Stdout, url)
	errc := make(chan error, 1)
	go func() { errc <- serveOn(hs, ln) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case <-hup:
			reloadRouter(rt, depFile, log, env.Now)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
			return nil
		}
	}
}

// reloadRouter re-reads the deployment file: a change of policy, of an
// operator or of a cell's url takes effect at once, and a cell added (a
// migration's target, started from the new file) is forwarded to from
// then on; removing a cell needs a restart.
func reloadRouter(rt *runtime, path string, log *slog.Logger, now func() time.Time) {
	dep, err := loadDeployment(path)
	if err == nil {
		_, err = httpapi.ProxyTargets(dep)
	}
	if err != nil {
		log.Error("reload refused", slog.Any("err", err))
		return
	}
	if err := reloadCells(rt.dep, dep, true); err != nil {
		log.Error("reload refused", slog.Any("err", err))
		return
	}
	rt.dep = dep
	rt.router.SetDeployment(dep)
	log.Info("deployment reloaded", slog.Time("at", now().UTC()))
}

// routerPrivacy is the router's privacy page: the page every cell
// process serves, pinned with the log keys of every cell of the
// deployment as each cell publishes them (the router asks each once),
// and with the stand-alone witnesses the deployment requires for each
// cell. A cell the router has not reached yet is not pinned: the page of
// one of its subjects then says that it cannot check the accesses, rather
// than check them against a key from anywhere else.
type routerPrivacy struct {
	dep  func() *domicile.Deployment
	logs func(ctx context.Context) map[string]*httpapi.LogInfo

	// mu guards page and pinned.
	mu     sync.Mutex
	page   *web.Privacy
	pinned string // the keys page pins, to know when to make it again
}

// Serve serves the page, made again when the router learns a cell's keys.
func (p *routerPrivacy) Serve(w http.ResponseWriter, r *http.Request) error {
	pins, key := routerPins(p.dep(), p.logs(r.Context()))
	p.mu.Lock()
	page := p.page
	if page == nil || p.pinned != key {
		np, err := web.NewPrivacy(web.PrivacyConfig{Logs: pins})
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.page, p.pinned, page = np, key, np
	}
	p.mu.Unlock()
	return page.Serve(w, r)
}

// routerPins returns the keys the router's pages pin for each cell whose
// log keys it learnt (infos): the cell's log key and the stand-alone
// witnesses the deployment requires for it; key names them all, to know
// when a page must be made again.
func routerPins(dep *domicile.Deployment, infos map[string]*httpapi.LogInfo) (pins []web.PinnedLog, key string) {
	ids := make([]string, 0, len(infos))
	for id := range infos {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		in := infos[id]
		pin := web.PinnedLog{Cell: id, URL: in.URL, Key: in.VerifierKey, Witnesses: []string{}}
		for _, w := range dep.WitnessesOf(id) {
			if w.Required {
				pin.Witnesses = append(pin.Witnesses, w.Key)
			}
		}
		pins = append(pins, pin)
		b.WriteString(id + " " + in.VerifierKey + " " + strings.Join(pin.Witnesses, " ") + "\n")
	}
	return pins, b.String()
}
