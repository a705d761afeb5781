package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"domicile"
)

// Control is a deployment's control store: tokens (by the SHA-256 of their
// secret), the control log of their lifecycle, and the subject directory (keyed by subject reference, never by
// raw id). It is safe for concurrent use.
type Control struct {
	pool    *pgxpool.Pool
	retries int
}

// OpenControl opens the control store in schema (created with its tables
// if absent) of the database at dsn.
func OpenControl(ctx context.Context, dsn, schema string) (*Control, error) {
	return OpenControlConfig(ctx, Config{DSN: dsn, Schema: schema})
}

// OpenControlConfig opens the control store cfg says.
func OpenControlConfig(ctx context.Context, cfg Config) (*Control, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	_, pool, err := connect(ctx, cfg, "control")
	if err != nil {
		return nil, err
	}
	return &Control{pool: pool, retries: cfg.Retries}, nil
}

// tx runs fn in a transaction, again (up to c.retries times) when it
// fails with a serialization failure or a deadlock.
func (c *Control) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	for try := 0; ; try++ {
		err := pgx.BeginFunc(ctx, c.pool, fn)
		if err == nil || !retryable(err) || try >= c.retries {
			return err
		}
	}
}

// Close closes the store's connections.
func (c *Control) Close() error {
	c.pool.Close()
	return nil
}

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = `id, role, jurisdiction, subject, note, created, expires, revoked`

func scanToken(r pgx.Row) (*domicile.Token, error) {
	var t domicile.Token
	var role, j string
	var created int64
	var expires, revoked *int64
	if err := r.Scan(&t.ID, &role, &j, &t.Subject, &t.Note, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	t.Role, t.Jurisdiction, t.Created = domicile.Role(role), domicile.Jurisdiction(j), nsTime(created)
	if expires != nil {
		t.Expires = nsTime(*expires)
	}
	if revoked != nil {
		t.Revoked = nsTime(*revoked)
	}
	return &t, nil
}

func nullTime(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func insertToken(ctx context.Context, tx pgx.Tx, t domicile.Token, h [32]byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO tokens(id, hash, role, jurisdiction, subject, note, created, expires) VALUES($1,$2,$3,$4,$5,$6,$7,$8)`,
		t.ID, h[:], string(t.Role), string(t.Jurisdiction), t.Subject, t.Note, t.Created.UnixNano(), nullTime(t.Expires))
	return err
}

// appendEvent seals ev after the log's last entry and appends it, in tx.
// The head row's lock serialises appends across connections and
// processes.
func appendEvent(ctx context.Context, tx pgx.Tx, ev *domicile.ControlEvent) error {
	var seq int64
	var prev []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM control_head WHERE id=1 FOR UPDATE`).Scan(&seq, &prev); err != nil {
		return err
	}
	p := domicile.ZeroControlHash
	if seq > 0 {
		p = hex.EncodeToString(prev)
	}
	if err := ev.Seal(seq+1, p); err != nil {
		return err
	}
	hash, _ := hex.DecodeString(ev.Hash)
	prevb, _ := hex.DecodeString(ev.Prev)
	if _, err := tx.Exec(ctx, `INSERT INTO control_log(seq, time, action, token, role, jurisdiction, expires, replaces, count, actor, prev, hash)
		VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`, ev.Seq, ev.Time.UnixNano(), ev.Action, ev.Token, string(ev.Role), string(ev.Jurisdiction),
		nullTime(ev.Expires), ev.Replaces, ev.Count, ev.Actor, prevb, hash); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE control_head SET seq=$1, hash=$2 WHERE id=1`, ev.Seq, hash)
	return err
}

// PutToken stores a token by the hash of its secret, with its minting
// event; it fails if the id or the hash exists.
func (c *Control) PutToken(ctx context.Context, t domicile.Token, h [32]byte, ev domicile.ControlEvent) error {
	err := c.tx(ctx, func(tx pgx.Tx) error {
		if err := insertToken(ctx, tx, t, h); err != nil {
			return err
		}
		return appendEvent(ctx, tx, &ev)
	})
	if err != nil {
		return wrap("put token", err)
	}
	return nil
}

// TokenByHash finds a token by the hash of its secret, or ErrNotFound.
func (c *Control) TokenByHash(ctx context.Context, h [32]byte) (*domicile.Token, error) {
	t, err := scanToken(c.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash=$1`, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("token", err)
	}
	return t, nil
}

