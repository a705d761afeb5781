package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"domicile"
)

// Ledger is the transfer gateway's store on SQLite, in its own database
// file (transfers.db): the distinct counts and their members (keyed by
// subject reference, never by raw id), transfer records, registered
// mechanisms and subjects' consents. It is safe for concurrent use.
type Ledger struct {
	db  *sql.DB
	dir string // holds transfers.db and transfers.lock
}

const ledgerSchema = `
CREATE TABLE IF NOT EXISTS counts(id INTEGER PRIMARY KEY, entity TEXT NOT NULL, year INTEGER NOT NULL,
  source TEXT NOT NULL, class TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL, n INTEGER NOT NULL,
  UNIQUE(entity, year, source, class, dim, value));
CREATE TABLE IF NOT EXISTS members(count INTEGER NOT NULL, ref BLOB NOT NULL, PRIMARY KEY(count, ref)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transfers(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, time INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS transfers_time ON transfers(time);
CREATE TABLE IF NOT EXISTS mechanisms(id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consents(ref BLOB NOT NULL, kind TEXT NOT NULL, version TEXT NOT NULL,
  granted INTEGER NOT NULL, time INTEGER NOT NULL, PRIMARY KEY(ref, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS warnings(entity TEXT NOT NULL, year INTEGER NOT NULL, fact TEXT NOT NULL,
  threshold INTEGER NOT NULL, percent INTEGER NOT NULL, PRIMARY KEY(entity, year, fact, threshold, percent)) WITHOUT ROWID;
`

// OpenLedger opens (creating if needed) the transfer store in dir, in the
// file transfers.db.
func OpenLedger(ctx context.Context, dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: ledger: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "cache_size(-65536)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "transfers.db")+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: ledger: %w", err)
	}
	db.SetMaxOpenConns(8)
	if _, err := db.ExecContext(ctx, ledgerSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: ledger schema: %w", err)
	}
	return &Ledger{db: db, dir: dir}, nil
}

