package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"domicile"
)

// The migration tables live in the control database, beside the
// directory, so that a subject's switch of home and its migration state
// commit in one transaction.
const migrationSchema = `
CREATE TABLE IF NOT EXISTS migrations(id TEXT PRIMARY KEY, plan BLOB NOT NULL, state TEXT NOT NULL,
	created INTEGER NOT NULL, started INTEGER, finished INTEGER, options BLOB, report BLOB);
CREATE TABLE IF NOT EXISTS migration_subjects(plan TEXT NOT NULL, key BLOB NOT NULL, ref BLOB NOT NULL,
	src TEXT NOT NULL, dst TEXT NOT NULL, jurisdiction TEXT NOT NULL, state TEXT NOT NULL,
	src_digest TEXT NOT NULL, dst_digest TEXT NOT NULL, out_index INTEGER NOT NULL, in_index INTEGER NOT NULL,
	records INTEGER NOT NULL, objects INTEGER NOT NULL, bytes INTEGER NOT NULL, transfer TEXT NOT NULL,
	switched INTEGER, updated INTEGER NOT NULL, PRIMARY KEY(plan, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS directory_cell ON directory(cell, ref);`

// migrations is a hook for the tables' creation, which OpenControl does.
func (c *Control) migrations(context.Context) error { return nil }

func nsOrZero(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.Unix(0, v.Int64).UTC()
}

func putSubjectTx(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, s domicile.MigrationSubject) error {
	_, err := q.ExecContext(ctx, `INSERT INTO migration_subjects(plan, key, ref, src, dst, jurisdiction, state, src_digest, dst_digest,
		out_index, in_index, records, objects, bytes, transfer, switched, updated) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(plan, key) DO UPDATE SET ref=excluded.ref, src=excluded.src, dst=excluded.dst, jurisdiction=excluded.jurisdiction,
		state=excluded.state, src_digest=excluded.src_digest, dst_digest=excluded.dst_digest, out_index=excluded.out_index,
		in_index=excluded.in_index, records=excluded.records, objects=excluded.objects, bytes=excluded.bytes,
		transfer=excluded.transfer, switched=excluded.switched, updated=excluded.updated`,
		s.Plan, s.Key[:], s.Ref[:], s.From, s.To, string(s.Jurisdiction), s.State, s.SourceDigest, s.TargetDigest,
		s.OutIndex, s.InIndex, s.Records, s.Objects, s.Bytes, s.Transfer, nullTime(s.Switched), s.Updated.UnixNano())
	return err
}

// PutMigration stores a new migration and its subjects.
func (c *Control) PutMigration(ctx context.Context, m domicile.Migration, subjects []domicile.MigrationSubject) error {
	if err := c.migrations(ctx); err != nil {
		return err
	}
	return c.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO migrations(id, plan, state, created, started, finished, options, report)
			VALUES(?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`, m.ID, m.Plan, m.State, m.Created.UnixNano(),
			nullTime(m.Started), nullTime(m.Finished), m.Options, m.Report)
		if err != nil {
			return fmt.Errorf("sqlite: put migration: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domicile.ErrVersionMismatch
		}
		for _, s := range subjects {
			if err := putSubjectTx(ctx, tx, s); err != nil {
				return fmt.Errorf("sqlite: put migration subject: %w", err)
			}
		}
		return nil
	})
}

const migrationColumns = `id, plan, state, created, started, finished, options, report`

func scanMigration(r rowScanner) (*domicile.Migration, error) {
	var m domicile.Migration
	var created int64
	var started, finished sql.NullInt64
	if err := r.Scan(&m.ID, &m.Plan, &m.State, &created, &started, &finished, &m.Options, &m.Report); err != nil {
		return nil, err
	}
	m.Created, m.Started, m.Finished = time.Unix(0, created).UTC(), nsOrZero(started), nsOrZero(finished)
	return &m, nil
}

// Migration returns one migration, or ErrNotFound.
func (c *Control) Migration(ctx context.Context, id string) (*domicile.Migration, error) {
	if err := c.migrations(ctx); err != nil {
		return nil, err
	}
	m, err := scanMigration(c.db.QueryRowContext(ctx, `SELECT `+migrationColumns+` FROM migrations WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: migration: %w", err)
	}
	return m, nil
}

