package postgres

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"domicile"
	"domicile/transfer"
)

// Shared holds the stores that every process of a deployment shares
// besides the control store, in one schema of their own (migration set
// "shared"): the transfer ledger ([Shared.Ledger]), the change notices
// ([Shared.Notices]) and the authority requests ([Shared.Authority]). It
// is safe for concurrent use; Close closes all three.
type Shared struct {
	schema  string
	pool    *pgxpool.Pool
	locks   *pgxpool.Pool // sessions that hold entity locks, apart so that a waiter never starves a holder
	retries int
	crdb    bool
}

// OpenShared opens the deployment-wide stores cfg says, creating the
// schema and its tables if absent.
func OpenShared(ctx context.Context, cfg Config) (*Shared, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	_, pool, err := connect(ctx, cfg, "shared")
	if err != nil {
		return nil, err
	}
	var version string
	if err := pool.QueryRow(ctx, `SELECT version()`).Scan(&version); err != nil {
		pool.Close()
		return nil, wrap("shared", err)
	}
	lc := pool.Config()
	lc.MinConns = 0
	locks, err := pgxpool.NewWithConfig(ctx, lc)
	if err != nil {
		pool.Close()
		return nil, wrap("shared: lock pool", err)
	}
	return &Shared{schema: cfg.Schema, pool: pool, locks: locks, retries: cfg.Retries, crdb: strings.Contains(version, "CockroachDB")}, nil
}

// Close closes the stores' connections.
func (s *Shared) Close() error {
	s.locks.Close()
	s.pool.Close()
	return nil
}

// tx runs fn in a transaction, again (up to s.retries times) when it
// fails with a serialization failure or a deadlock.
func (s *Shared) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	for try := 0; ; try++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil || !retryable(err) || try >= s.retries {
			return err
		}
	}
}

// Ledger is the transfer gateway's store on PostgreSQL: the distinct
// counts and their members (by subject reference), the transfer records,
// the headroom warnings, the mechanisms and subjects' consents. It
// implements [transfer.Store] and [transfer.EntityLocker], so that the
// cell processes of a deployment, on any machine, decide the transfers
// of an entity one at a time.
type Ledger struct{ s *Shared }

var (
	_ transfer.Store        = (*Ledger)(nil)
	_ transfer.EntityLocker = (*Ledger)(nil)
)

// Ledger returns the transfer ledger of s.
func (s *Shared) Ledger() *Ledger { return &Ledger{s} }

// Close closes the stores of the [Shared] the ledger belongs to.
func (l *Ledger) Close() error { return l.s.Close() }

// countKeyID is a count's id: the first 8 bytes of the SHA-256 of its
// key, so that a count's members are found without a lookup and no
// sequence is needed. Two keys of one id would fail the insert of the
// second (the key is unique too), never merge.
func countKeyID(k domicile.CountKey) int64 {
	h := sha256.New()
	for _, s := range []string{k.Entity, fmt.Sprint(k.Year), string(k.Source), string(k.Class), k.Dim, k.Value} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
}

func refBytes(refs []domicile.SubjectRef) [][]byte {
	out := make([][]byte, len(refs))
	for i := range refs {
		out[i] = refs[i][:]
	}
	return out
}

// Counts returns the value of each key (0 for a count never raised).
func (l *Ledger) Counts(ctx context.Context, keys []domicile.CountKey) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		err := l.s.pool.QueryRow(ctx, `SELECT n FROM counts WHERE entity=$1 AND year=$2 AND source=$3 AND class=$4 AND dim=$5 AND value=$6`,
			k.Entity, k.Year, string(k.Source), string(k.Class), k.Dim, k.Value).Scan(&out[i])
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, wrap("ledger counts", err)
		}
	}
	return out, nil
}

// sharedBatch bounds the references of one statement.
const sharedBatch = 1000

