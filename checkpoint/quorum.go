package checkpoint

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// MissingCosignature is one listed witness whose valid cosignature a
// checkpoint does not carry, and why.
type MissingCosignature struct {
	Name    string
	KeyHash uint32
	// Reason is "no cosignature" or "invalid cosignature".
	Reason string
}

// QuorumError reports a signed checkpoint that carries valid cosignatures
// by fewer of the listed witnesses than required. It names each listed
// witness whose cosignature is missing or invalid.
type QuorumError struct {
	// Want is the number of valid cosignatures required, Have the number
	// found.
	Want, Have int
	Missing    []MissingCosignature
	// Checkpoint is the signed checkpoint, as received.
	Checkpoint []byte
}

func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint: %d valid cosignatures of the listed witnesses, want %d; missing:", e.Have, e.Want)
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n  %s+%08x: %s", m.Name, m.KeyHash, m.Reason)
	}
	fmt.Fprintf(&b, "\ncheckpoint:\n%s", e.Checkpoint)
	return b.String()
}

// OpenQuorum verifies a signed checkpoint as [Open] does, except that it
// requires valid cosignatures by at least n of witnesses rather than by
// all of them: a verifier that trusts any n of a set of independent
// witnesses to refuse a split view. A cosignature line by a listed witness
// that does not verify counts as missing; signatures by other keys are
// ignored. Witness keys must be distinct, and 0 ≤ n ≤ len(witnesses).
//
// It returns a [*SignatureError] when the log's signature does not verify
// and a [*QuorumError] when fewer than n cosignatures do. The returned
// Signed's Cosignatures are the valid ones, in the order of witnesses.
func OpenQuorum(msg []byte, log note.Verifier, n int, witnesses ...*CosignatureVerifier) (*Signed, error) {
	if n < 0 || n > len(witnesses) {
		return nil, fmt.Errorf("checkpoint: want %d of %d witnesses", n, len(witnesses))
	}
	type key struct {
		name string
		id   uint32
	}
	seen := map[key]bool{{log.Name(), log.KeyHash()}: true}
	for _, w := range witnesses {
		k := key{w.Name(), w.KeyHash()}
		if seen[k] {
			return nil, errors.New("checkpoint: a witness key is listed twice or collides with the log key")
		}
		seen[k] = true
	}
	// The log's signature first: witnesses' lines stay unverified here.
	s, err := Open(msg, log)
	if err != nil {
		return nil, err
	}
	text := []byte(s.Note.Text)
	qe := &QuorumError{Want: n, Checkpoint: msg}
	for _, w := range witnesses {
		reason := "no cosignature"
		for _, sig := range s.Note.UnverifiedSigs {
			if sig.Name != w.Name() || sig.Hash != w.KeyHash() {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(sig.Base64)
			t, terr := CosignatureTime(sig)
			if err != nil || terr != nil || !w.Verify(text, b[4:]) {
				reason = "invalid cosignature"
				continue
			}
			reason = ""
			s.Cosignatures = append(s.Cosignatures, Cosignature{Name: sig.Name, KeyHash: sig.Hash, Time: t})
			break
		}
		if reason != "" {
			qe.Missing = append(qe.Missing, MissingCosignature{Name: w.Name(), KeyHash: w.KeyHash(), Reason: reason})
		}
	}
	qe.Have = len(s.Cosignatures)
	if qe.Have < n {
		return nil, qe
	}
	return s, nil
}
