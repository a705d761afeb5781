package domicile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Control log actions.
const (
	// ControlMint is the minting of a token.
	ControlMint = "mint"
	// ControlRotate is a rotation: Token is the new token, Replaces the
	// one it revoked.
	ControlRotate = "rotate"
	// ControlRevoke is the revocation of one token.
	ControlRevoke = "revoke"
	// ControlRevokeSubject is the revocation of Count tokens of a
	// subject that was erased; it names neither the subject nor the
	// tokens.
	ControlRevokeSubject = "revoke-subject"
)

// ControlEvent is one entry of a deployment's control log: the minting,
// rotation or revocation of a token. The log is hash-chained: each
// entry's Hash is the SHA-256 of its canonical form (ControlEvent.Canonical),
// which includes the previous entry's hash, so an entry edited, removed
// or reordered breaks every hash after it. It holds no subject reference
// and no note: nothing in it is personal data, so it never needs to
// forget anything.
type ControlEvent struct {
	// Seq numbers the entries from 1; the store assigns it.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Action is one of ControlMint, ControlRotate, ControlRevoke and
	// ControlRevokeSubject.
	Action string `json:"action"`
	// Token is the id of the token minted, revoked, or made by a
	// rotation.
	Token        string       `json:"token,omitempty"`
	Role         Role         `json:"role,omitempty"`
	Jurisdiction Jurisdiction `json:"jurisdiction,omitempty"`
	// Expires is when the minted token expires; zero if it does not.
	Expires time.Time `json:"expires,omitzero"`
	// Replaces is the id of the token a rotation revoked.
	Replaces string `json:"replaces,omitempty"`
	// Count is how many tokens a ControlRevokeSubject revoked.
	Count int `json:"count,omitempty"`
	// Actor is who did it: the id of the admin token that asked, or the
	// command that did it ("domicile serve", "domicile admin rotate",
	// "erasure").
	Actor string `json:"actor"`
	// Prev is the hash of the previous entry (hex; 64 zeros for the
	// first), Hash this entry's; the store sets both.
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// controlLogHeader starts every entry's canonical form.
const controlLogHeader = "domicile control log v1\n"

// Canonical returns the text whose SHA-256 is the entry's hash: a header
// line, then one "name value" line per field in a fixed order, times in
// RFC 3339 with nanoseconds in UTC, "-" for an empty value, and the
// previous entry's hash last:
//
//	domicile control log v1
//	seq 2
//	time 2026-03-01T08:00:00.5Z
//	action mint
//	token tok_3c5e0a9d41f2
//	role app
//	jurisdiction CN
//	expires 2026-05-30T08:00:00.5Z
//	replaces -
//	count 0
//	actor tok_0b17c2e8a6d4
//	prev 5d1f0e7d9c6f2b4a8e3d1c0b9a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5
func (e *ControlEvent) Canonical() []byte {
	var b bytes.Buffer
	b.WriteString(controlLogHeader)
	line := func(k, v string) {
		if v == "" {
			v = "-"
		}
		b.WriteString(k)
		b.WriteByte(' ')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	line("seq", strconv.FormatInt(e.Seq, 10))
	line("time", ts(e.Time))
	line("action", e.Action)
	line("token", e.Token)
	line("role", string(e.Role))
	line("jurisdiction", string(e.Jurisdiction))
	line("expires", ts(e.Expires))
	line("replaces", e.Replaces)
	line("count", strconv.Itoa(e.Count))
	line("actor", e.Actor)
	line("prev", e.Prev)
	return b.Bytes()
}

// ZeroControlHash is the Prev of the first entry of a control log.
var ZeroControlHash = strings.Repeat("0", 64)

// Seal sets e's Seq and Prev to follow the entry whose hash is prev (hex)
// and sequence number seq-1, and computes e.Hash. Stores call it inside
// the transaction that appends e. It fails if e cannot be encoded
// canonically (a value with a space or a line break, an unknown action).
func (e *ControlEvent) Seal(seq int64, prev string) error {
	if err := e.validate(); err != nil {
		return err
	}
	e.Seq, e.Prev = seq, prev
	// Times are stored to the nanosecond, in UTC: hash what is stored.
	e.Time = time.Unix(0, e.Time.UnixNano()).UTC()
	if !e.Expires.IsZero() {
		e.Expires = time.Unix(0, e.Expires.UnixNano()).UTC()
	}
	h := sha256.Sum256(e.Canonical())
	e.Hash = hex.EncodeToString(h[:])
	return nil
}

func (e *ControlEvent) validate() error {
	switch e.Action {
	case ControlMint, ControlRotate, ControlRevoke, ControlRevokeSubject:
	default:
		return fmt.Errorf("control log: unknown action %q", e.Action)
	}
	for _, v := range []string{e.Token, string(e.Role), string(e.Jurisdiction), e.Replaces, e.Actor} {
		if strings.ContainsAny(v, " \t\r\n") || len(v) > 128 {
			return fmt.Errorf("control log: a value holds white space or is too long")
		}
	}
	if e.Actor == "" {
		return fmt.Errorf("control log: an event needs its actor")
	}
	return nil
}

// ControlChainError reports a control log entry whose hashes do not
// follow from the entries before it: evidence that the log was edited.
type ControlChainError struct {
	// Seq is the first entry that does not verify.
	Seq int64
	// Want is the hash the chain requires there (of Prev or Hash), Got
	// the one stored.
	Field, Want, Got string
}

func (e *ControlChainError) Error() string {
	return fmt.Sprintf("control log: entry %d: %s is %s, the chain requires %s", e.Seq, e.Field, e.Got, e.Want)
}

// VerifyControlLog checks that evs are consecutive entries of a control
// log following the entry with sequence number seq and hash prev (0 and
// ZeroControlHash for the start of the log): each entry's Seq, Prev and
// Hash. It returns the last entry's sequence number and hash, to verify
// the next page with, or a *ControlChainError.
func VerifyControlLog(evs []ControlEvent, seq int64, prev string) (int64, string, error) {
	for _, e := range evs {
		if e.Seq != seq+1 {
			return seq, prev, &ControlChainError{Seq: e.Seq, Field: "seq", Want: strconv.FormatInt(seq+1, 10), Got: strconv.FormatInt(e.Seq, 10)}
		}
		if e.Prev != prev {
			return seq, prev, &ControlChainError{Seq: e.Seq, Field: "prev", Want: prev, Got: e.Prev}
		}
		h := sha256.Sum256(e.Canonical())
		if want := hex.EncodeToString(h[:]); e.Hash != want {
			return seq, prev, &ControlChainError{Seq: e.Seq, Field: "hash", Want: want, Got: e.Hash}
		}
		seq, prev = e.Seq, e.Hash
	}
	return seq, prev, nil
}
