// Package leaf defines the entries of a domicile cell log: one line of
// non-personal metadata and a salted commitment to the full access event.
//
// # Format
//
// A leaf is exactly one line of ASCII text, with no trailing newline:
//
//	domicile/v1 t=<time> a=<action> r=<role> o=<outcome> c=<commitment>
//
// with the fields in this order, separated by single spaces:
//
//   - t: the event time in Unix seconds, rounded down to the minute
//     (a multiple of 60, decimal, no leading zeroes);
//   - a: the action, one of [Actions];
//   - r: the actor's role, one of [Roles];
//   - o: the outcome, "allowed" or "denied";
//   - c: the commitment, standard base64 (with padding) of
//     HMAC-SHA256(key = salt, message = the committed event bytes),
//     where salt is 32 random bytes kept in the cell ([NewSalt], [Commit]).
//
// For example:
//
//	domicile/v1 t=1767225600 a=read r=operator o=allowed c=3q2+7w...=
//
// # Privacy
//
// A leaf holds no personal information: time is coarsened to the minute,
// and the commitment is a keyed hash that reveals nothing about the event
// without its salt. The full event and the salt stay in the cell. Showing
// both to a subject lets the subject check the leaf ([Leaf.Verify]);
// destroying the salt (when the subject is erased) makes the leaf
// unlinkable to anyone, while the log still verifies.
//
// # Compatibility
//
// The format is versioned by its first word. [Parse] accepts only the
// canonical encoding that [Format] produces, so a leaf has exactly one
// encoding and one Merkle leaf hash.
package leaf

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version is the first word of every leaf.
const Version = "domicile/v1"

// SaltSize is the size of a commitment salt in bytes.
const SaltSize = 32

// Actions lists the valid actions, in no particular order.
var Actions = []string{"write", "read", "list", "delete", "erase", "export", "key-unwrap", "transfer", "consent", "notice", "disclose"}

// Roles lists the valid actor roles.
var Roles = []string{"app", "subject", "operator", "authority", "auditor", "admin", "system"}

// Outcomes lists the valid outcomes.
var Outcomes = []string{"allowed", "denied"}

// A Leaf is the decoded form of a log leaf.
type Leaf struct {
	// Time is the event time. Format rounds it down to the minute.
	Time time.Time
	// Action, Role and Outcome are from Actions, Roles and Outcomes.
	Action, Role, Outcome string
	// Commitment is HMAC-SHA256(salt, committed event bytes).
	Commitment [32]byte
}

// Validate reports whether l can be formatted: its action, role and outcome
// are known and its time is not before the Unix epoch.
func (l Leaf) Validate() error {
	switch {
	case !slices.Contains(Actions, l.Action):
		return errors.New("leaf: unknown action")
	case !slices.Contains(Roles, l.Role):
		return errors.New("leaf: unknown role")
	case !slices.Contains(Outcomes, l.Outcome):
		return errors.New("leaf: unknown outcome")
	case l.Time.Unix() < 0:
		return errors.New("leaf: time before 1970")
	}
	return nil
}

// Format returns the canonical encoding of l, with its time rounded down to
// the minute. If l is invalid (see [Leaf.Validate]), Format panics: leaves
// are built by the log from closed lists, so an invalid one is a bug.
func Format(l Leaf) []byte {
	if err := l.Validate(); err != nil {
		panic(err)
	}
	t := l.Time.Unix()
	t -= t % 60
	b := make([]byte, 0, 128)
	b = append(b, Version...)
	b = append(b, " t="...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, " a="...)
	b = append(b, l.Action...)
	b = append(b, " r="...)
	b = append(b, l.Role...)
	b = append(b, " o="...)
	b = append(b, l.Outcome...)
	b = append(b, " c="...)
	b = base64.StdEncoding.AppendEncode(b, l.Commitment[:])
	return b
}

// String returns the canonical encoding of l.
func (l Leaf) String() string { return string(Format(l)) }

var errMalformed = errors.New("leaf: malformed leaf")

// MaxSize is the largest possible leaf encoding, in bytes.
const MaxSize = 160

// Parse decodes a leaf. It accepts only the canonical encoding: Format of
// the result reproduces data byte for byte. The returned time is in UTC.
func Parse(data []byte) (Leaf, error) {
	if len(data) > MaxSize {
		return Leaf{}, errMalformed
	}
	f := strings.Split(string(data), " ")
	if len(f) != 6 || f[0] != Version {
		return Leaf{}, errMalformed
	}
	val := func(s, key string) (string, bool) { return strings.CutPrefix(s, key+"=") }
	ts, ok1 := val(f[1], "t")
	action, ok2 := val(f[2], "a")
	role, ok3 := val(f[3], "r")
	outcome, ok4 := val(f[4], "o")
	c, ok5 := val(f[5], "c")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return Leaf{}, errMalformed
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || t < 0 || t%60 != 0 || strconv.FormatInt(t, 10) != ts {
		return Leaf{}, errMalformed
	}
	cb, err := base64.StdEncoding.Strict().DecodeString(c)
	if err != nil || len(cb) != 32 {
		return Leaf{}, errMalformed
	}
	l := Leaf{Time: time.Unix(t, 0).UTC(), Action: action, Role: role, Outcome: outcome}
	copy(l.Commitment[:], cb)
	if l.Validate() != nil {
		return Leaf{}, errMalformed
	}
	if !bytes.Equal(Format(l), data) {
		return Leaf{}, errMalformed
	}
	return l, nil
}

// Commit returns HMAC-SHA256(key = salt, message = committed): the
// commitment to the exact committed event bytes.
func Commit(salt, committed []byte) [32]byte {
	m := hmac.New(sha256.New, salt)
	m.Write(committed)
	var c [32]byte
	m.Sum(c[:0])
	return c
}

// NewSalt returns a new [SaltSize]-byte salt read from rand (normally
// crypto/rand.Reader).
func NewSalt(rand io.Reader) ([]byte, error) {
	s := make([]byte, SaltSize)
	if _, err := io.ReadFull(rand, s); err != nil {
		return nil, fmt.Errorf("leaf: read salt: %v", err)
	}
	return s, nil
}

// Verify reports whether l commits to the committed event bytes under salt.
// The comparison is constant-time. A salt of the wrong size never verifies.
func (l Leaf) Verify(salt, committed []byte) bool {
	if len(salt) != SaltSize {
		return false
	}
	c := Commit(salt, committed)
	return hmac.Equal(c[:], l.Commitment[:])
}
