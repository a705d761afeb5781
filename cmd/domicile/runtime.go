package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/kms"
	"domicile/kms/filekms"
	"domicile/law"
	"domicile/residency"
	"domicile/transfer"
	"domicile/witness"
)

// runtime is an opened deployment: every cell's store, custody and keys,
// the control store, the router, the transfer gateway and the
// communication stores. openRuntime is the composition root: it builds
// each part once, from the configuration, and hands each its
// dependencies; nothing registers itself.
type runtime struct {
	// dir holds the cells' storage and custody.
	dir string
	// controlDir holds the control store, the directory key and the
	// deployment-wide stores (ledger, notices, authority requests): dir
	// for the embedded runtime, the router's data directory for a cell
	// that runs as its own process.
	controlDir string
	// shared is true when other processes share the control directory's
	// stores (serve --cell): what a process caches of them must be read
	// again.
	shared  bool
	dep     *domicile.Deployment
	control domicile.ControlStore
	cells   []*cell.Cell
	stores  []cellStore
	keys    []keyStore
	router  *residency.Router
	now     func() time.Time
	// log is the server log: fail-closed refusals, key custody errors,
	// threshold warnings.
	log *slog.Logger
	// witnesses are the cells' witnesses, set by startLogs.
	witnesses map[string]*witness.Witness
	// law is the rule engine the deployment applies (the embedded rules
	// or a verified bundle).
	law *law.Engine
	// gateway is the transfer gate and ledger; it rules on remote reads.
	gateway *transfer.Gateway
	// comm holds the notice and authority request stores.
	comm *comm
	// closers run at Close, before the stores close.
	closers []func() error
	// checks are the cells' integrity checks on open (integrity.go).
	checks []cellCheck
	// cellTransport is how a cell process (serve --cell) reaches the
	// other cells' processes: a migration's target, the sibling cells it
	// witnesses with. It carries the TLS of --cell-ca, --cell-cert and
	// --cell-key (topology.cellTransport); nil elsewhere.
	cellTransport http.RoundTripper
}

// gateProxy lets cells be built before the gateway, which needs their
// router; openRuntime sets the gateway before the runtime serves.
type gateProxy struct{ rt *runtime }

// RemoteAccess asks the transfer gate.
func (g gateProxy) RemoteAccess(ctx context.Context, r cell.RemoteRead) (*cell.RemoteGrant, error) {
	if g.rt.gateway == nil {
		return nil, domicile.Errorf(domicile.EForbidden, "a read from %s is a transfer abroad, and this deployment runs no transfer gate", r.Actor.Jurisdiction)
	}
	return g.rt.gateway.RemoteAccess(ctx, r)
}

// Consented asks the gateway's consent records.
func (g gateProxy) Consented(ctx context.Context, ref domicile.SubjectRef, consent string) (bool, error) {
	if g.rt.gateway == nil {
		return false, nil
	}
	return g.rt.gateway.Consented(ctx, ref, consent)
}

