package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"domicile"
	"domicile/httpapi"
	"domicile/migrate"
)

// serveCommand is `domicile serve`.
var serveCommand = command{name: "serve", summary: "run the service (embedded demo deployment by default), one cell (--cell) or the router (--router)", run: runServe}

func runServe(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "serve")
	addr := fs.String("addr", "127.0.0.1:8700", "listen address")
	data := fs.String("data", "./data", "data directory")
	depFile := fs.String("deployment", "", "deployment file (YAML); the embedded demo when empty")
	rulesPath := fs.String("rules", "", "law rule bundle or directory `PATH`, signed by a key of the deployment's rules.keys (overrides rules.path); a refused bundle leaves the embedded rules serving")
	backupDir := fs.String("backup-dir", "", "directory `DIR` of the cells' online backups (domicile backup), each in DIR/<cell>/<time>; keep it in the cells' jurisdiction (default: <data>/backups)")
	var edge edgeFlags
	edge.register(fs)
	var top topology
	top.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := edge.check(); err != nil {
		return err
	}
	dep, err := loadDeployment(*depFile)
	if err != nil {
		return err
	}
	if err := top.check(fs, *depFile, dep, addr, *data); err != nil {
		return err
	}
	// The router and a cell process reach the cells' processes through
	// one transport, with the TLS of --cell-ca, --cell-cert, --cell-key.
	var cellTransport *http.Transport
	if top.router || top.cell != "" {
		if cellTransport, err = top.cellTransport(env.Now()); err != nil {
			return err
		}
		defer cellTransport.CloseIdleConnections()
	}
	log, closeLog := edge.logger(env.Stderr)
	defer closeLog()
	rules := useServeRules(dep, *depFile, *rulesPath, log)
	if top.router {
		return serveRouter(ctx, env, &edge, cellTransport, dep, *depFile, *data, *addr, rules, log)
	}
	rt, err := openRuntimeAt(ctx, top.layout(*data), dep, env.Now, rules, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	if cellTransport != nil {
		rt.cellTransport = cellTransport
	}
	logChecks(log, rt.checks)
	if top.cell == "" {
		// A cell process's admin token is the router's.
		if err := ensureAdminToken(ctx, env, rt); err != nil {
			return err
		}
	}
	lg, err := startLogs(ctx, rt, log)
	if err != nil {
		return err
	}
	defer lg.Close()
	if *backupDir == "" {
		*backupDir = filepath.Join(*data, "backups")
	}
	opts := []func(*httpapi.Config){edge.apiConfig, func(c *httpapi.Config) { c.BackupDir = *backupDir }}
	if top.cell != "" {
		// The runner of the moves of this cell's subjects, which reaches
		// the target cells' processes with this cell's token, over the
		// cell transport (its client certificate, if any).
		o, err := cellMigrations(ctx, rt, lg, top.cell)
		if err != nil {
			return err
		}
		opts = append(opts, o)
	}
	srv, err := newServer(rt, lg, log, opts...)
	if err != nil {
		return err
	}
	ln, url, hs, err := edge.listen(*addr, srv, log)
	if err != nil {
		return err
	}
	name := dep.Name
	if *depFile == "" {
		name += " (embedded)"
	}
	if top.cell != "" {
		fmt.Fprintf(env.Stdout, "domicile: deployment %s, cell %s (of %s), control store %s\n", name, top.cell, cellIDs(dep), rt.controlDir)
	} else {
		fmt.Fprintf(env.Stdout, "domicile: deployment %s, cells %s\n", name, cellIDs(dep))
	}
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
			return err
		case <-hup:
			reload(env, rt, *depFile, log)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
			return nil
		}
	}
}

// newServer is the HTTP API of an opened runtime and its running logs:
// each area gets its service here, and only here; opts set the edge
// (serve's flags).
func newServer(rt *runtime, lg *logs, log *slog.Logger, opts ...func(*httpapi.Config)) (*httpapi.Server, error) {
	page, err := privacyPage(rt, lg)
	if err != nil {
		return nil, err
	}
	console, err := consolePage(rt, lg)
	if err != nil {
		return nil, err
	}
	cfg := httpapi.Config{
		Router:      rt.router,
		Control:     rt.control,
		Logger:      log,
		Now:         rt.now,
		Logs:        httpapi.Logs(lg.byCell),
		Witnesses:   rt.witnesses,
		EventFilter: deferredFilter(rt.comm.desk, rt.now),
		Reports:     reports(rt),
		Law:         rt.law,
		Transfers:   rt.gateway,
		Rights:      rightsService(rt, lg),
		PrivacyPage: page.Serve,
		ConsolePage: console.Serve,
	}
	if !rt.shared {
		// Migrations move subjects between cells this process serves;
		// both control stores (SQLite, PostgreSQL) keep their state.
		mg, err := startMigrations(context.Background(), rt, lg, nil)
		if err != nil {
			return nil, err
		}
		cfg.Migrations, cfg.MigrationKey = mg.runner, mg.verifier
		cfg.MigrationPlanner = func(ctx context.Context, a domicile.Actor, name string, data []byte) (*migrate.Plan, error) {
			return planMigration(ctx, rt, mg, servedSources(rt, a), name, data)
		}
	}
	if ms, ok := rt.control.(domicile.MigrationStore); ok {
		// The cells served here may be a migration's target for a cell
		// of another process (serve --cell): the routes hear that cell's
		// token only, for the subjects a running plan moves here.
		cfg.MigrationTargets = ms
	}
	for _, o := range opts {
		o(&cfg)
	}
	return httpapi.New(cfg), nil
}

// reload re-reads the deployment file and swaps it in if it keeps the same
// cells (a cell process also takes cells added elsewhere, such as a
// migration's target): a change of operator or policy takes effect at
// once; moving data between cells is not done by a reload.
func reload(env *cmdEnv, rt *runtime, path string, log *slog.Logger) {
	if path == "" {
		log.Info("reload: no deployment file (embedded default); nothing to reload")
		return
	}
	dep, err := loadDeployment(path)
	if err != nil {
		log.Error("reload refused", slog.Any("err", err))
		return
	}
	if err := reloadCells(rt.dep, dep, rt.shared); err != nil {
		log.Error("reload refused", slog.Any("err", err))
		return
	}
	onReload(rt, dep, env.Now())
	rt.dep = dep
	rt.router.SetDeployment(dep)
	log.Info("deployment reloaded", slog.Time("at", env.Now().UTC()))
}
