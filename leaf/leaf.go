// Package leaf defines the entries of a domicile cell log: one line of
// non-personal metadata and a salted commitment to the full access event.
//
// # Format
//
// A leaf is exactly one line of ASCII text, with no trailing newline, in
// one of two versions:
//
//	domicile/v1 t=<time> a=<action> r=<role> o=<outcome> c=<commitment>
//	domicile/v2 t=<time> a=<action> r=<role> o=<outcome> g=<tags> c=<commitment>
//
// with the fields in this order, separated by single spaces:
//
//   - t: the event time in Unix seconds, rounded down to the minute
//     (a multiple of 60, decimal, no leading zeroes);
//   - a: the action, one of [Actions];
//   - r: the actor's role, one of [Roles];
//   - o: the outcome, "allowed" or "denied";
//   - g (v2 only): the event's public tags, one or more of [Tags] in
//     ascending byte order, separated by commas;
//   - c: the commitment, standard base64 (with padding) of
//     HMAC-SHA256(key = salt, message = the committed event bytes),
//     where salt is 32 random bytes kept in the cell ([NewSalt], [Commit]).
//
// A leaf without tags is written in v1, a leaf with tags in v2, so every
// leaf has one encoding. For example:
//
//	domicile/v1 t=1767225600 a=read r=app o=allowed c=3q2+7w...=
//	domicile/v2 t=1767225600 a=read r=operator o=allowed g=remote,support c=3q2+7w...=
//
// # Tags
//
// Tags are the facts about an event that the published figures count
// (the transparency report's), so that anyone can recount them from the
// log's public tiles: the justification of an operator's or an
// authority's access (a reason from the closed list), "remote" for a
// read from outside the cell's jurisdiction that the transfer gate
// allowed, and "withdrawal" for a consent withdrawn.
//
// # Privacy
//
// A leaf holds no personal information: time is coarsened to the minute,
// tags come from a closed list that names no one, and the commitment is
// a keyed hash that reveals nothing about the event without its salt.
// The full event and the salt stay in the cell. Showing both to a subject
// lets the subject check the leaf ([Leaf.Verify]); destroying the salt
// (when the subject is erased) makes the leaf unlinkable to anyone, while
// the log still verifies and its figures still count.
//
// # Compatibility
//
// The format is versioned by its first word. [Parse] accepts only the
// canonical encoding that [Format] produces, so a leaf has exactly one
// encoding and one Merkle leaf hash. v1 leaves written before tags
// existed parse as leaves without tags.
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

// Version is the first word of a leaf without tags; VersionTags that of
// a leaf with tags.
const (
	Version     = "domicile/v1"
	VersionTags = "domicile/v2"
)

// SaltSize is the size of a commitment salt in bytes.
const SaltSize = 32

// Actions lists the valid actions, in no particular order.
var Actions = []string{"write", "read", "list", "delete", "erase", "export", "key-unwrap", "transfer", "consent", "notice", "disclose", "request", "migrate-out", "migrate-in"}

// Roles lists the valid actor roles.
var Roles = []string{"app", "subject", "operator", "authority", "auditor", "admin", "system"}

// Outcomes lists the valid outcomes.
var Outcomes = []string{"allowed", "denied"}

// Tags lists the valid tags, in ascending byte order: the reasons an
// operator or authority states (domicile.Reason), "remote" and
// "withdrawal".
var Tags = []string{"emergency", "lawful-request-domestic", "lawful-request-foreign", "maintenance", "remote", "support", "withdrawal"}

// Tag names.
const (
	// TagRemote marks a read from outside the cell's jurisdiction that the
	// transfer gate allowed (a transfer abroad).
	TagRemote = "remote"
	// TagWithdrawal marks a consent withdrawn.
	TagWithdrawal = "withdrawal"
)

// A Leaf is the decoded form of a log leaf.
type Leaf struct {
	// Time is the event time. Format rounds it down to the minute.
	Time time.Time
	// Action, Role and Outcome are from Actions, Roles and Outcomes.
	Action, Role, Outcome string
	// Tags are from Tags, in ascending order without repeats; nil or
	// empty for none.
	Tags []string
	// Commitment is HMAC-SHA256(salt, committed event bytes).
	Commitment [32]byte
}

// Validate reports whether l can be formatted: its action, role, outcome
// and tags are known, its tags in ascending order without repeats, and
// its time is not before the Unix epoch.
func (l Leaf) Validate() error {
	for i, g := range l.Tags {
		if !slices.Contains(Tags, g) {
			return errors.New("leaf: unknown tag")
		}
		if i > 0 && l.Tags[i-1] >= g {
			return errors.New("leaf: tags not in ascending order")
		}
	}
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
	if len(l.Tags) == 0 {
		b = append(b, Version...)
	} else {
		b = append(b, VersionTags...)
	}
	b = append(b, " t="...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, " a="...)
	b = append(b, l.Action...)
	b = append(b, " r="...)
	b = append(b, l.Role...)
	b = append(b, " o="...)
	b = append(b, l.Outcome...)
	if len(l.Tags) > 0 {
		b = append(b, " g="...)
		b = append(b, strings.Join(l.Tags, ",")...)
	}
	b = append(b, " c="...)
	b = base64.StdEncoding.AppendEncode(b, l.Commitment[:])
	return b
}

// String returns the canonical encoding of l.
func (l Leaf) String() string { return string(Format(l)) }

// Has reports whether l carries tag.
func (l Leaf) Has(tag string) bool { return slices.Contains(l.Tags, tag) }

var errMalformed = errors.New("leaf: malformed leaf")

// MaxSize bounds a leaf's encoding, in bytes (every tag and the longest
// action and role fit well within it).
const MaxSize = 256

// Parse decodes a leaf. It accepts only the canonical encoding: Format of
// the result reproduces data byte for byte. The returned time is in UTC.
func Parse(data []byte) (Leaf, error) {
	if len(data) > MaxSize {
		return Leaf{}, errMalformed
	}
	f := strings.Split(string(data), " ")
	val := func(s, key string) (string, bool) { return strings.CutPrefix(s, key+"=") }
	var tags []string
	switch {
	case len(f) == 6 && f[0] == Version:
	case len(f) == 7 && f[0] == VersionTags:
		g, ok := val(f[5], "g")
		if !ok || g == "" {
			return Leaf{}, errMalformed
		}
		tags = strings.Split(g, ",")
		f = append(f[:5], f[6])
	default:
		return Leaf{}, errMalformed
	}
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
	l := Leaf{Time: time.Unix(t, 0).UTC(), Action: action, Role: role, Outcome: outcome, Tags: tags}
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
