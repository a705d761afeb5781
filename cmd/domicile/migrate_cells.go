package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"domicile"
	"domicile/cell"
	"domicile/client"
	"domicile/httpapi"
	"domicile/logclient"
	"domicile/migrate"
	"domicile/notice"
)

// A migration between cell processes (doc/migration.md, "Separate cell
// processes"): the runner lives in the source cell's process and reaches
// the target cell's process over its cell-to-cell routes, with this
// cell's token (domicile.RoleCell).

// remoteCells are the cells of other processes as a cell process's
// runner reaches them: at their urls in the deployment in force, with
// this cell's token, over the process's cell transport (runtime's
// cellTransport: its TLS to the cells).
type remoteCells struct {
	dep   func() *domicile.Deployment
	token string
	http  *http.Client
}

// target returns cell id of another process as a migration's target, or
// nil if the deployment does not declare it with a url.
func (rc *remoteCells) target(id string) migrate.Target {
	cc := rc.dep().Cell(id)
	if cc == nil || cc.URL == "" {
		return nil
	}
	return tlsStops{&httpapi.CellTarget{Cell: id, Client: client.Client{BaseURL: strings.TrimSuffix(cc.URL, "/"), Token: rc.token, HTTP: rc.http}}}
}

// tlsStops is a target cell's process whose refusal of this process's
// TLS (cellTLSRefusal) stops the run, with the refusal as its reason,
// rather than have it retried until the processes' TLS changes: the
// operator fixes the flags, restarts the process and runs the plan
// again. A target that refuses from the start refuses the first call of
// a copy, for its migration key, before the source does anything, so
// nothing has moved; a subject stopped later is copied again by the
// next run, like one of a run killed.
type tlsStops struct{ t *httpapi.CellTarget }

func (s tlsStops) stop(err error) error {
	if r := cellTLSRefusal(err); r != nil {
		return migrate.Permanent(r)
	}
	return err
}

// MigrationKey is the target's migration key.
func (s tlsStops) MigrationKey(ctx context.Context) ([]byte, error) {
	k, err := s.t.MigrationKey(ctx)
	return k, s.stop(err)
}

// MigrateIn sends a parcel to the target.
func (s tlsStops) MigrateIn(ctx context.Context, p *cell.Parcel, note string) (string, int64, error) {
	d, i, err := s.t.MigrateIn(ctx, p, note)
	return d, i, s.stop(err)
}

// Discard asks the target to discard its copy of a subject.
func (s tlsStops) Discard(ctx context.Context, plan string, ref domicile.SubjectRef) error {
	return s.stop(s.t.Discard(ctx, plan, ref))
}