// Close closes the store.
func (l *Ledger) Close() error { return l.db.Close() }

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func countID(ctx context.Context, q querier, k domicile.CountKey) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM counts WHERE entity=? AND year=? AND source=? AND class=? AND dim=? AND value=?`,
		k.Entity, k.Year, string(k.Source), string(k.Class), k.Dim, k.Value).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, domicile.ErrNotFound
	}
	return id, err
}

// Counts returns the value of each key.
func (l *Ledger) Counts(ctx context.Context, keys []domicile.CountKey) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		err := l.db.QueryRowContext(ctx, `SELECT n FROM counts WHERE entity=? AND year=? AND source=? AND class=? AND dim=? AND value=?`,
			k.Entity, k.Year, string(k.Source), string(k.Class), k.Dim, k.Value).Scan(&out[i])
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: ledger counts: %w", err)
		}
	}
	return out, nil
}

// membersBatch bounds the refs of one IN query.
const membersBatch = 500

// Members reports which refs are already in the count.
func (l *Ledger) Members(ctx context.Context, key domicile.CountKey, refs []domicile.SubjectRef) ([]bool, error) {
	out := make([]bool, len(refs))
	id, err := countID(ctx, l.db, key)
	if errors.Is(err, domicile.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: ledger members: %w", err)
	}
	if len(refs) == 1 {
		var one int
		err := l.db.QueryRowContext(ctx, `SELECT 1 FROM members WHERE count=? AND ref=?`, id, refs[0][:]).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: ledger members: %w", err)
		}
		out[0] = err == nil
		return out, nil
	}
	index := make(map[domicile.SubjectRef][]int, len(refs))
	for i, r := range refs {
		index[r] = append(index[r], i)
	}
	for start := 0; start < len(refs); start += membersBatch {
		part := refs[start:min(start+membersBatch, len(refs))]
		args := make([]any, 0, len(part)+1)
		args = append(args, id)
		for _, r := range part {
			args = append(args, r[:])
		}
		rows, err := l.db.QueryContext(ctx, `SELECT ref FROM members WHERE count=? AND ref IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: ledger members: %w", err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return nil, err
			}
			var r domicile.SubjectRef
			copy(r[:], b)
			for _, i := range index[r] {
				out[i] = true
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertBatch is how many members one INSERT statement adds.
const insertBatch = 256

// Record applies adds and stores r, with its NewPI and NewSPI set from
// what the adds did ([domicile.TransferRecord.SetNew]), in one durable
// transaction.
func (l *Ledger) Record(ctx context.Context, r *domicile.TransferRecord, adds []domicile.CountAdd) ([]int64, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ledger record: %w", err)
	}
	defer tx.Rollback()
	full, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO members(count, ref) VALUES(?,?)`+strings.Repeat(",(?,?)", insertBatch-1))
	if err != nil {
		return nil, fmt.Errorf("sqlite: ledger record: %w", err)
	}
	defer full.Close()
	added := make([]int64, len(adds))
	for i, a := range adds {
		k := a.Key
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO counts(entity, year, source, class, dim, value, n) VALUES(?,?,?,?,?,?,0)`,
			k.Entity, k.Year, string(k.Source), string(k.Class), k.Dim, k.Value); err != nil {
			return nil, fmt.Errorf("sqlite: ledger record: %w", err)
		}
		id, err := countID(ctx, tx, k)
		if err != nil {
			return nil, fmt.Errorf("sqlite: ledger record: %w", err)
		}
		// Sorted keys insert into the B-tree in order, far faster.
		refs := slices.Clone(a.Refs)
		slices.SortFunc(refs, func(x, y domicile.SubjectRef) int { return bytes.Compare(x[:], y[:]) })
		args := make([]any, 0, 2*insertBatch)
		for start := 0; start < len(refs); start += insertBatch {
			part := refs[start:min(start+insertBatch, len(refs))]
			args = args[:0]
			for _, ref := range part {
				args = append(args, id, ref[:])
			}
			var res sql.Result
			if len(part) == insertBatch {
				res, err = full.ExecContext(ctx, args...)
			} else {
				res, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO members(count, ref) VALUES(?,?)`+strings.Repeat(",(?,?)", len(part)-1), args...)
			}
			if err != nil {
				return nil, fmt.Errorf("sqlite: ledger record: %w", err)
			}
			n, _ := res.RowsAffected()
			added[i] += n
		}
		if added[i] > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE counts SET n=n+? WHERE id=?`, added[i], id); err != nil {
				return nil, fmt.Errorf("sqlite: ledger record: %w", err)
			}
		}
	}
	// The record carries what its adds did (new people per class), so
	// it is written after them, in the same transaction.
	r.SetNew(adds, added)
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ledger record: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO transfers(id, time, body) VALUES(?,?,?)`, r.ID, r.Time.UnixNano(), body); err != nil {
		return nil, fmt.Errorf("sqlite: ledger record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: ledger commit: %w", err)
	}
	return added, nil
}

// Breakdown returns every count of an entity's year.
func (l *Ledger) Breakdown(ctx context.Context, entity string, year int) ([]domicile.Count, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT source, class, dim, value, n FROM counts WHERE entity=? AND year=? ORDER BY source, class, dim, value`, entity, year)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ledger breakdown: %w", err)
	}
	defer rows.Close()
	var out []domicile.Count
	for rows.Next() {
		c := domicile.Count{CountKey: domicile.CountKey{Entity: entity, Year: year}}
		var src, class string
		if err := rows.Scan(&src, &class, &c.Dim, &c.Value, &c.N); err != nil {
			return nil, err
		}
		c.Source, c.Class = domicile.Jurisdiction(src), domicile.CountClass(class)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Records calls fn for each transfer record in [from, until), in time order.
func (l *Ledger) Records(ctx context.Context, from, until time.Time, fn func(*domicile.TransferRecord) error) error {
	after := int64(-1)
	lo, hi := clampNanos(from), clampNanos(until)
	for {
		rows, err := l.db.QueryContext(ctx, `SELECT seq, body FROM transfers WHERE time>=? AND time<? AND seq>? ORDER BY seq LIMIT 1000`,
			lo, hi, after)
		if err != nil {
			return fmt.Errorf("sqlite: ledger records: %w", err)
		}
		var page []*domicile.TransferRecord
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&after, &b); err != nil {
				rows.Close()
				return err
			}
			var r domicile.TransferRecord
			if err := json.Unmarshal(b, &r); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: ledger record %d: %v", after, err)
			}
			page = append(page, &r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

// clampNanos is t in Unix nanoseconds, clamped to what int64 holds
// (years 1678 to 2262), so open-ended ranges work.
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Warned records a headroom warning level and reports whether it is new.
func (l *Ledger) Warned(ctx context.Context, entity string, year int, fact string, threshold int64, percent int) (bool, error) {
	res, err := l.db.ExecContext(ctx, `INSERT OR IGNORE INTO warnings(entity, year, fact, threshold, percent) VALUES(?,?,?,?,?)`,
		entity, year, fact, threshold, percent)
	if err != nil {
		return false, fmt.Errorf("sqlite: ledger warning: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// PutMechanism stores a mechanism's JSON under its id.
func (l *Ledger) PutMechanism(ctx context.Context, id string, body []byte) error {
	if _, err := l.db.ExecContext(ctx, `INSERT INTO mechanisms(id, body) VALUES(?,?) ON CONFLICT(id) DO UPDATE SET body=excluded.body`, id, body); err != nil {
		return fmt.Errorf("sqlite: mechanism: %w", err)
	}
	return nil
}

// Mechanisms returns every mechanism's JSON in id order.
func (l *Ledger) Mechanisms(ctx context.Context) ([][]byte, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT body FROM mechanisms ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: mechanisms: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// PutConsent stores the current state of a consent.
func (l *Ledger) PutConsent(ctx context.Context, c *domicile.Consent) error {
	_, err := l.db.ExecContext(ctx, `INSERT INTO consents(ref, kind, version, granted, time) VALUES(?,?,?,?,?)
		ON CONFLICT(ref, kind) DO UPDATE SET version=excluded.version, granted=excluded.granted, time=excluded.time`,
		c.Subject[:], string(c.Kind), c.TextVersion, c.Granted, c.Time.UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: consent: %w", err)
	}
	return nil
}

// Consent returns the current consent of a kind of each subject.
func (l *Ledger) Consent(ctx context.Context, kind domicile.ConsentKind, refs []domicile.SubjectRef) ([]*domicile.Consent, error) {
	out := make([]*domicile.Consent, len(refs))
	index := make(map[domicile.SubjectRef][]int, len(refs))
	for i, r := range refs {
		index[r] = append(index[r], i)
	}
	for start := 0; start < len(refs); start += membersBatch {
		part := refs[start:min(start+membersBatch, len(refs))]
		args := make([]any, 0, len(part)+1)
		args = append(args, string(kind))
		for _, r := range part {
			args = append(args, r[:])
		}
		rows, err := l.db.QueryContext(ctx, `SELECT ref, version, granted, time FROM consents WHERE kind=? AND ref IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: consents: %w", err)
		}
		for rows.Next() {
			var b []byte
			c := &domicile.Consent{Kind: kind}
			var t int64
			if err := rows.Scan(&b, &c.TextVersion, &c.Granted, &t); err != nil {
				rows.Close()
				return nil, err
			}
			copy(c.Subject[:], b)
			c.Time = nsTime(t)
			for _, i := range index[c.Subject] {
				out[i] = c
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
