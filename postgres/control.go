package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"domicile"
)

// Control is a deployment's control store: tokens (by the SHA-256 of their
// secret) and the subject directory (keyed by subject reference, never by
// raw id). It is safe for concurrent use.
type Control struct{ pool *pgxpool.Pool }

const controlSchema = `
CREATE TABLE IF NOT EXISTS tokens(id TEXT PRIMARY KEY, hash BYTEA NOT NULL UNIQUE, role TEXT NOT NULL,
  jurisdiction TEXT NOT NULL, subject TEXT NOT NULL, created BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS directory(ref BYTEA PRIMARY KEY, cell TEXT NOT NULL);
ALTER TABLE directory ADD COLUMN IF NOT EXISTS reg BYTEA;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS revoked BIGINT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires BIGINT;
`

// OpenControl opens the control store in schema (created with its tables
// if absent) of the database at dsn.
func OpenControl(ctx context.Context, dsn, schema string) (*Control, error) {
	_, pool, err := connect(ctx, dsn, schema, controlSchema)
	if err != nil {
		return nil, err
	}
	return &Control{pool: pool}, nil
}

// Close closes the store's connections.
func (c *Control) Close() error {
	c.pool.Close()
	return nil
}

// PutToken stores a token by the hash of its secret; it fails if the id
// or the hash exists.
func (c *Control) PutToken(ctx context.Context, t domicile.Token, h [32]byte) error {
	var expires *int64
	if !t.Expires.IsZero() {
		e := t.Expires.UnixNano()
		expires = &e
	}
	_, err := c.pool.Exec(ctx, `INSERT INTO tokens(id, hash, role, jurisdiction, subject, created, expires) VALUES($1,$2,$3,$4,$5,$6,$7)`,
		t.ID, h[:], string(t.Role), string(t.Jurisdiction), t.Subject, t.Created.UnixNano(), expires)
	if err != nil {
		return fmt.Errorf("postgres: put token: %w", err)
	}
	return nil
}

// TokenByHash finds a token by the hash of its secret, or ErrNotFound.
func (c *Control) TokenByHash(ctx context.Context, h [32]byte) (*domicile.Token, error) {
	var t domicile.Token
	var role, j string
	var created int64
	var revoked, expires *int64
	err := c.pool.QueryRow(ctx, `SELECT id, role, jurisdiction, subject, created, revoked, expires FROM tokens WHERE hash=$1`, h[:]).
		Scan(&t.ID, &role, &j, &t.Subject, &created, &revoked, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: token: %w", err)
	}
	t.Role, t.Jurisdiction, t.Created = domicile.Role(role), domicile.Jurisdiction(j), nsTime(created)
	if revoked != nil {
		t.Revoked = nsTime(*revoked)
	}
	if expires != nil {
		t.Expires = nsTime(*expires)
	}
	return &t, nil
}

// RevokeSubjectTokens revokes every valid token reaching subject ref.
func (c *Control) RevokeSubjectTokens(ctx context.Context, ref string, at time.Time) (int, error) {
	if ref == "" {
		return 0, nil
	}
	tag, err := c.pool.Exec(ctx, `UPDATE tokens SET revoked=$1, subject='' WHERE subject=$2 AND revoked IS NULL`, at.UnixNano(), ref)
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke tokens: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PutHome records a registration's directory entry under key; it
// returns ErrVersionMismatch if the key has one.
func (c *Control) PutHome(ctx context.Context, key domicile.SubjectRef, h domicile.Home) error {
	tag, err := c.pool.Exec(ctx, `INSERT INTO directory(ref, cell, reg) VALUES($1,$2,$3) ON CONFLICT (ref) DO NOTHING`, key[:], h.Cell, h.Ref[:])
	if err != nil {
		return fmt.Errorf("postgres: put home: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return domicile.ErrVersionMismatch
	}
	return nil
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
		return h, fmt.Errorf("postgres: home: %w", err)
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
		return fmt.Errorf("postgres: delete home: %w", err)
	}
	return nil
}

var _ domicile.ControlStore = (*Control)(nil)
