package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"domicile"
	"domicile/postgres"
	"domicile/sqlite"
	"domicile/tlog"
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
	if cc.Store.Kind != "postgres" {
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
