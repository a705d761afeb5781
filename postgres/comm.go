package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"domicile"
	"domicile/authority"
	"domicile/notice"
	"domicile/report"
)

// Notices keeps change plans, their notices' delivery and
// acknowledgement, and the changes that took effect, in the deployment's
// shared schema. Notices name subjects by reference only. It implements
// [notice.Store].
type Notices struct{ s *Shared }

var _ notice.Store = (*Notices)(nil)

// Notices returns the notice store of s.
func (s *Shared) Notices() *Notices { return &Notices{s} }

// PutPlan stores a plan and its notices; notices stored before keep their
// delivery state.
func (n *Notices) PutPlan(ctx context.Context, p *notice.Plan) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("postgres: plan: %w", err)
	}
	docs := make([][]byte, len(p.Notices))
	for i, pl := range p.Notices {
		if docs[i], err = json.Marshal(pl.Notice); err != nil {
			return fmt.Errorf("postgres: notice: %w", err)
		}
	}
	err = n.s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO plans(id, created, doc) VALUES($1,$2,$3) ON CONFLICT (id) DO UPDATE SET doc=excluded.doc`,
			p.ID, p.Created.UnixNano(), doc); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for i, pl := range p.Notices {
			b.Queue(`INSERT INTO notices(id, plan, ref, cell, created, doc) VALUES($1,$2,$3,$4,$5,$6) ON CONFLICT (id) DO NOTHING`,
				pl.Notice.ID, p.ID, pl.Notice.SubjectRef, pl.Cell, pl.Notice.Created.UnixNano(), docs[i])
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return wrap("put plan", err)
	}
	return nil
}

// Plan returns a plan, or domicile.ErrNotFound.
func (n *Notices) Plan(ctx context.Context, id string) (*notice.Plan, error) {
	var doc []byte
	err := n.s.pool.QueryRow(ctx, `SELECT doc FROM plans WHERE id=$1`, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("plan", err)
	}
	var p notice.Plan
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("postgres: plan %s: %w", id, err)
	}
	return &p, nil
}

const noticeCols = `doc, cell, attempts, last_error, delivered, acknowledged`

func (n *Notices) query(ctx context.Context, q string, args ...any) ([]notice.State, error) {
	rows, err := n.s.pool.Query(ctx, `SELECT `+noticeCols+` FROM notices `+q, args...)
	if err != nil {
		return nil, wrap("notices", err)
	}
	var out []notice.State
	var doc []byte
	var cell, lastErr string
	var attempts int
	var del, ack *int64
	_, err = pgx.ForEachRow(rows, []any{&doc, &cell, &attempts, &lastErr, &del, &ack}, func() error {
		st := notice.State{Cell: cell, Attempts: attempts, LastError: lastErr}
		if err := json.Unmarshal(doc, &st.Notice); err != nil {
			return fmt.Errorf("notice: %w", err)
		}
		if del != nil {
			t := nsTime(*del)
			st.Delivered = &t
		}
		if ack != nil {
			t := nsTime(*ack)
			st.Acknowledged = &t
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, wrap("notices", err)
	}
	return out, nil
}

// Notices lists the notices of a plan in id order.
func (n *Notices) Notices(ctx context.Context, plan string) ([]notice.State, error) {
	return n.query(ctx, `WHERE plan=$1 ORDER BY id`, plan)
}

// SubjectNotices lists a subject's notices, oldest first.
func (n *Notices) SubjectNotices(ctx context.Context, ref string) ([]notice.State, error) {
	return n.query(ctx, `WHERE ref=$1 ORDER BY created, id`, ref)
}

// Notice returns one notice, or domicile.ErrNotFound.
func (n *Notices) Notice(ctx context.Context, id string) (*notice.State, error) {
	out, err := n.query(ctx, `WHERE id=$1`, id)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, domicile.ErrNotFound
	}
	return &out[0], nil
}

// RecordAttempt records a delivery attempt; delivered marks success (the
// first success's time is kept).
func (n *Notices) RecordAttempt(ctx context.Context, id string, at time.Time, errText string, delivered bool) error {
	q := `UPDATE notices SET attempts=attempts+1, last_error=$1 WHERE id=$2`
	args := []any{errText, id}
	if delivered {
		q = `UPDATE notices SET attempts=attempts+1, last_error='', delivered=COALESCE(delivered, $1) WHERE id=$2`
		args = []any{at.UnixNano(), id}
	}
	tag, err := n.s.pool.Exec(ctx, q, args...)
	if err != nil {
		return wrap("record attempt", err)
	}
	if tag.RowsAffected() == 0 {
		return domicile.ErrNotFound
	}
	return nil
}

// Acknowledge records the first acknowledgement of a notice.
func (n *Notices) Acknowledge(ctx context.Context, id string, at time.Time) error {
	tag, err := n.s.pool.Exec(ctx, `UPDATE notices SET acknowledged=COALESCE(acknowledged, $1) WHERE id=$2`, at.UnixNano(), id)
	if err != nil {
		return wrap("acknowledge", err)
	}
	if tag.RowsAffected() == 0 {
		return domicile.ErrNotFound
	}
	return nil
}

// PutApplied records changes that took effect, numbered after the last
// under the lock of applied_head's row, so that Applied lists them in the
// order they were recorded across processes.
func (n *Notices) PutApplied(ctx context.Context, cs []report.ChangeLine) error {
	if len(cs) == 0 {
		return nil
	}
	err := n.s.tx(ctx, func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM applied_head WHERE id=1 FOR UPDATE`).Scan(&seq); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for i, c := range cs {
			b.Queue(`INSERT INTO applied(seq, time, cell, field, before, after) VALUES($1,$2,$3,$4,$5,$6)`,
				seq+int64(i)+1, c.Time.UnixNano(), c.Cell, c.Field, c.Before, c.After)
		}
		b.Queue(`UPDATE applied_head SET seq=$1 WHERE id=1`, seq+int64(len(cs)))
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return wrap("put applied", err)
	}
	return nil
}

