package domicile

import (
	"errors"
	"fmt"
)

// Error codes. Only the HTTP layer maps them to statuses.
const (
	EInvalid      = "invalid"             // malformed input: 400
	EUnauthorized = "unauthorized"        // no or unknown token: 401
	EForbidden    = "forbidden"           // the actor may not do this: 403
	EResidency    = "residency-forbidden" // placement the policy forbids: 403
	ENotFound     = "not-found"           // 404
	EConflict     = "conflict"            // exists already, or state forbids it: 409
	EPrecondition = "precondition-failed" // If-Match did not match: 412
	ETooLarge     = "too-large"           // body over its limit: 413
	EUnsupported  = "unsupported-media"   // wrong Content-Type: 415
	ETimeout      = "request-timeout"     // the request's body did not arrive in time: 408
	EMisdirected  = "misdirected"         // the subject's cell is served by another process: 421
	EUnavailable  = "unavailable"         // a dependency is down; retry later: 503
	// ENotImplemented: this process does not make what was asked (a
	// deployment-wide report the router of cell processes cannot count
	// correctly): 501.
	ENotImplemented = "not-implemented"
	EInternal       = "internal" // everything else: 500
)

// Error is an error meant for users: a stable code, a sentence, and, where
// one input is at fault, the name of that field.
type Error struct {
	Code    string
	Message string
	Field   string
	// RetryAfter, for EUnavailable, is how many seconds a client should wait.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an *Error of code EInvalid naming field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, and
// EInternal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
