package main

import (
	"context"
	"errors"
	"fmt"
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

// openCellStore opens the store of cell cc under dir: SQLite in
// <dir>/<cell>/, or PostgreSQL in the cell's schema with its blobs in
// <dir>/<cell>/blobs/.
func openCellStore(ctx context.Context, dir string, cc domicile.CellConfig) (cellStore, error) {
	cellDir := filepath.Join(dir, cc.ID)
	switch cc.Store.Kind {
	case "pebble":
		return pebblestore.Open(ctx, cellDir)
	case "postgres":
	default:
		return sqlite.Open(ctx, cellDir)
	}
	cfg, err := pgConfig("cell "+cc.ID+" store", cc.Store, cc.Store.Schema)
	if err != nil {
		return nil, err
	}
	return postgres.OpenConfig(ctx, cfg, filepath.Join(cellDir, "blobs"))
}

// openKeyStore opens the custody store of cell cc: SQLite in
// <dir>/custody/<cell>/, or PostgreSQL in the schema <schema>_keys of
// the cell's database, apart from the cell's data.
func openKeyStore(ctx context.Context, dir string, cc domicile.CellConfig) (keyStore, error) {
	if cc.Store.Kind != "postgres" {
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