// checkpoint fetches a checkpoint of the log that cell id's process
// publishes, verified with the log key the process lists (GET /v1/cells).
func (rc *remoteCells) checkpoint(ctx context.Context, id string) (migrate.LogRef, error) {
	cc := rc.dep().Cell(id)
	if cc == nil || cc.URL == "" {
		return migrate.LogRef{}, fmt.Errorf("cell %s is not in the deployment", id)
	}
	base := strings.TrimSuffix(cc.URL, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/cells", nil)
	if err != nil {
		return migrate.LogRef{}, err
	}
	resp, err := rc.http.Do(req)
	if err != nil {
		return migrate.LogRef{}, fmt.Errorf("cell %s: %w", id, err)
	}
	defer resp.Body.Close()
	var list struct {
		Cells []struct {
			ID  string           `json:"id"`
			Log *httpapi.LogInfo `json:"log"`
		} `json:"cells"`
	}
	if resp.StatusCode != http.StatusOK {
		return migrate.LogRef{}, fmt.Errorf("cell %s: GET /v1/cells: %s", id, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list); err != nil {
		return migrate.LogRef{}, fmt.Errorf("cell %s: GET /v1/cells: %w", id, err)
	}
	var info *httpapi.LogInfo
	for _, c := range list.Cells {
		if c.ID == id {
			info = c.Log
		}
	}
	if info == nil {
		return migrate.LogRef{}, fmt.Errorf("cell %s lists no log", id)
	}
	path := info.URL
	if path == "" {
		path = "/log/" + id + "/"
	}
	lc, err := logclient.New(logclient.Config{URL: base + path, LogKey: info.VerifierKey, HTTPClient: rc.http})
	if err != nil {
		return migrate.LogRef{}, err
	}
	cp, err := lc.FetchCheckpoint(ctx)
	if err != nil {
		return migrate.LogRef{}, fmt.Errorf("cell %s: %w", id, err)
	}
	return migrate.LogRef{URL: path, VerifierKey: info.VerifierKey, Checkpoint: string(cp.Raw), Size: cp.Size}, nil
}

// cellTokenFile is where a cell process keeps its cell token.
const cellTokenFile = "cell.token"

// ensureCellToken returns the cell token of the cell rt serves: read from
// its data directory, or minted in the control store at first start (or
// when the store no longer knows it) and written there.
func ensureCellToken(ctx context.Context, rt *runtime, cellID string) (string, error) {
	path := filepath.Join(rt.dir, cellTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		secret := strings.TrimSpace(string(b))
		t, err := rt.control.TokenByHash(ctx, httpapi.HashTokenSecret(secret))
		if err == nil && t.Role == domicile.RoleCell && t.Subject == cellID && t.Revoked.IsZero() {
			return secret, nil
		}
		if err != nil && !errors.Is(err, domicile.ErrNotFound) {
			return "", err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	cc := rt.dep.Cell(cellID)
	if cc == nil {
		return "", fmt.Errorf("cell %s is not in the deployment", cellID)
	}
	secret, _, err := httpapi.IssueToken(ctx, rt.control, domicile.Token{Role: domicile.RoleCell, Jurisdiction: cc.Jurisdiction, Subject: cellID,
		Note: "cell-to-cell migration routes", Created: rt.now().UTC()}, actorServe)
	if err != nil {
		return "", err
	}
	if err := writeFileSync(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, nil
}

// cellMigrations starts the runner of a cell process serving cellID and
// returns the server option that serves it (POST /v1/migrations/{pid}/run
// as the router forwards it, status and report); plans are made by the
// router.
func cellMigrations(ctx context.Context, rt *runtime, lg *logs, cellID string) (func(*httpapi.Config), error) {
	tok, err := ensureCellToken(ctx, rt, cellID)
	if err != nil {
		return nil, fmt.Errorf("cell token: %w", err)
	}
	hc := &http.Client{Transport: rt.cellTransport}
	mg, err := startMigrations(ctx, rt, lg, &remoteCells{dep: rt.router.Deployment, token: tok, http: hc})
	if err != nil {
		return nil, err
	}
	return func(cfg *httpapi.Config) {
		cfg.Migrations, cfg.MigrationKey = mg.runner, mg.verifier
	}, nil
}

// routerMigrations sets the router's migration routes in cfg: a plan is
// made from the control store and the sizes each cell process counts, a
// run is forwarded to the process of each source cell (which runs the
// moves of its subjects), and status, report and metrics are read from
// the control store. px is the router's proxy, made after cfg.
func routerMigrations(rt *runtime, cfg *httpapi.Config, px func() *httpapi.Proxy) error {
	ms, ok := rt.control.(domicile.MigrationStore)
	if !ok {
		return nil
	}
	signer, vkey, err := migrationKey(rt)
	if err != nil {
		return err
	}
	// This runner runs nothing: it stores plans and reads progress.
	r := migrate.New(migrate.Config{Store: ms, Signer: signer, Now: rt.now, Logger: rt.log, Local: true, Hooks: migrate.Hooks{Deployment: rt.router.Deployment}})
	rt.closers = append([]func() error{func() error { r.Close(); return nil }}, rt.closers...)
	mg := &migrations{runner: r, verifier: vkey}
	cfg.Migrations, cfg.MigrationKey = r, vkey
	cfg.MigrationPlanner = func(ctx context.Context, a domicile.Actor, name string, data []byte) (*migrate.Plan, error) {
		src := planSources{
			subjects: notice.SubjectsFunc(func(ctx context.Context, cell string) ([]notice.SubjectInfo, error) {
				return px().CellSubjects(ctx, cell)
			}),
			sizes: func(ctx context.Context, cell string, refs []domicile.SubjectRef) ([]httpapi.SubjectSize, error) {
				return px().CellSizes(ctx, cell, refs)
			},
		}
		return planMigration(ctx, rt, mg, src, name, data)
	}
	cfg.MigrationStart = func(ctx context.Context, id string, in httpapi.MigrationRunRequest, _ migrate.Options) error {
		p, err := r.Plan(ctx, id)
		if err != nil {
			return err
		}
		return px().StartMigration(ctx, p, in)
	}
	return nil
}
