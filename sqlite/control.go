package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"domicile"
)

// Control is a deployment's control store: tokens, the control log and
// the subject directory (keyed by subject reference, never by raw id).
// It is safe for concurrent use, also by several processes (SQLite's
// locking serialises the control log's appends).
type Control struct{ db *sql.DB }

// OpenControl opens (creating if needed) the control store in dir.
func OpenControl(ctx context.Context, dir string) (*Control, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: control: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "secure_delete(ON)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "control.db")+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: control: %w", err)
	}
	db.SetMaxOpenConns(8)
	if _, err := db.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS tokens(id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, role TEXT NOT NULL,
			jurisdiction TEXT NOT NULL, subject TEXT NOT NULL, created INTEGER NOT NULL);
		CREATE TABLE IF NOT EXISTS directory(ref BLOB PRIMARY KEY, cell TEXT NOT NULL) WITHOUT ROWID;
		CREATE TABLE IF NOT EXISTS control_log(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, action TEXT NOT NULL,
			token TEXT NOT NULL, role TEXT NOT NULL, jurisdiction TEXT NOT NULL, expires INTEGER, replaces TEXT NOT NULL,
			count INTEGER NOT NULL, actor TEXT NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL);
		CREATE INDEX IF NOT EXISTS control_log_revocations ON control_log(seq) WHERE action <> 'mint';`+migrationSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: control schema: %w", err)
	}
	// reg is the registration's reference; a directory written before
	// registrations had their own references has none, and such a
	// subject's reference is its key (COALESCE in Home).
	var hasReg int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('directory') WHERE name='reg'`).Scan(&hasReg); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: control schema: %w", err)
	}
	// Columns added since the first schema.
	for _, col := range []struct{ name, def string }{
		{"revoked", "revoked INTEGER"},
		{"expires", "expires INTEGER"},
		{"note", "note TEXT NOT NULL DEFAULT ''"},
	} {
		var has int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('tokens') WHERE name=?`, col.name).Scan(&has); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: control schema: %w", err)
		}
		if has == 0 {
			if _, err := db.ExecContext(ctx, `ALTER TABLE tokens ADD COLUMN `+col.def); err != nil {
				db.Close()
				return nil, fmt.Errorf("sqlite: control schema: %w", err)
			}
		}
	}
	if hasReg == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE directory ADD COLUMN reg BLOB`); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: control schema: %w", err)
		}
	}
	return &Control{db: db}, nil
}

// Close closes the store.
func (c *Control) Close() error { return c.db.Close() }

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = `id, role, jurisdiction, subject, note, created, expires, revoked`

type rowScanner interface{ Scan(dest ...any) error }