// Token finds a token by its id, or ErrNotFound.
func (c *Control) Token(ctx context.Context, id string) (*domicile.Token, error) {
	t, err := scanToken(c.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("token", err)
	}
	return t, nil
}

// ListTokens lists a page of tokens in id order.
func (c *Control) ListTokens(ctx context.Context, q domicile.TokenQuery) ([]domicile.Token, error) {
	active := !q.ActiveAt.IsZero()
	rows, err := c.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens
		WHERE id > $1 AND ($2 = '' OR role = $2) AND (NOT $3 OR (revoked IS NULL AND (expires IS NULL OR expires > $4)))
		ORDER BY id LIMIT $5`, q.After, string(q.Role), active, q.ActiveAt.UnixNano(), q.Limit)
	if err != nil {
		return nil, wrap("list tokens", err)
	}
	defer rows.Close()
	var out []domicile.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, wrap("list tokens", err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list tokens", err)
	}
	return out, nil
}

// RevokeToken revokes one token, with its event.
func (c *Control) RevokeToken(ctx context.Context, id string, ev domicile.ControlEvent) (*domicile.Token, error) {
	var t *domicile.Token
	err := c.tx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id=$1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return domicile.ErrNotFound
		}
		if err != nil || !t.Revoked.IsZero() {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked=$1 WHERE id=$2`, ev.Time.UnixNano(), id); err != nil {
			return err
		}
		t.Revoked = nsTime(ev.Time.UnixNano())
		return appendEvent(ctx, tx, &ev)
	})
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, wrap("revoke token", err)
	}
	return t, nil
}

// RotateToken replaces token old by t, with the rotation's event.
func (c *Control) RotateToken(ctx context.Context, old string, t domicile.Token, h [32]byte, ev domicile.ControlEvent) error {
	err := c.tx(ctx, func(tx pgx.Tx) error {
		var revoked *int64
		err := tx.QueryRow(ctx, `SELECT revoked FROM tokens WHERE id=$1 FOR UPDATE`, old).Scan(&revoked)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return domicile.ErrNotFound
		case err != nil:
			return err
		case revoked != nil:
			return domicile.ErrVersionMismatch
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked=$1 WHERE id=$2`, ev.Time.UnixNano(), old); err != nil {
			return err
		}
		if err := insertToken(ctx, tx, t, h); err != nil {
			return err
		}
		return appendEvent(ctx, tx, &ev)
	})
	if errors.Is(err, domicile.ErrNotFound) || errors.Is(err, domicile.ErrVersionMismatch) {
		return err
	}
	if err != nil {
		return wrap("rotate token", err)
	}
	return nil
}

// RevokeSubjectTokens revokes every valid token reaching subject ref and
// unlinks every token that named it.
func (c *Control) RevokeSubjectTokens(ctx context.Context, ref string, at time.Time) (int, error) {
	if ref == "" {
		return 0, nil
	}
	var n int64
	err := c.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked=$1 WHERE subject=$2 AND revoked IS NULL`, at.UnixNano(), ref)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `UPDATE tokens SET subject='', note='' WHERE subject=$1`, ref); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return appendEvent(ctx, tx, &domicile.ControlEvent{Time: at, Action: domicile.ControlRevokeSubject, Role: domicile.RoleSubject, Count: int(n), Actor: "erasure"})
	})
	if err != nil {
		return 0, wrap("revoke tokens", err)
	}
	return int(n), nil
}

// Revocations returns the sequence number of the latest revocation.
func (c *Control) Revocations(ctx context.Context) (int64, error) {
	var seq int64
	err := c.pool.QueryRow(ctx, `SELECT seq FROM control_log WHERE action <> 'mint' ORDER BY seq DESC LIMIT 1`).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("revocations", err)
	}
	return seq, nil
}