// Applied lists the changes that took effect, oldest first.
func (n *Notices) Applied(ctx context.Context) ([]report.ChangeLine, error) {
	rows, err := n.s.pool.Query(ctx, `SELECT time, cell, field, before, after FROM applied ORDER BY seq`)
	if err != nil {
		return nil, wrap("applied", err)
	}
	var out []report.ChangeLine
	var c report.ChangeLine
	var t int64
	_, err = pgx.ForEachRow(rows, []any{&t, &c.Cell, &c.Field, &c.Before, &c.After}, func() error {
		c.Time = nsTime(t)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, wrap("applied", err)
	}
	return out, nil
}

// Authority keeps authority requests in the deployment's shared schema.
// A request holds subject references, never raw ids. It implements
// [authority.Store].
type Authority struct{ s *Shared }

var _ authority.Store = (*Authority)(nil)

// Authority returns the authority request store of s.
func (s *Shared) Authority() *Authority { return &Authority{s} }

// Put inserts or replaces a request; its received time is the one it was
// first stored with.
func (a *Authority) Put(ctx context.Context, r *authority.Request) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("postgres: authority: %w", err)
	}
	if _, err := a.s.pool.Exec(ctx, `INSERT INTO requests(id, received, doc) VALUES($1,$2,$3) ON CONFLICT (id) DO UPDATE SET doc=excluded.doc`,
		r.ID, r.Received.UnixNano(), doc); err != nil {
		return wrap("put request", err)
	}
	return nil
}

// Get returns a request, or domicile.ErrNotFound.
func (a *Authority) Get(ctx context.Context, id string) (*authority.Request, error) {
	var doc []byte
	err := a.s.pool.QueryRow(ctx, `SELECT doc FROM requests WHERE id=$1`, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("request", err)
	}
	var r authority.Request
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, fmt.Errorf("postgres: request %s: %w", id, err)
	}
	return &r, nil
}

// List returns every request, oldest first.
func (a *Authority) List(ctx context.Context) ([]*authority.Request, error) {
	rows, err := a.s.pool.Query(ctx, `SELECT doc FROM requests ORDER BY received, id`)
	if err != nil {
		return nil, wrap("requests", err)
	}
	var out []*authority.Request
	var doc []byte
	_, err = pgx.ForEachRow(rows, []any{&doc}, func() error {
		var r authority.Request
		if err := json.Unmarshal(doc, &r); err != nil {
			return fmt.Errorf("request: %w", err)
		}
		out = append(out, &r)
		return nil
	})
	if err != nil {
		return nil, wrap("requests", err)
	}
	return out, nil
}