func scanToken(r rowScanner) (*domicile.Token, error) {
	var t domicile.Token
	var role, j string
	var created int64
	var expires, revoked sql.NullInt64
	if err := r.Scan(&t.ID, &role, &j, &t.Subject, &t.Note, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	t.Role, t.Jurisdiction, t.Created = domicile.Role(role), domicile.Jurisdiction(j), nsTime(created)
	if expires.Valid {
		t.Expires = nsTime(expires.Int64)
	}
	if revoked.Valid {
		t.Revoked = nsTime(revoked.Int64)
	}
	return &t, nil
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// insertToken inserts t in tx.
func insertToken(ctx context.Context, tx *sql.Tx, t domicile.Token, h [32]byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tokens(id, hash, role, jurisdiction, subject, note, created, expires) VALUES(?,?,?,?,?,?,?,?)`,
		t.ID, h[:], string(t.Role), string(t.Jurisdiction), t.Subject, t.Note, t.Created.UnixNano(), nullTime(t.Expires))
	return err
}

// appendEvent seals ev after the log's last entry and appends it, in tx
// (an immediate transaction: appends are serialised).
func appendEvent(ctx context.Context, tx *sql.Tx, ev *domicile.ControlEvent) error {
	seq, prev := int64(0), domicile.ZeroControlHash
	var h []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM control_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &h)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err == nil {
		prev = hex.EncodeToString(h)
	}
	if err := ev.Seal(seq+1, prev); err != nil {
		return err
	}
	hash, _ := hex.DecodeString(ev.Hash)
	prevb, _ := hex.DecodeString(ev.Prev)
	_, err = tx.ExecContext(ctx, `INSERT INTO control_log(seq, time, action, token, role, jurisdiction, expires, replaces, count, actor, prev, hash)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?)`, ev.Seq, ev.Time.UnixNano(), ev.Action, ev.Token, string(ev.Role), string(ev.Jurisdiction),
		nullTime(ev.Expires), ev.Replaces, ev.Count, ev.Actor, prevb, hash)
	return err
}

// inTx runs fn in a transaction and commits it.
func (c *Control) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// PutToken stores a token by the hash of its secret, with its minting
// event.
func (c *Control) PutToken(ctx context.Context, t domicile.Token, h [32]byte, ev domicile.ControlEvent) error {
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		if err := insertToken(ctx, tx, t, h); err != nil {
			return err
		}
		return appendEvent(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("sqlite: put token: %w", err)
	}
	return nil
}

// TokenByHash finds a token by the hash of its secret.
func (c *Control) TokenByHash(ctx context.Context, h [32]byte) (*domicile.Token, error) {
	t, err := scanToken(c.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash=?`, h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: token: %w", err)
	}
	return t, nil
}

// Token finds a token by its id.
func (c *Control) Token(ctx context.Context, id string) (*domicile.Token, error) {
	t, err := scanToken(c.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: token: %w", err)
	}
	return t, nil
}

// ListTokens lists a page of tokens in id order.
func (c *Control) ListTokens(ctx context.Context, q domicile.TokenQuery) ([]domicile.Token, error) {
	active := !q.ActiveAt.IsZero()
	at := q.ActiveAt.UnixNano()
	rows, err := c.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens
		WHERE id > ? AND (? = '' OR role = ?) AND (NOT ? OR (revoked IS NULL AND (expires IS NULL OR expires > ?)))
		ORDER BY id LIMIT ?`, q.After, string(q.Role), string(q.Role), active, at, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens: %w", err)
	}
	defer rows.Close()
	var out []domicile.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tokens: %w", err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes one token, with its event.
func (c *Control) RevokeToken(ctx context.Context, id string, ev domicile.ControlEvent) (*domicile.Token, error) {
	var t *domicile.Token
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id=?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return domicile.ErrNotFound
		}
		if err != nil || !t.Revoked.IsZero() {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked=? WHERE id=?`, ev.Time.UnixNano(), id); err != nil {
			return err
		}
		t.Revoked = nsTime(ev.Time.UnixNano())
		return appendEvent(ctx, tx, &ev)
	})
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke token: %w", err)
	}
	return t, nil
}

// RotateToken replaces token old by t, with the rotation's event.
func (c *Control) RotateToken(ctx context.Context, old string, t domicile.Token, h [32]byte, ev domicile.ControlEvent) error {
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked FROM tokens WHERE id=?`, old).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return domicile.ErrNotFound
		case err != nil:
			return err
		case revoked.Valid:
			return domicile.ErrVersionMismatch
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked=? WHERE id=?`, ev.Time.UnixNano(), old); err != nil {
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
		return fmt.Errorf("sqlite: rotate token: %w", err)
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
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked=? WHERE subject=? AND revoked IS NULL`, at.UnixNano(), ref)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET subject='', note='' WHERE subject=?`, ref); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return appendEvent(ctx, tx, &domicile.ControlEvent{Time: at, Action: domicile.ControlRevokeSubject, Role: domicile.RoleSubject, Count: int(n), Actor: "erasure"})
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke tokens: %w", err)
	}
	return int(n), nil
}

