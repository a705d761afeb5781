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
}

// ControlStore keeps what a deployment's router holds: tokens and the
// directory from subject references to home cells. It holds no raw
// subject id and no subject data.
type ControlStore interface {
	PutToken(ctx context.Context, t Token, secretHash [32]byte) error
	TokenByHash(ctx context.Context, secretHash [32]byte) (*Token, error)
	// PutHome records a subject's home cell; it fails with
	// ErrVersionMismatch if the subject has one.
	PutHome(ctx context.Context, ref SubjectRef, cell string) error
	Home(ctx context.Context, ref SubjectRef) (string, error)
	DeleteHome(ctx context.Context, ref SubjectRef) error
	Close() error
}
