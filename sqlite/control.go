package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"domicile"
)

// Control is a deployment's control store: tokens and the subject
// directory (keyed by subject reference, never by raw id).
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
		CREATE TABLE IF NOT EXISTS directory(ref BLOB PRIMARY KEY, cell TEXT NOT NULL) WITHOUT ROWID;`); err != nil {
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
	var hasRevoked int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('tokens') WHERE name='revoked'`).Scan(&hasRevoked); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: control schema: %w", err)
	}
	if hasRevoked == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE tokens ADD COLUMN revoked INTEGER`); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: control schema: %w", err)
		}
	}
	var hasExpires int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('tokens') WHERE name='expires'`).Scan(&hasExpires); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: control schema: %w", err)
	}
	if hasExpires == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE tokens ADD COLUMN expires INTEGER`); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: control schema: %w", err)
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

// PutToken stores a token by the hash of its secret.
func (c *Control) PutToken(ctx context.Context, t domicile.Token, h [32]byte) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO tokens(id, hash, role, jurisdiction, subject, created, expires) VALUES(?,?,?,?,?,?,?)`,
		t.ID, h[:], string(t.Role), string(t.Jurisdiction), t.Subject, t.Created.UnixNano(), nullTime(t.Expires))
	if err != nil {
		return fmt.Errorf("sqlite: put token: %w", err)
	}
	return nil
}

// TokenByHash finds a token by the hash of its secret.
func (c *Control) TokenByHash(ctx context.Context, h [32]byte) (*domicile.Token, error) {
	var t domicile.Token
	var role, j string
	var created int64
	var revoked, expires sql.NullInt64
	err := c.db.QueryRowContext(ctx, `SELECT id, role, jurisdiction, subject, created, revoked, expires FROM tokens WHERE hash=?`, h[:]).
		Scan(&t.ID, &role, &j, &t.Subject, &created, &revoked, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: token: %w", err)
	}
	t.Role, t.Jurisdiction, t.Created = domicile.Role(role), domicile.Jurisdiction(j), nsTime(created)
	if revoked.Valid {
		t.Revoked = nsTime(revoked.Int64)
	}
	if expires.Valid {
		t.Expires = nsTime(expires.Int64)
	}
	return &t, nil
}

// nullTime is t in Unix nanoseconds, or NULL for the zero time.
func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// RevokeSubjectTokens revokes every valid token reaching subject ref.
func (c *Control) RevokeSubjectTokens(ctx context.Context, ref string, at time.Time) (int, error) {
	if ref == "" {
		return 0, nil
	}
	res, err := c.db.ExecContext(ctx, `UPDATE tokens SET revoked=?, subject='' WHERE subject=? AND revoked IS NULL`, at.UnixNano(), ref)
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
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