// ControlLog returns a page of the control log.
func (c *Control) ControlLog(ctx context.Context, after int64, limit int) ([]domicile.ControlEvent, error) {
	rows, err := c.pool.Query(ctx, `SELECT seq, time, action, token, role, jurisdiction, expires, replaces, count, actor, prev, hash
		FROM control_log WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, wrap("control log", err)
	}
	defer rows.Close()
	var out []domicile.ControlEvent
	for rows.Next() {
		var e domicile.ControlEvent
		var tm int64
		var role, j string
		var expires *int64
		var prev, hash []byte
		if err := rows.Scan(&e.Seq, &tm, &e.Action, &e.Token, &role, &j, &expires, &e.Replaces, &e.Count, &e.Actor, &prev, &hash); err != nil {
			return nil, wrap("control log", err)
		}
		e.Time, e.Role, e.Jurisdiction = nsTime(tm), domicile.Role(role), domicile.Jurisdiction(j)
		if expires != nil {
			e.Expires = nsTime(*expires)
		}
		e.Prev, e.Hash = hex.EncodeToString(prev), hex.EncodeToString(hash)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("control log", err)
	}
	return out, nil
}

// PutHome records a registration's directory entry under key; it
// returns ErrVersionMismatch if the key has one.
func (c *Control) PutHome(ctx context.Context, key domicile.SubjectRef, h domicile.Home) error {
	tag, err := c.pool.Exec(ctx, `INSERT INTO directory(ref, cell, reg) VALUES($1,$2,$3) ON CONFLICT (ref) DO NOTHING`, key[:], h.Cell, h.Ref[:])
	if err != nil {
		return wrap("put home", err)
	}
	if tag.RowsAffected() == 0 {
		return domicile.ErrVersionMismatch
	}
	return nil
}

// PutHomes records directory entries in one transaction, all or none: it
// returns ErrVersionMismatch, storing nothing, if a key has an entry or
// appears twice.
func (c *Control) PutHomes(ctx context.Context, entries []domicile.HomeEntry) error {
	if len(entries) > domicile.MaxHomesPerBatch {
		return domicile.Errorf(domicile.EInvalid, "put homes: %d entries in one batch, at most %d", len(entries), domicile.MaxHomesPerBatch)
	}
	if len(entries) == 0 {
		return nil
	}
	keys, cells, regs := make([][]byte, len(entries)), make([]string, len(entries)), make([][]byte, len(entries))
	for i, e := range entries {
		keys[i], cells[i], regs[i] = e.Key[:], e.Home.Cell, e.Home.Ref[:]
	}
	err := c.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO directory(ref, cell, reg) SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[])
			ON CONFLICT (ref) DO NOTHING`, keys, cells, regs)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(entries)) {
			return domicile.ErrVersionMismatch
		}
		return nil
	})
	if err != nil && !errors.Is(err, domicile.ErrVersionMismatch) {
		return wrap("put homes", err)
	}
	return err
}

// Home returns the directory entry under key, or ErrNotFound. An entry
// written before registrations had their own references has the key as
// its reference.
func (c *Control) Home(ctx context.Context, key domicile.SubjectRef) (domicile.Home, error) {
	var h domicile.Home
	var reg []byte
	err := c.pool.QueryRow(ctx, `SELECT cell, COALESCE(reg, ref) FROM directory WHERE ref=$1`, key[:]).Scan(&h.Cell, &reg)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, domicile.ErrNotFound
	}
	if err != nil {
		return h, wrap("home", err)
	}
	if len(reg) != len(h.Ref) {
		return h, fmt.Errorf("postgres: home: malformed registration reference")
	}
	copy(h.Ref[:], reg)
	return h, nil
}

// DeleteHome removes a subject from the directory; an absent subject is
// not an error.
func (c *Control) DeleteHome(ctx context.Context, ref domicile.SubjectRef) error {
	if _, err := c.pool.Exec(ctx, `DELETE FROM directory WHERE ref=$1`, ref[:]); err != nil {
		return wrap("delete home", err)
	}
	return nil
}

var _ domicile.ControlStore = (*Control)(nil)
