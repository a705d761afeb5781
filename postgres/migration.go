package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"domicile"
)

// The migration tables (postgres/migrations/control/0003_migrations.sql)
// live in the control schema beside the directory, so that a subject's
// switch of home and its migration state commit in one transaction.

const migrationColumns = `id, plan, state, created, started, finished, options, report`

func scanMigration(r pgx.Row) (*domicile.Migration, error) {
	var m domicile.Migration
	var created int64
	var started, finished *int64
	if err := r.Scan(&m.ID, &m.Plan, &m.State, &created, &started, &finished, &m.Options, &m.Report); err != nil {
		return nil, err
	}
	m.Created = nsTime(created)
	if started != nil {
		m.Started = nsTime(*started)
	}
	if finished != nil {
		m.Finished = nsTime(*finished)
	}
	return &m, nil
}

func putSubject(ctx context.Context, tx pgx.Tx, s domicile.MigrationSubject) error {
	_, err := tx.Exec(ctx, `INSERT INTO migration_subjects(plan, key, ref, src, dst, jurisdiction, state, src_digest, dst_digest,
		out_index, in_index, records, objects, bytes, transfer, switched, updated) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)
		ON CONFLICT (plan, key) DO UPDATE SET ref=excluded.ref, src=excluded.src, dst=excluded.dst, jurisdiction=excluded.jurisdiction,
		state=excluded.state, src_digest=excluded.src_digest, dst_digest=excluded.dst_digest, out_index=excluded.out_index,
		in_index=excluded.in_index, records=excluded.records, objects=excluded.objects, bytes=excluded.bytes,
		transfer=excluded.transfer, switched=excluded.switched, updated=excluded.updated`,
		s.Plan, s.Key[:], s.Ref[:], s.From, s.To, string(s.Jurisdiction), s.State, s.SourceDigest, s.TargetDigest,
		s.OutIndex, s.InIndex, s.Records, s.Objects, s.Bytes, s.Transfer, nullTime(s.Switched), s.Updated.UnixNano())
	return err
}

// PutMigration stores a new migration and its subjects; it fails with
// ErrVersionMismatch if the id exists.
func (c *Control) PutMigration(ctx context.Context, m domicile.Migration, subjects []domicile.MigrationSubject) error {
	err := c.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO migrations(id, plan, state, created, started, finished, options, report)
			VALUES($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`, m.ID, m.Plan, m.State, m.Created.UnixNano(),
			nullTime(m.Started), nullTime(m.Finished), m.Options, m.Report)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return domicile.ErrVersionMismatch
		}
		for _, s := range subjects {
			if err := putSubject(ctx, tx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, domicile.ErrVersionMismatch) {
		return err
	}
	if err != nil {
		return wrap("put migration", err)
	}
	return nil
}

// Migration returns one migration, or ErrNotFound.
func (c *Control) Migration(ctx context.Context, id string) (*domicile.Migration, error) {
	m, err := scanMigration(c.pool.QueryRow(ctx, `SELECT `+migrationColumns+` FROM migrations WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("migration", err)
	}
	return m, nil
}

// Migrations lists every migration, oldest first.
func (c *Control) Migrations(ctx context.Context) ([]domicile.Migration, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+migrationColumns+` FROM migrations ORDER BY created, id`)
	if err != nil {
		return nil, wrap("migrations", err)
	}
	defer rows.Close()
	var out []domicile.Migration
	for rows.Next() {
		m, err := scanMigration(rows)
		if err != nil {
			return nil, wrap("migrations", err)
		}
		out = append(out, *m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("migrations", err)
	}
	return out, nil
}

// UpdateMigration replaces a migration's state, times, options and
// report; ErrNotFound if there is none.
func (c *Control) UpdateMigration(ctx context.Context, m domicile.Migration) error {
	tag, err := c.pool.Exec(ctx, `UPDATE migrations SET state=$1, started=$2, finished=$3, options=$4, report=$5 WHERE id=$6`,
		m.State, nullTime(m.Started), nullTime(m.Finished), m.Options, m.Report, m.ID)
	if err != nil {
		return wrap("update migration", err)
	}
	if tag.RowsAffected() == 0 {
		return domicile.ErrNotFound
	}
	return nil
}

