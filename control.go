package domicile

import (
	"context"
	"time"
)

// Token is a bearer token's record; the secret itself is never stored,
// only its SHA-256.
type Token struct {
	ID           string       `json:"id"`
	Role         Role         `json:"role"`
	Jurisdiction Jurisdiction `json:"jurisdiction"`
	// Subject is the reference of the subject a subject token reaches.
	Subject string    `json:"subject,omitempty"`
	Created time.Time `json:"created"`
	// Revoked is when the token was revoked; zero while it is valid.
	Revoked time.Time `json:"revoked,omitzero"`
	// Expires is when the token stops working; zero for a token that
	// does not expire. A privacy-page link carries a token that expires.
	Expires time.Time `json:"expires,omitzero"`
}

// Expired reports whether t has an expiry and it is not after now.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// Home is a subject's directory entry: its home cell and the reference of
// its current registration. Each registration gets a fresh random
// reference, which is what cells, events, keys and subject tokens know
// the subject by; the directory maps the keyed hash of the subject's id
// to it. Erasure removes the entry, so nothing links the old reference to
// a later registration of the same id.
type Home struct {
	Cell string
	Ref  SubjectRef
}

// ControlStore keeps what a deployment's router holds: tokens and the
// directory from subject references to home cells. It holds no raw
// subject id and no subject data.
type ControlStore interface {
	PutToken(ctx context.Context, t Token, secretHash [32]byte) error
	// TokenByHash returns the token whose secret hashes to secretHash,
	// revoked or not, or ErrNotFound.
	TokenByHash(ctx context.Context, secretHash [32]byte) (*Token, error)
	// RevokeSubjectTokens revokes, at at, every valid token that reaches
	// the subject reference ref, and returns how many it revoked. A
	// revoked token no longer names the reference (erasure unlinks it).
	RevokeSubjectTokens(ctx context.Context, ref string, at time.Time) (int, error)
	// PutHome records the directory entry of a registration under key,
	// the keyed hash of the subject's id; it fails with
	// ErrVersionMismatch if the key has one.
	PutHome(ctx context.Context, key SubjectRef, h Home) error
	// Home returns the entry under key, or ErrNotFound.
	Home(ctx context.Context, key SubjectRef) (Home, error)
	// DeleteHome removes the entry under key; an absent key is not an
	// error.
	DeleteHome(ctx context.Context, key SubjectRef) error
	Close() error
}