// Migrations lists every migration, oldest first.
func (c *Control) Migrations(ctx context.Context) ([]domicile.Migration, error) {
	if err := c.migrations(ctx); err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT `+migrationColumns+` FROM migrations ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	defer rows.Close()
	var out []domicile.Migration
	for rows.Next() {
		m, err := scanMigration(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: migrations: %w", err)
		}
		out = append(out, *m)
	}
	return out, rows.Err()
}

// UpdateMigration replaces a migration's state, times, options and report.
func (c *Control) UpdateMigration(ctx context.Context, m domicile.Migration) error {
	if err := c.migrations(ctx); err != nil {
		return err
	}
	res, err := c.db.ExecContext(ctx, `UPDATE migrations SET state=?, started=?, finished=?, options=?, report=? WHERE id=?`,
		m.State, nullTime(m.Started), nullTime(m.Finished), m.Options, m.Report, m.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update migration: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domicile.ErrNotFound
	}
	return nil
}

// MigrationSubjects lists a migration's subjects by key.
func (c *Control) MigrationSubjects(ctx context.Context, plan string, after domicile.SubjectRef, limit int) ([]domicile.MigrationSubject, error) {
	if err := c.migrations(ctx); err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT key, ref, src, dst, jurisdiction, state, src_digest, dst_digest, out_index, in_index,
		records, objects, bytes, transfer, switched, updated FROM migration_subjects WHERE plan=? AND key>? ORDER BY key LIMIT ?`, plan, after[:], limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migration subjects: %w", err)
	}
	defer rows.Close()
	var out []domicile.MigrationSubject
	for rows.Next() {
		s := domicile.MigrationSubject{Plan: plan}
		var key, ref []byte
		var j string
		var switched sql.NullInt64
		var updated int64
		if err := rows.Scan(&key, &ref, &s.From, &s.To, &j, &s.State, &s.SourceDigest, &s.TargetDigest, &s.OutIndex, &s.InIndex,
			&s.Records, &s.Objects, &s.Bytes, &s.Transfer, &switched, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: migration subjects: %w", err)
		}
		copy(s.Key[:], key)
		copy(s.Ref[:], ref)
		s.Jurisdiction, s.Switched, s.Updated = domicile.Jurisdiction(j), nsOrZero(switched), time.Unix(0, updated).UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// PutMigrationSubject replaces a subject's progress.
func (c *Control) PutMigrationSubject(ctx context.Context, s domicile.MigrationSubject) error {
	if err := c.migrations(ctx); err != nil {
		return err
	}
	if err := putSubjectTx(ctx, c.db, s); err != nil {
		return fmt.Errorf("sqlite: put migration subject: %w", err)
	}
	return nil
}

// SwitchHome moves a directory entry and records the switch, in one
// transaction.
func (c *Control) SwitchHome(ctx context.Context, s domicile.MigrationSubject) error {
	if err := c.migrations(ctx); err != nil {
		return err
	}
	return c.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE directory SET cell=? WHERE ref=? AND cell=? AND COALESCE(reg, ref)=?`, s.To, s.Key[:], s.From, s.Ref[:])
		if err != nil {
			return fmt.Errorf("sqlite: switch home: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domicile.ErrVersionMismatch
		}
		if err := putSubjectTx(ctx, tx, s); err != nil {
			return fmt.Errorf("sqlite: switch home: %w", err)
		}
		return nil
	})
}

// HomesIn lists the directory entries whose home is cell.
func (c *Control) HomesIn(ctx context.Context, cell string, after domicile.SubjectRef, limit int) ([]domicile.HomeEntry, error) {
	if err := c.migrations(ctx); err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT ref, COALESCE(reg, ref) FROM directory WHERE cell=? AND ref>? ORDER BY ref LIMIT ?`, cell, after[:], limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: homes: %w", err)
	}
	defer rows.Close()
	var out []domicile.HomeEntry
	for rows.Next() {
		var key, reg []byte
		if err := rows.Scan(&key, &reg); err != nil {
			return nil, fmt.Errorf("sqlite: homes: %w", err)
		}
		e := domicile.HomeEntry{Home: domicile.Home{Cell: cell}}
		copy(e.Key[:], key)
		copy(e.Home.Ref[:], reg)
		out = append(out, e)
	}
	return out, rows.Err()
}

var _ domicile.MigrationStore = (*Control)(nil)