// Members reports which refs are already in the count.
func (l *Ledger) Members(ctx context.Context, key domicile.CountKey, refs []domicile.SubjectRef) ([]bool, error) {
	out := make([]bool, len(refs))
	index := make(map[domicile.SubjectRef][]int, len(refs))
	for i, r := range refs {
		index[r] = append(index[r], i)
	}
	id := countKeyID(key)
	for start := 0; start < len(refs); start += sharedBatch {
		part := refs[start:min(start+sharedBatch, len(refs))]
		rows, err := l.s.pool.Query(ctx, `SELECT ref FROM members WHERE count=$1 AND ref = ANY($2)`, id, refBytes(part))
		if err != nil {
			return nil, wrap("ledger members", err)
		}
		var b []byte
		_, err = pgx.ForEachRow(rows, []any{&b}, func() error {
			var r domicile.SubjectRef
			copy(r[:], b)
			for _, i := range index[r] {
				out[i] = true
			}
			return nil
		})
		if err != nil {
			return nil, wrap("ledger members", err)
		}
	}
	return out, nil
}

// Record applies adds and stores r, with its NewPI and NewSPI set from
// what the adds did ([domicile.TransferRecord.SetNew]), in one
// transaction.
func (l *Ledger) Record(ctx context.Context, r *domicile.TransferRecord, adds []domicile.CountAdd) ([]int64, error) {
	var added []int64
	err := l.s.tx(ctx, func(tx pgx.Tx) error {
		added = make([]int64, len(adds))
		for i, a := range adds {
			k, id := a.Key, countKeyID(a.Key)
			if _, err := tx.Exec(ctx, `INSERT INTO counts(id, entity, year, source, class, dim, value, n) VALUES($1,$2,$3,$4,$5,$6,$7,0)
				ON CONFLICT (id) DO NOTHING`, id, k.Entity, k.Year, string(k.Source), string(k.Class), k.Dim, k.Value); err != nil {
				return err
			}
			for start := 0; start < len(a.Refs); start += sharedBatch {
				part := a.Refs[start:min(start+sharedBatch, len(a.Refs))]
				tag, err := tx.Exec(ctx, `INSERT INTO members(count, ref) SELECT $1, r FROM unnest($2::BYTEA[]) AS r ON CONFLICT DO NOTHING`, id, refBytes(part))
				if err != nil {
					return err
				}
				added[i] += tag.RowsAffected()
			}
			if added[i] > 0 {
				if _, err := tx.Exec(ctx, `UPDATE counts SET n=n+$1 WHERE id=$2`, added[i], id); err != nil {
					return err
				}
			}
		}
		// The record carries what its adds did, so it is written after
		// them, in the same transaction.
		r.SetNew(adds, added)
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO transfers(id, time, body) VALUES($1,$2,$3)`, r.ID, r.Time.UnixNano(), body)
		return err
	})
	if err != nil {
		return nil, wrap("ledger record", err)
	}
	return added, nil
}

// Breakdown returns every count of an entity's year, ordered by source,
// class, dimension and value (byte order).
func (l *Ledger) Breakdown(ctx context.Context, entity string, year int) ([]domicile.Count, error) {
	rows, err := l.s.pool.Query(ctx, `SELECT source, class, dim, value, n FROM counts WHERE entity=$1 AND year=$2
`, entity, year)
	if err != nil {
		return nil, wrap("ledger breakdown", err)
	}
	var out []domicile.Count
	var src, class, dim, value string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&src, &class, &dim, &value, &n}, func() error {
		out = append(out, domicile.Count{CountKey: domicile.CountKey{Entity: entity, Year: year, Source: domicile.Jurisdiction(src),
			Class: domicile.CountClass(class), Dim: dim, Value: value}, N: n})
		return nil
	})
	if err != nil {
		return nil, wrap("ledger breakdown", err)
	}
	// Byte order whatever the database's collation, sorted here so that
	// the SQL needs no COLLATE clause.
	slices.SortFunc(out, func(a, b domicile.Count) int {
		return cmp.Or(strings.Compare(string(a.Source), string(b.Source)), strings.Compare(string(a.Class), string(b.Class)),
			strings.Compare(a.Dim, b.Dim), strings.Compare(a.Value, b.Value))
	})
	return out, nil
}

// recordsPage is how many transfer records one query of Records reads.
const recordsPage = 1000

// Records calls fn for each transfer record with from ≤ Time < until, in
// time order (then id order), a page at a time.
func (l *Ledger) Records(ctx context.Context, from, until time.Time, fn func(*domicile.TransferRecord) error) error {
	lo, hi := clampNanos(from), clampNanos(until)
	afterTime, afterID := lo, ""
	for {
		// Keyset paging on (time, id): ids are never empty, so the first
		// page starts after (lo, "").
		rows, err := l.s.pool.Query(ctx, `SELECT time, id, body FROM transfers WHERE time<$2 AND (time>$1 OR (time=$1 AND id>$3))
			ORDER BY time, id LIMIT `+fmt.Sprint(recordsPage), afterTime, hi, afterID)
		if err != nil {
			return wrap("ledger records", err)
		}
		var page []*domicile.TransferRecord
		var b []byte
		_, err = pgx.ForEachRow(rows, []any{&afterTime, &afterID, &b}, func() error {
			var r domicile.TransferRecord
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("record %s: %v", afterID, err)
			}
			page = append(page, &r)
			return nil
		})
		if err != nil {
			return wrap("ledger records", err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < recordsPage {
			return nil
		}
	}
}

// clampNanos is t in Unix nanoseconds, clamped to what int64 holds, so
// that open-ended ranges work.
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Warned records that a headroom warning level was reached and reports
// whether it is the first time.
func (l *Ledger) Warned(ctx context.Context, entity string, year int, fact string, threshold int64, percent int) (bool, error) {
	tag, err := l.s.pool.Exec(ctx, `INSERT INTO warnings(entity, year, fact, threshold, percent) VALUES($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`,
		entity, year, fact, threshold, percent)
	if err != nil {
		return false, wrap("ledger warning", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PutMechanism stores a mechanism's JSON under its id, replacing any of
// the same id.
func (l *Ledger) PutMechanism(ctx context.Context, id string, body []byte) error {
	if _, err := l.s.pool.Exec(ctx, `INSERT INTO mechanisms(id, body) VALUES($1,$2) ON CONFLICT (id) DO UPDATE SET body=excluded.body`, id, body); err != nil {
		return wrap("mechanism", err)
	}
	return nil
}

// Mechanisms returns every mechanism's JSON in id order (byte order).
func (l *Ledger) Mechanisms(ctx context.Context) ([][]byte, error) {
	rows, err := l.s.pool.Query(ctx, `SELECT id, body FROM mechanisms`)
	if err != nil {
		return nil, wrap("mechanisms", err)
	}
	type mech struct {
		id   string
		body []byte
	}
	var ms []mech
	var m mech
	if _, err := pgx.ForEachRow(rows, []any{&m.id, &m.body}, func() error { ms = append(ms, m); return nil }); err != nil {
		return nil, wrap("mechanisms", err)
	}
	slices.SortFunc(ms, func(a, b mech) int { return strings.Compare(a.id, b.id) })
	out := make([][]byte, len(ms))
	for i, m := range ms {
		out[i] = m.body
	}
	return out, nil
}

// PutConsent stores the current state of one consent of a subject.
func (l *Ledger) PutConsent(ctx context.Context, c *domicile.Consent) error {
	_, err := l.s.pool.Exec(ctx, `INSERT INTO consents(ref, kind, version, granted, time) VALUES($1,$2,$3,$4,$5)
		ON CONFLICT (ref, kind) DO UPDATE SET version=excluded.version, granted=excluded.granted, time=excluded.time`,
		c.Subject[:], string(c.Kind), c.TextVersion, c.Granted, c.Time.UnixNano())
	if err != nil {
		return wrap("consent", err)
	}
	return nil
}

// Consent returns the current consent of a kind of each subject, nil for
// a subject that never gave one.
func (l *Ledger) Consent(ctx context.Context, kind domicile.ConsentKind, refs []domicile.SubjectRef) ([]*domicile.Consent, error) {
	out := make([]*domicile.Consent, len(refs))
	index := make(map[domicile.SubjectRef][]int, len(refs))
	for i, r := range refs {
		index[r] = append(index[r], i)
	}
	for start := 0; start < len(refs); start += sharedBatch {
		part := refs[start:min(start+sharedBatch, len(refs))]
		rows, err := l.s.pool.Query(ctx, `SELECT ref, version, granted, time FROM consents WHERE kind=$1 AND ref = ANY($2)`, string(kind), refBytes(part))
		if err != nil {
			return nil, wrap("consents", err)
		}
		var b []byte
		var version string
		var granted bool
		var t int64
		_, err = pgx.ForEachRow(rows, []any{&b, &version, &granted, &t}, func() error {
			c := &domicile.Consent{Kind: kind, TextVersion: version, Granted: granted, Time: nsTime(t)}
			copy(c.Subject[:], b)
			for _, i := range index[c.Subject] {
				out[i] = c
			}
			return nil
		})
		if err != nil {
			return nil, wrap("consents", err)
		}
	}
	return out, nil
}

// entityLockKey is the advisory lock of an entity's transfer decisions
// in schema: the first 8 bytes of SHA-256("domicile transfer " + schema +
// NUL + entity). Advisory locks are per database, so the schema keeps
// two deployments on one database apart.
func entityLockKey(schema, entity string) int64 {
	h := sha256.Sum256([]byte("domicile transfer " + schema + "\x00" + entity))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// LockEntity holds, across every process on the database, the right to
// decide and record the transfers of entity, until the returned function
// is called ([transfer.EntityLocker]). On PostgreSQL it is a session
// advisory lock (pg_advisory_lock) on a connection of its own; on
// CockroachDB, which has no advisory locks, the row lock (SELECT ... FOR
// UPDATE) of the entity's row in entity_locks, held by an open
// transaction. It waits until ctx ends or the statement timeout passes.
// A process that dies drops its session, and with it the lock.
func (l *Ledger) LockEntity(ctx context.Context, entity string) (func(), error) {
	c, err := l.s.locks.Acquire(ctx)
	if err != nil {
		return nil, wrap("ledger lock", err)
	}
	// drop closes the session rather than return it to the pool: a
	// session whose lock state is unknown must not serve another caller.
	drop := func() {
		conn := c.Hijack()
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}
	if l.s.crdb {
		return l.lockRow(ctx, c, drop, entity)
	}
	key := entityLockKey(l.s.schema, entity)
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		drop()
		return nil, wrap("ledger lock", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var ok bool
		if err := c.QueryRow(uctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&ok); err != nil || !ok {
			drop()
			return
		}
		c.Release()
	}, nil
}

// lockRow is LockEntity on CockroachDB.
func (l *Ledger) lockRow(ctx context.Context, c *pgxpool.Conn, drop func(), entity string) (func(), error) {
	if _, err := c.Exec(ctx, `INSERT INTO entity_locks(entity) VALUES($1) ON CONFLICT DO NOTHING`, entity); err != nil {
		drop()
		return nil, wrap("ledger lock", err)
	}
	tx, err := c.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, `SELECT entity FROM entity_locks WHERE entity=$1 FOR UPDATE`, entity)
	}
	if err != nil {
		drop()
		return nil, wrap("ledger lock", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tx.Rollback(uctx); err != nil {
			drop()
			return
		}
		c.Release()
	}, nil
}