// Revocations returns the sequence number of the latest revocation.
func (c *Control) Revocations(ctx context.Context) (int64, error) {
	var seq int64
	err := c.db.QueryRowContext(ctx, `SELECT seq FROM control_log WHERE action <> 'mint' ORDER BY seq DESC LIMIT 1`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: revocations: %w", err)
	}
	return seq, nil
}

// ControlLog returns a page of the control log.
func (c *Control) ControlLog(ctx context.Context, after int64, limit int) ([]domicile.ControlEvent, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT seq, time, action, token, role, jurisdiction, expires, replaces, count, actor, prev, hash
		FROM control_log WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: control log: %w", err)
	}
	defer rows.Close()
	var out []domicile.ControlEvent
	for rows.Next() {
		var e domicile.ControlEvent
		var tm int64
		var role, j string
		var expires sql.NullInt64
		var prev, hash []byte
		if err := rows.Scan(&e.Seq, &tm, &e.Action, &e.Token, &role, &j, &expires, &e.Replaces, &e.Count, &e.Actor, &prev, &hash); err != nil {
			return nil, fmt.Errorf("sqlite: control log: %w", err)
		}
		e.Time, e.Role, e.Jurisdiction = nsTime(tm), domicile.Role(role), domicile.Jurisdiction(j)
		if expires.Valid {
			e.Expires = nsTime(expires.Int64)
		}
		e.Prev, e.Hash = hex.EncodeToString(prev), hex.EncodeToString(hash)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: control log: %w", err)
	}
	return out, nil
}

// PutHome records a registration's directory entry under key.
func (c *Control) PutHome(ctx context.Context, key domicile.SubjectRef, h domicile.Home) error {
	res, err := c.db.ExecContext(ctx, `INSERT INTO directory(ref, cell, reg) VALUES(?,?,?) ON CONFLICT DO NOTHING`, key[:], h.Cell, h.Ref[:])
	if err != nil {
		return fmt.Errorf("sqlite: put home: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domicile.ErrVersionMismatch
	}
	return nil
}

// PutHomes records directory entries in one transaction, all or none.
func (c *Control) PutHomes(ctx context.Context, entries []domicile.HomeEntry) error {
	if len(entries) > domicile.MaxHomesPerBatch {
		return domicile.Errorf(domicile.EInvalid, "put homes: %d entries in one batch, at most %d", len(entries), domicile.MaxHomesPerBatch)
	}
	if len(entries) == 0 {
		return nil
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO directory(ref, cell, reg) VALUES(?,?,?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, e := range entries {
			res, err := st.ExecContext(ctx, e.Key[:], e.Home.Cell, e.Home.Ref[:])
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return domicile.ErrVersionMismatch
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, domicile.ErrVersionMismatch) {
		return fmt.Errorf("sqlite: put homes: %w", err)
	}
	return err
}

// Home returns the directory entry under key, or ErrNotFound.
func (c *Control) Home(ctx context.Context, key domicile.SubjectRef) (domicile.Home, error) {
	var h domicile.Home
	var reg []byte
	err := c.db.QueryRowContext(ctx, `SELECT cell, COALESCE(reg, ref) FROM directory WHERE ref=?`, key[:]).Scan(&h.Cell, &reg)
	if errors.Is(err, sql.ErrNoRows) {
		return h, domicile.ErrNotFound
	}
	if err != nil {
		return h, fmt.Errorf("sqlite: home: %w", err)
	}
	if len(reg) != len(h.Ref) {
		return h, fmt.Errorf("sqlite: home: malformed registration reference")
	}
	copy(h.Ref[:], reg)
	return h, nil
}

// DeleteHome removes a subject from the directory.
func (c *Control) DeleteHome(ctx context.Context, ref domicile.SubjectRef) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM directory WHERE ref=?`, ref[:]); err != nil {
		return fmt.Errorf("sqlite: delete home: %w", err)
	}
	return nil
}

var _ domicile.ControlStore = (*Control)(nil)
