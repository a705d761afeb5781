package commstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"domicile"
	"domicile/notice"
	"domicile/report"
	"domicile/sqlite"
)

// Notices keeps change plans, their notices' delivery and acknowledgement,
// and the changes that took effect, in <dir>/notices.db (the control
// directory). Notices name subjects by reference only. It implements
// notice.Store.
type Notices struct{ db *sql.DB }

var _ notice.Store = (*Notices)(nil)

// OpenNotices opens (creating if needed) the notice store in dir.
func OpenNotices(ctx context.Context, dir string) (*Notices, error) {
	db, err := openDocDB(ctx, dir, "notices.db", `
		CREATE TABLE IF NOT EXISTS plans(id TEXT PRIMARY KEY, created INTEGER NOT NULL, doc BLOB NOT NULL);
		CREATE TABLE IF NOT EXISTS notices(id TEXT PRIMARY KEY, plan TEXT NOT NULL, ref TEXT NOT NULL, cell TEXT NOT NULL,
			created INTEGER NOT NULL, doc BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
			delivered INTEGER, acknowledged INTEGER);
		CREATE INDEX IF NOT EXISTS notices_ref ON notices(ref);
		CREATE INDEX IF NOT EXISTS notices_plan ON notices(plan);
		CREATE TABLE IF NOT EXISTS applied(seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, cell TEXT NOT NULL,
			field TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL);`)
	if err != nil {
		return nil, err
	}
	return &Notices{db: db}, nil
}

// Close closes the store.
func (n *Notices) Close() error { return n.db.Close() }

// PutPlan stores a plan and its notices; notices stored before keep their
// delivery state.
func (n *Notices) PutPlan(ctx context.Context, p *notice.Plan) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("sqlite: plan: %w", err)
	}
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put plan: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO plans(id, created, doc) VALUES(?,?,?) ON CONFLICT(id) DO UPDATE SET doc=excluded.doc`,
		p.ID, p.Created.UnixNano(), doc); err != nil {
		return fmt.Errorf("sqlite: put plan: %w", err)
	}
	for _, pl := range p.Notices {
		nd, err := json.Marshal(pl.Notice)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO notices(id, plan, ref, cell, created, doc) VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING`,
			pl.Notice.ID, p.ID, pl.Notice.SubjectRef, pl.Cell, pl.Notice.Created.UnixNano(), nd); err != nil {
			return fmt.Errorf("sqlite: put notice: %w", err)
		}
	}
	return tx.Commit()
}

// Plan returns a plan, or domicile.ErrNotFound.
func (n *Notices) Plan(ctx context.Context, id string) (*notice.Plan, error) {
	var doc []byte
	err := n.db.QueryRowContext(ctx, `SELECT doc FROM plans WHERE id=?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: plan: %w", err)
	}
	var p notice.Plan
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("sqlite: plan %s: %w", id, err)
	}
	return &p, nil
}

const noticeCols = `doc, cell, attempts, last_error, delivered, acknowledged`

func scanNotices(rows *sql.Rows) ([]notice.State, error) {
	defer rows.Close()
	var out []notice.State
	for rows.Next() {
		var st notice.State
		var doc []byte
		var del, ack sql.NullInt64
		if err := rows.Scan(&doc, &st.Cell, &st.Attempts, &st.LastError, &del, &ack); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(doc, &st.Notice); err != nil {
			return nil, fmt.Errorf("sqlite: notice: %w", err)
		}
		if del.Valid {
			t := nsTime(del.Int64)
			st.Delivered = &t
		}
		if ack.Valid {
			t := nsTime(ack.Int64)
			st.Acknowledged = &t
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Notices lists the notices of a plan in id order.
func (n *Notices) Notices(ctx context.Context, plan string) ([]notice.State, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT `+noticeCols+` FROM notices WHERE plan=? ORDER BY id`, plan)
	if err != nil {
		return nil, fmt.Errorf("sqlite: notices: %w", err)
	}
	return scanNotices(rows)
}

