package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"domicile"
)

// wrap returns err with the package's context ("postgres: what: err"),
// marked as [domicile.ErrStoreUnavailable] when it says that the server
// cannot be reached now.
func wrap(what string, err error) error {
	if unreachable(err) {
		return &unavailableError{what: what, err: err}
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// unavailableError is an error that means the server cannot be reached.
// It is both [domicile.ErrStoreUnavailable] and its cause.
type unavailableError struct {
	what string
	err  error
}

func (e *unavailableError) Error() string {
	return "postgres: " + e.what + ": " + domicile.ErrStoreUnavailable.Error() + ": " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error {
	return []error{domicile.ErrStoreUnavailable, e.err}
}

// unreachable reports whether err means that the server cannot be
// reached now: a failed or lost connection, a connection timeout, or the
// server refusing connections while it shuts down, starts or recovers
// (SQLSTATE classes 08 and 57P, and 53300 too many connections).
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.As(err, &oe):
		return true
	case pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	case errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		// A pool's acquire or connect that timed out; a caller's own
		// deadline reads the same, and 503 is the right answer to it.
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "connection reset")
}