// MigrationSubjects lists a migration's subjects by key, after the key
// given, at most limit.
func (c *Control) MigrationSubjects(ctx context.Context, plan string, after domicile.SubjectRef, limit int) ([]domicile.MigrationSubject, error) {
	rows, err := c.pool.Query(ctx, `SELECT key, ref, src, dst, jurisdiction, state, src_digest, dst_digest, out_index, in_index,
		records, objects, bytes, transfer, switched, updated FROM migration_subjects WHERE plan=$1 AND key>$2 ORDER BY key LIMIT $3`, plan, after[:], limit)
	if err != nil {
		return nil, wrap("migration subjects", err)
	}
	defer rows.Close()
	var out []domicile.MigrationSubject
	for rows.Next() {
		s := domicile.MigrationSubject{Plan: plan}
		var key, ref []byte
		var j string
		var switched *int64
		var updated int64
		if err := rows.Scan(&key, &ref, &s.From, &s.To, &j, &s.State, &s.SourceDigest, &s.TargetDigest, &s.OutIndex, &s.InIndex,
			&s.Records, &s.Objects, &s.Bytes, &s.Transfer, &switched, &updated); err != nil {
			return nil, wrap("migration subjects", err)
		}
		if len(key) != len(s.Key) || len(ref) != len(s.Ref) {
			return nil, fmt.Errorf("postgres: migration subjects: malformed subject reference")
		}
		copy(s.Key[:], key)
		copy(s.Ref[:], ref)
		s.Jurisdiction, s.Updated = domicile.Jurisdiction(j), nsTime(updated)
		if switched != nil {
			s.Switched = nsTime(*switched)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("migration subjects", err)
	}
	return out, nil
}

// PutMigrationSubject replaces a subject's progress.
func (c *Control) PutMigrationSubject(ctx context.Context, s domicile.MigrationSubject) error {
	if err := c.tx(ctx, func(tx pgx.Tx) error { return putSubject(ctx, tx, s) }); err != nil {
		return wrap("put migration subject", err)
	}
	return nil
}

// SwitchHome moves the directory entry of s.Key from s.From to s.To and
// stores s, in one transaction; ErrVersionMismatch, changing nothing, if
// the entry is not (s.From, s.Ref).
func (c *Control) SwitchHome(ctx context.Context, s domicile.MigrationSubject) error {
	err := c.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE directory SET cell=$1 WHERE ref=$2 AND cell=$3 AND COALESCE(reg, ref)=$4`, s.To, s.Key[:], s.From, s.Ref[:])
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return domicile.ErrVersionMismatch
		}
		return putSubject(ctx, tx, s)
	})
	if errors.Is(err, domicile.ErrVersionMismatch) {
		return err
	}
	if err != nil {
		return wrap("switch home", err)
	}
	return nil
}

// HomesIn lists the directory entries whose home is cell, by key, after
// the key given, at most limit.
func (c *Control) HomesIn(ctx context.Context, cell string, after domicile.SubjectRef, limit int) ([]domicile.HomeEntry, error) {
	rows, err := c.pool.Query(ctx, `SELECT ref, COALESCE(reg, ref) FROM directory WHERE cell=$1 AND ref>$2 ORDER BY ref LIMIT $3`, cell, after[:], limit)
	if err != nil {
		return nil, wrap("homes", err)
	}
	defer rows.Close()
	var out []domicile.HomeEntry
	for rows.Next() {
		var key, reg []byte
		if err := rows.Scan(&key, &reg); err != nil {
			return nil, wrap("homes", err)
		}
		e := domicile.HomeEntry{Home: domicile.Home{Cell: cell}}
		if len(key) != len(e.Key) || len(reg) != len(e.Home.Ref) {
			return nil, fmt.Errorf("postgres: homes: malformed subject reference")
		}
		copy(e.Key[:], key)
		copy(e.Home.Ref[:], reg)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("homes", err)
	}
	return out, nil
}

var _ domicile.MigrationStore = (*Control)(nil)