// SubjectNotices lists a subject's notices, oldest first.
func (n *Notices) SubjectNotices(ctx context.Context, ref string) ([]notice.State, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT `+noticeCols+` FROM notices WHERE ref=? ORDER BY created, id`, ref)
	if err != nil {
		return nil, fmt.Errorf("sqlite: notices: %w", err)
	}
	return scanNotices(rows)
}

// Notice returns one notice, or domicile.ErrNotFound.
func (n *Notices) Notice(ctx context.Context, id string) (*notice.State, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT `+noticeCols+` FROM notices WHERE id=?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: notice: %w", err)
	}
	out, err := scanNotices(rows)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, domicile.ErrNotFound
	}
	return &out[0], nil
}

// RecordAttempt records a delivery attempt.
func (n *Notices) RecordAttempt(ctx context.Context, id string, at time.Time, errText string, delivered bool) error {
	q := `UPDATE notices SET attempts=attempts+1, last_error=? WHERE id=?`
	args := []any{errText, id}
	if delivered {
		q = `UPDATE notices SET attempts=attempts+1, last_error='', delivered=COALESCE(delivered, ?) WHERE id=?`
		args = []any{at.UnixNano(), id}
	}
	res, err := n.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlite: record attempt: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return domicile.ErrNotFound
	}
	return nil
}

// Acknowledge records the first acknowledgement of a notice.
func (n *Notices) Acknowledge(ctx context.Context, id string, at time.Time) error {
	res, err := n.db.ExecContext(ctx, `UPDATE notices SET acknowledged=COALESCE(acknowledged, ?) WHERE id=?`, at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("sqlite: acknowledge: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return domicile.ErrNotFound
	}
	return nil
}

// PutApplied records changes that took effect.
func (n *Notices) PutApplied(ctx context.Context, cs []report.ChangeLine) error {
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, c := range cs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO applied(time, cell, field, before, after) VALUES(?,?,?,?,?)`,
			c.Time.UnixNano(), c.Cell, c.Field, c.Before, c.After); err != nil {
			return fmt.Errorf("sqlite: put applied: %w", err)
		}
	}
	return tx.Commit()
}

// Applied lists the changes that took effect, oldest first.
func (n *Notices) Applied(ctx context.Context) ([]report.ChangeLine, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT time, cell, field, before, after FROM applied ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: applied: %w", err)
	}
	defer rows.Close()
	var out []report.ChangeLine
	for rows.Next() {
		var c report.ChangeLine
		var t int64
		if err := rows.Scan(&t, &c.Cell, &c.Field, &c.Before, &c.After); err != nil {
			return nil, err
		}
		c.Time = nsTime(t)
		out = append(out, c)
	}
	return out, rows.Err()
}

// CellSubjects lists the subjects of the cell database in dir (a cell's
// data directory) with the fields of their records, reading it without
// writing, so that it is safe while the service runs.
func CellSubjects(ctx context.Context, dir string) ([]notice.SubjectInfo, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(ON)")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.CellFile)+"?mode=ro&"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT s.ref, s.jurisdiction, COALESCE(r.kind, ''), COALESCE(r.fields, '')
		FROM subjects s LEFT JOIN records r ON r.ref = s.ref AND r.body IS NOT NULL ORDER BY s.ref`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: subjects of %s: %w", dir, err)
	}
	defer rows.Close()
	var out []notice.SubjectInfo
	for rows.Next() {
		var ref []byte
		var j, kind, fields string
		if err := rows.Scan(&ref, &j, &kind, &fields); err != nil {
			return nil, err
		}
		var r domicile.SubjectRef
		copy(r[:], ref)
		if len(out) == 0 || out[len(out)-1].Ref != r.String() {
			out = append(out, notice.SubjectInfo{Ref: r.String(), Jurisdiction: domicile.Jurisdiction(j), Fields: map[string][]string{}})
		}
		if kind != "" {
			cur := &out[len(out)-1]
			for _, f := range strings.Split(fields, ",") {
				if f != "" && !containsStr(cur.Fields[kind], f) {
					cur.Fields[kind] = append(cur.Fields[kind], f)
				}
			}
		}
	}
	return out, rows.Err()
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
