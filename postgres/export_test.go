package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// MigrateTo brings schema's tables of set up to version upTo only, as
// an older binary would have left them; it returns the versions applied.
func MigrateTo(ctx context.Context, dsn, schema, set string, upTo int64) ([]int64, error) {
	cfg, err := Config{DSN: dsn, Schema: schema}.withDefaults()
	if err != nil {
		return nil, err
	}
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	pcfg.RuntimeParams["search_path"] = schema
	c, err := pgx.ConnectConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	return migrate(ctx, c, cfg.Schema, set, false, cfg.Retries, upTo)
}

// Migrations returns how many migrations set has.
func Migrations(set string) int { return len(migrations(set)) }