// loadDeployment reads the deployment file, or the embedded default when
// path is empty.
func loadDeployment(path string) (*domicile.Deployment, error) {
	if path == "" {
		return deploy.Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, err := deploy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// secretFile returns the contents of a 0600 file of n random bytes,
// creating it if absent.
func secretFile(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != n {
			return nil, fmt.Errorf("%s: want %d bytes, have %d", path, n, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := writeFileSync(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

// existingSecret returns the contents of the secret file path, which
// must exist and hold n bytes.
func existingSecret(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: start the router first (it makes the control store and this key), and point --control at its data directory", path)
	}
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("%s: want %d bytes, have %d", path, n, len(b))
	}
	return b, nil
}

// writeFileSync creates path exclusively, writes data and syncs it and its
// directory.
func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openKEK opens a cell's key-encryption key from its declared custody.
func openKEK(ctx context.Context, dir string, c domicile.CellConfig) (kms.KEK, error) {
	switch c.Custody.Kind {
	case "file", "":
		return filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", c.ID, "kek.json"), ID: c.ID + "/kek"})
	}
	return openExternalKEK(ctx, dir, c)
}

// openRuntime opens (creating on first start) every cell of dep under
// dir, and the gateway and communication stores that serve them, applying
// the rules of e (the embedded rules when nil). log is the server log
// (nil discards it).
func openRuntime(ctx context.Context, dir string, dep *domicile.Deployment, now func() time.Time, e *law.Engine, log *slog.Logger) (*runtime, error) {
	return openRuntimeAt(ctx, layout{Data: dir}, dep, now, e, log)
}

// layout says where a runtime keeps what, and which cells it serves.
type layout struct {
	// Data holds the cells' storage (<Data>/<cell>/) and custody
	// (<Data>/custody/<cell>/).
	Data string
	// Control holds the control store (<Control>/control/), the
	// directory key and the deployment-wide stores; Data when empty. A
	// cell process points it at the router's data directory.
	Control string
	// Cell, when set, is the one cell this process serves (serve
	// --cell): the directory key must exist already (the router makes
	// it), and the deployment-wide stores are shared with the other
	// processes.
	Cell string
}

// openRuntimeAt opens the runtime laid out as l: every cell of dep, or
// the one l names. log is the server log (nil discards it).
func openRuntimeAt(ctx context.Context, l layout, dep *domicile.Deployment, now func() time.Time, e *law.Engine, log *slog.Logger) (_ *runtime, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if e == nil {
		if e, err = embeddedLaw(); err != nil {
			return nil, err
		}
	}
	dir := l.Data
	if l.Control == "" {
		l.Control = dir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	rt := &runtime{dir: dir, controlDir: l.Control, shared: l.Cell != "", dep: dep, now: now, law: e, log: log, witnesses: map[string]*witness.Witness{}}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	var dirKey []byte
	if l.Cell != "" {
		dirKey, err = existingSecret(filepath.Join(l.Control, "directory.key"), 32)
	} else {
		dirKey, err = secretFile(filepath.Join(l.Control, "directory.key"), 32)
	}
	if err != nil {
		return nil, fmt.Errorf("directory key: %w", err)
	}
	if rt.control, err = openControl(ctx, dep, l.Control); err != nil {
		return nil, err
	}
	for _, cc := range dep.Cells {
		if l.Cell != "" && cc.ID != l.Cell {
			continue
		}
		st, cs, err := openCheckedStore(ctx, dir, cc, &rt.checks)
		if err != nil {
			return nil, err
		} else if st == nil {
			continue // refused: the router answers its subjects 503
		}
		rt.stores = append(rt.stores, st)
		if err := os.MkdirAll(filepath.Join(dir, "custody", cc.ID), 0o700); err != nil {
			return nil, err
		}
		ks, err := openKeyStore(ctx, dir, cc, cs)
		if err != nil {
			return nil, fmt.Errorf("cell %s custody: %w", cc.ID, err)
		}
		rt.keys = append(rt.keys, ks)
		kek, err := openKEK(ctx, dir, cc)
		if err != nil {
			return nil, fmt.Errorf("cell %s KEK: %w", cc.ID, err)
		}
		rt.cells = append(rt.cells, cell.New(cell.Config{Cell: cc, Deployment: dep, Store: st, KEK: kek, KeyStore: ks, Now: now, Gate: gateProxy{rt}, Consents: gateProxy{rt}, Logger: log}))
	}
	rt.router = residency.New(dep, rt.cells, rt.control, dirKey)
	rt.refuseCells()
	if rt.gateway, err = openGateway(ctx, rt); err != nil {
		return nil, fmt.Errorf("transfer gateway: %w", err)
	}
	if rt.comm, err = openComm(ctx, rt); err != nil {
		return nil, fmt.Errorf("notices and authority requests: %w", err)
	}
	return rt, nil
}

// Close closes every store.
func (rt *runtime) Close() error {
	var errs []error
	for _, f := range rt.closers {
		errs = append(errs, f())
	}
	for _, s := range rt.stores {
		errs = append(errs, s.Close())
	}
	for _, k := range rt.keys {
		errs = append(errs, k.Close())
	}
	if rt.control != nil {
		errs = append(errs, rt.control.Close())
	}
	return errors.Join(errs...)
}

func cellIDs(d *domicile.Deployment) string {
	ids := make([]string, len(d.Cells))
	for i, c := range d.Cells {
		ids[i] = c.ID
	}
	return strings.Join(ids, ", ")
}

// reloadCells returns why a reload from cur to next may not change its
// cells, or nil. The embedded runtime serves every cell, so its set of
// cells is fixed until a restart; a cell process or the router (spread,
// true) may learn of cells added elsewhere (a migration's target, started
// as its own process from the next deployment file) but none removed.
func reloadCells(cur, next *domicile.Deployment, spread bool) error {
	if !spread {
		if cellIDs(next) != cellIDs(cur) {
			return fmt.Errorf("the set of cells changed (%s -> %s); restart to add or remove cells", cellIDs(cur), cellIDs(next))
		}
		return nil
	}
	for _, c := range cur.Cells {
		if next.Cell(c.ID) == nil {
			return fmt.Errorf("cell %s is removed; restart every process to remove a cell", c.ID)
		}
	}
	return nil
}

func mustDefault() *domicile.Deployment { return deploy.Default() }
