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
	Subject string `json:"subject,omitempty"`
	// Note says what the token is for, in the admin's words. It is kept
	// with the token, never in the control log, and cleared when the
	// subject a subject token reaches is erased.
	Note    string    `json:"note,omitempty"`
	Created time.Time `json:"created"`
	// Expires is when the token stops being honoured; zero for a token
	// that does not expire (the admin token file's). A privacy-page link
	// carries a token that expires in minutes.
	Expires time.Time `json:"expires,omitzero"`
	// Revoked is when the token was revoked; zero while it is valid.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Expired reports whether t has an expiry and it is not after now.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// MaxTokenNoteBytes bounds a token's note.
const MaxTokenNoteBytes = 256

// AdminFileNote is the note of the token kept in a deployment's admin
// token file; `domicile admin rotate` revokes such tokens when it
// replaces the file.
const AdminFileNote = "admin token file"

// Active reports whether the token is honoured at now: not revoked, and
// not expired.
func (t *Token) Active(now time.Time) bool {
	return t.Revoked.IsZero() && !t.Expired(now)
}

// TokenQuery selects tokens to list.
type TokenQuery struct {
	// Role, if set, keeps the tokens of that role only.
	Role Role
	// ActiveAt, if not zero, keeps the tokens honoured at that time only.
	ActiveAt time.Time
	// After is the id of the last token of the previous page; the list
	// is in id order.
	After string
	// Limit is the page size, from 1 to MaxListLimit.
	Limit int
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

// MaxHomesPerBatch bounds the entries of one ControlStore.PutHomes.
const MaxHomesPerBatch = 10_000

// ControlStore keeps what a deployment's router holds: tokens, the
// control log of their lifecycle, and the directory from subject
// references to home cells. It holds no raw subject id and no subject
// data. Implementations are safe for concurrent use, also by several
// processes sharing one store.
type ControlStore interface {
	// PutToken stores a new token under the hash of its secret and
	// appends ev (its minting) to the control log, in one transaction.
	// It fails if the id or the hash exists.
	PutToken(ctx context.Context, t Token, secretHash [32]byte, ev ControlEvent) error
	// TokenByHash returns the token whose secret hashes to secretHash,
	// revoked or not, or ErrNotFound.
	TokenByHash(ctx context.Context, secretHash [32]byte) (*Token, error)
	// Token returns the token with the given id, revoked or not, or
	// ErrNotFound.
	Token(ctx context.Context, id string) (*Token, error)
	// ListTokens returns up to q.Limit tokens that q selects, in id
	// order.
	ListTokens(ctx context.Context, q TokenQuery) ([]Token, error)
	// RevokeToken revokes token id at ev.Time and appends ev to the
	// control log, in one transaction, and returns the token as revoked.
	// A token revoked before is returned unchanged, and no event is
	// appended. An unknown id is ErrNotFound.
	RevokeToken(ctx context.Context, id string, ev ControlEvent) (*Token, error)
	// RotateToken revokes token old at ev.Time, stores t in its place
	// under secretHash and appends ev, in one transaction. An unknown
	// old is ErrNotFound; a revoked one ErrVersionMismatch.
	RotateToken(ctx context.Context, old string, t Token, secretHash [32]byte, ev ControlEvent) error
	// RevokeSubjectTokens revokes, at at, every valid token that reaches
	// the subject reference ref, and returns how many it revoked; if
	// any, it appends a ControlRevokeSubject event naming no one. Every
	// token that named ref, revoked before or now, no longer names it
	// and loses its note (erasure unlinks).
	RevokeSubjectTokens(ctx context.Context, ref string, at time.Time) (int, error)
	// Revocations returns the sequence number of the latest control log
	// event that revoked a token (0 if none). A process caching tokens
	// drops its cache when the number changes, so a revocation by any
	// process reaches every process that reads it.
	Revocations(ctx context.Context) (int64, error)
	// ControlLog returns up to limit events of the control log after
	// sequence number after, in order.
	ControlLog(ctx context.Context, after int64, limit int) ([]ControlEvent, error)
	// PutHome records the directory entry of a registration under key,
	// the keyed hash of the subject's id; it fails with
	// ErrVersionMismatch if the key has one.
	PutHome(ctx context.Context, key SubjectRef, h Home) error
	// PutHomes records entries in one transaction: every one, or none
	// if a key has an entry already or appears twice (ErrVersionMismatch).
	// It takes at most MaxHomesPerBatch entries. It is PutHome for bulk
	// loads (a restore, a benchmark's fixture), one durable write for
	// many entries.
	PutHomes(ctx context.Context, entries []HomeEntry) error
	// Home returns the entry under key, or ErrNotFound.
	Home(ctx context.Context, key SubjectRef) (Home, error)
	// DeleteHome removes the entry under key; an absent key is not an
	// error.
	DeleteHome(ctx context.Context, key SubjectRef) error
	Close() error
}
