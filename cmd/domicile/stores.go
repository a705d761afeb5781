package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"domicile"
	"domicile/authority"
	"domicile/deploy"
	"domicile/notice"
	"domicile/pebblestore"
	"domicile/postgres"
	"domicile/sqlite"
	"domicile/sqlite/commstore"
	"domicile/tlog"
	"domicile/transfer"
)

// cellStore is what the runtime needs of a cell's store: the store the
// cell serves from, and the checks and repair of its log on open. Both
// sqlite.Store and postgres.Store are.
type cellStore interface {
	domicile.CellStore
	tlog.CheckStore
}

// keyStore is a cell's custody store of wrapped data keys.
type keyStore interface {
	domicile.KeyStore
	Close() error
}

// pgConfig is the postgres package's configuration of a store section:
// the connection string from the environment variable it names, and its
// settings (zero: the package's defaults).
func pgConfig(what string, sc domicile.StoreConfig, schema string) (postgres.Config, error) {
	dsn := os.Getenv(sc.DSNEnv)
	if dsn == "" {
		return postgres.Config{}, fmt.Errorf("%s: environment variable %s (dsn_env) is empty: it must hold the PostgreSQL connection string", what, sc.DSNEnv)
	}
	return postgres.Config{DSN: dsn, Schema: schema, MaxConns: int32(sc.MaxConns), StatementTimeout: sc.StatementTimeout,
		ConnectTimeout: sc.ConnectTimeout, Retries: sc.Retries}, nil
}

// The kinds of a cell's store, as a deployment file names them.
const (
	kindSQLite   = "sqlite"
	kindPebble   = "pebble"
	kindPostgres = "postgres"
)

// cellStorage is the store a cell uses under a data directory: its kind,
// resolved by resolveCellStore, and for an embedded kind the file or
// directory that holds it.
type cellStorage struct {
	// Kind is kindSQLite, kindPebble or kindPostgres, never empty.
	Kind string
	// Path is <data>/<cell>/cell.db for SQLite, <data>/<cell>/pebble for
	// Pebble, and empty for PostgreSQL, whose data is in its schema.
	Path string
	// Exists says whether Path exists: the cell has opened its embedded
	// store before.
	Exists bool
	// Default says that the deployment file names no kind and Kind is
	// the embedded default, chosen by what the directory holds.
	Default bool
}

// describe names the store's kind for the server log, and, for the
// embedded default, why it is that kind.
func (cs cellStorage) describe() string {
	switch {
	case !cs.Default:
		return cs.Kind
	case cs.Kind == kindSQLite:
		return "sqlite (no kind named; the directory holds a SQLite store)"
	}
	return "pebble (no kind named: the default)"
}

// storeChoiceError says why a cell's store cannot be chosen: the data
// directory holds a store of another kind than the one the deployment
// file names, or, when the file names none, stores of both embedded
// kinds. The cell refuses to serve rather than open a new, empty store
// beside its data.
type storeChoiceError struct {
	Cell string
	// Named is the kind the deployment file names ("" for none).
	Named string
	// Found are the embedded stores found in the cell's directory.
	Found []string
}

// Error says what was found, where, and what to change.
func (e *storeChoiceError) Error() string {
	if e.Named == "" {
		return fmt.Sprintf("cell %s: the deployment file names no store kind, and the data directory holds both a SQLite store (%s) and a Pebble store (%s): "+
			"name the one that holds the cell's data in the cell's store section ({kind: sqlite} or {kind: pebble}) and move the other away", e.Cell, e.Found[0], e.Found[1])
	}
	return fmt.Sprintf("cell %s: the deployment file names store kind %s, but the data directory holds the cell's store as %s and no %s store: "+
		"name the kind the data is in, or no kind to follow what the directory holds (domicile does not convert a cell's store from one kind to another)",
		e.Cell, e.Named, e.Found[0], e.Named)
}

// resolveCellStore returns the store cell cc uses under data directory
// dir. It is the one place that reads a cell's configured store kind:
// every caller that opens a cell's store, looks for it on disk or asks
// which kind it is goes through it, so that none can take a cell that
// names no kind for a new Pebble cell while its data sits in SQLite.
//
// A kind the deployment file names is the kind, except that an embedded
// kind whose store is absent while the other embedded kind's is present
// is a *storeChoiceError (a wrong file, not a new cell). A cell that
// names no kind uses the embedded default, which follows the directory:
// SQLite if <dir>/<cell>/cell.db exists (a cell made when SQLite was the
// default, or by a file that named it), otherwise Pebble (a new cell, or
// one whose <dir>/<cell>/pebble exists); both present is a
// *storeChoiceError naming both paths.
//
// The resolution is made here, where the data directory is known, and
// not when the deployment file is parsed: the same file is read by
// processes with different data directories (the router, each cell
// process, `notice plan`), and by some with none, and a Deployment is
// immutable and replaced whole on reload. Resolving at every open costs
// two stat calls, and once a cell has opened its store the result stays
// the same, since the store's own file then exists.
func resolveCellStore(dir string, cc domicile.CellConfig) (cellStorage, error) {
	cellDir := filepath.Join(dir, cc.ID)
	lite := cellStorage{Kind: kindSQLite, Path: filepath.Join(cellDir, sqlite.CellFile)}
	peb := cellStorage{Kind: kindPebble, Path: filepath.Join(cellDir, pebblestore.DirName)}
	var err error
	if lite.Exists, err = exists(lite.Path); err != nil {
		return cellStorage{}, fmt.Errorf("cell %s store: %w", cc.ID, err)
	}
	if peb.Exists, err = exists(peb.Path); err != nil {
		return cellStorage{}, fmt.Errorf("cell %s store: %w", cc.ID, err)
	}
	switch named := cc.Store.Kind; named {
	case kindPostgres:
		return cellStorage{Kind: kindPostgres}, nil
	case kindSQLite:
		if !lite.Exists && peb.Exists {
			return cellStorage{}, &storeChoiceError{Cell: cc.ID, Named: named, Found: []string{peb.Path}}
		}
		return lite, nil
	case kindPebble:
		if !peb.Exists && lite.Exists {
			return cellStorage{}, &storeChoiceError{Cell: cc.ID, Named: named, Found: []string{lite.Path}}
		}
		return peb, nil
	case "":
		switch {
		case lite.Exists && peb.Exists:
			return cellStorage{}, &storeChoiceError{Cell: cc.ID, Found: []string{lite.Path, peb.Path}}
		case lite.Exists:
			lite.Default = true
			return lite, nil
		}
		peb.Default = true
		return peb, nil
	default:
		// deploy.Parse refuses any other kind.
		return cellStorage{}, fmt.Errorf("cell %s: store kind %q (want sqlite, pebble or postgres)", cc.ID, named)
	}
}

// exists reports whether path exists.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// openCellStore opens the store cs of cell cc under dir: SQLite or
// Pebble in <dir>/<cell>/, or PostgreSQL in the cell's schema with its
// blobs in <dir>/<cell>/blobs/.
func openCellStore(ctx context.Context, dir string, cc domicile.CellConfig, cs cellStorage) (cellStore, error) {
	cellDir := filepath.Join(dir, cc.ID)
	switch cs.Kind {
	case kindPebble:
		return pebblestore.OpenConfig(ctx, cellDir, pebbleConfig(cc))
	case kindSQLite:
		return sqlite.Open(ctx, cellDir)
	}
	cfg, err := pgConfig("cell "+cc.ID+" store", cc.Store, cc.Store.Schema)
	if err != nil {
		return nil, err
	}
	return postgres.OpenConfig(ctx, cfg, filepath.Join(cellDir, "blobs"))
}

// pebbleConfig is the Pebble store configuration cell cc's store section
// names (deploy.Parse bounds memory_mib).
func pebbleConfig(cc domicile.CellConfig) pebblestore.Config {
	return pebblestore.Config{MemoryBytes: int64(cc.Store.MemoryMiB) << 20}
}

// openKeyStore opens the custody store of cell cc, whose store is cs:
// SQLite in <dir>/custody/<cell>/ beside an embedded store, or
// PostgreSQL in the schema <schema>_keys of the cell's database, apart
// from the cell's data.
func openKeyStore(ctx context.Context, dir string, cc domicile.CellConfig, cs cellStorage) (keyStore, error) {
	if cs.Kind != kindPostgres {
		return sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody", cc.ID))
	}
	cfg, err := pgConfig("cell "+cc.ID+" custody", cc.Store, cc.Store.Schema+"_keys")
	if err != nil {
		return nil, err
	}
	return postgres.OpenKeyStoreConfig(ctx, cfg)
}

// openControl opens the deployment's control store (tokens, revocations,
// the directory): SQLite in <dir>/control/, or the PostgreSQL schema the
// deployment file's control section names.
func openControl(ctx context.Context, dep *domicile.Deployment, dir string) (domicile.ControlStore, error) {
	if dep.Control.Kind != "postgres" {
		return sqlite.OpenControl(ctx, filepath.Join(dir, "control"))
	}
	cfg, err := pgConfig("control store", dep.Control, dep.Control.Schema)
	if err != nil {
		return nil, err
	}
	return postgres.OpenControlConfig(ctx, cfg)
}

// ledgerStore is the transfer gateway's store: the ledger, mechanisms and
// consents, shared by every process of a deployment.
type ledgerStore interface {
	transfer.Store
	Close() error
}

// openShared opens the deployment-wide stores beside a PostgreSQL
// control store: the schema deploy.SharedSchema names, in the control
// store's database.
func openShared(ctx context.Context, dep *domicile.Deployment) (*postgres.Shared, error) {
	cfg, err := pgConfig("deployment-wide stores", dep.Control, deploy.SharedSchema(dep.Control.Schema))
	if err != nil {
		return nil, err
	}
	return postgres.OpenShared(ctx, cfg)
}

// openLedger opens the transfer ledger: SQLite in <dir>/control/
// (transfers.db, whose flock serialises the decisions of the processes of
// one machine), or, with a PostgreSQL control store, in its database,
// where the processes of every machine share it.
func openLedger(ctx context.Context, dep *domicile.Deployment, dir string) (ledgerStore, error) {
	if dep.Control.Kind != "postgres" {
		return sqlite.OpenLedger(ctx, filepath.Join(dir, "control"))
	}
	s, err := openShared(ctx, dep)
	if err != nil {
		return nil, err
	}
	return s.Ledger(), nil
}

// openCommStores opens the notice and authority request stores: SQLite
// files in <dir>/control/ (notices.db, authority.db), or, with a
// PostgreSQL control store, in its database. close closes both.
func openCommStores(ctx context.Context, dep *domicile.Deployment, dir string) (notice.Store, authority.Store, func() error, error) {
	if dep.Control.Kind == "postgres" {
		s, err := openShared(ctx, dep)
		if err != nil {
			return nil, nil, nil, err
		}
		return s.Notices(), s.Authority(), s.Close, nil
	}
	ns, err := commstore.OpenNotices(ctx, filepath.Join(dir, "control"))
	if err != nil {
		return nil, nil, nil, err
	}
	as, err := commstore.OpenAuthority(ctx, filepath.Join(dir, "control"))
	if err != nil {
		ns.Close()
		return nil, nil, nil, err
	}
	return ns, as, func() error { return errors.Join(ns.Close(), as.Close()) }, nil
}
