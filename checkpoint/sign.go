package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// MaxSignedSize bounds the size of a signed checkpoint accepted by [Open]
// and [AddCosignatures].
const MaxSignedSize = 1 << 16

// GenerateKey returns a new Ed25519 note key pair for the log named origin:
// the signer key "PRIVATE+KEY+<origin>+<key ID>+<base64>", to keep secret,
// and the verifier key "<origin>+<key ID>+<base64>", to publish.
func GenerateKey(rand io.Reader, origin string) (signer, verifier string, err error) {
	if !validLine(origin) {
		return "", "", errors.New("checkpoint: invalid origin")
	}
	signer, verifier, err = note.GenerateKey(rand, origin)
	if err != nil {
		return "", "", fmt.Errorf("checkpoint: generate key: %v", err)
	}
	return signer, verifier, nil
}

// NewSigner returns the note signer for a signer key made by [GenerateKey].
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, errors.New("checkpoint: malformed signer key")
	}
	return s, nil
}

// NewVerifier returns the note verifier for a log verifier key.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: malformed verifier key: %v", err)
	}
	return v, nil
}

// Sign formats c and signs it with the log's signer, whose name must be
// c.Origin, returning the signed checkpoint.
func Sign(c Checkpoint, signer note.Signer) ([]byte, error) {
	text, err := Format(c)
	if err != nil {
		return nil, err
	}
	if signer.Name() != c.Origin {
		return nil, errors.New("checkpoint: signer name is not the origin")
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: sign: %v", err)
	}
	return msg, nil
}

// A Signed is a checkpoint whose log signature, and required cosignatures,
// have been verified by [Open].
type Signed struct {
	Checkpoint
	// Note is the opened note: its Sigs are the verified signatures (the
	// log's and the required witnesses'), its UnverifiedSigs the others.
	Note *note.Note
	// Cosignatures are the verified cosignatures, in the order of the
	// witnesses given to Open.
	Cosignatures []Cosignature
	// Raw is the signed checkpoint as received: the evidence to show others.
	Raw []byte
}

// A Cosignature is a verified witness cosignature.
type Cosignature struct {
	Name    string
	KeyHash uint32
	// Time is the time the witness cosigned, from the signature.
	Time time.Time
}

// MissingCosignatureError reports that a signed checkpoint lacks the
// cosignature of a required witness.
type MissingCosignatureError struct {
	Name    string
	KeyHash uint32
	// Checkpoint is the signed checkpoint.
	Checkpoint []byte
}

func (e *MissingCosignatureError) Error() string {
	return fmt.Sprintf("checkpoint: no cosignature by required witness %s+%08x on checkpoint:\n%s", e.Name, e.KeyHash, e.Checkpoint)
}

// SignatureError reports a signed checkpoint that does not verify: no
// valid signature by the log, an invalid signature by a known key, or an
// origin that is not the log's key name.
type SignatureError struct {
	// Checkpoint is the signed checkpoint, as received.
	Checkpoint []byte
	Reason     string
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("checkpoint: signature does not verify: %s; checkpoint:\n%s", e.Reason, e.Checkpoint)
}

// Open verifies a signed checkpoint: the log's signature by log (whose name
// must be the origin), and a valid cosignature by each of witnesses.
// Signatures by other keys are ignored, as the signed note format requires.
// It returns a [*SignatureError] or a [*MissingCosignatureError] on failure.
func Open(msg []byte, log note.Verifier, witnesses ...*CosignatureVerifier) (*Signed, error) {
	if len(msg) > MaxSignedSize {
		return nil, &SignatureError{Checkpoint: msg[:256], Reason: "too large"}
	}
	list := []note.Verifier{log}
	for _, w := range witnesses {
		if w.Name() == log.Name() && w.KeyHash() == log.KeyHash() {
			return nil, errors.New("checkpoint: witness key collides with log key")
		}
		list = append(list, w)
	}
	n, err := note.Open(msg, note.VerifierList(list...))
	if err != nil {
		var reason string
		var inv *note.InvalidSignatureError
		var unv *note.UnverifiedNoteError
		switch {
		case errors.As(err, &inv):
			reason = fmt.Sprintf("invalid signature by %s+%08x", inv.Name, inv.Hash)
		case errors.As(err, &unv):
			reason = "no signature by a known key"
		default:
			reason = err.Error()
		}
		return nil, &SignatureError{Checkpoint: msg, Reason: reason}
	}
	signedBy := func(name string, hash uint32) (note.Signature, bool) {
		for _, s := range n.Sigs {
			if s.Name == name && s.Hash == hash {
				return s, true
			}
		}
		return note.Signature{}, false
	}
	if _, ok := signedBy(log.Name(), log.KeyHash()); !ok {
		return nil, &SignatureError{Checkpoint: msg, Reason: "no signature by the log key " + log.Name()}
	}
	c, err := Parse([]byte(n.Text))
	if err != nil {
		return nil, &SignatureError{Checkpoint: msg, Reason: "malformed checkpoint body"}
	}
	if c.Origin != log.Name() {
		return nil, &SignatureError{Checkpoint: msg, Reason: "origin is not the log key's name"}
	}
	s := &Signed{Checkpoint: c, Note: n, Raw: bytes.Clone(msg)}
	for _, w := range witnesses {
		sig, ok := signedBy(w.Name(), w.KeyHash())
		if !ok {
			return nil, &MissingCosignatureError{Name: w.Name(), KeyHash: w.KeyHash(), Checkpoint: msg}
		}
		t, err := CosignatureTime(sig)
		if err != nil {
			return nil, &SignatureError{Checkpoint: msg, Reason: "malformed cosignature"}
		}
		s.Cosignatures = append(s.Cosignatures, Cosignature{Name: sig.Name, KeyHash: sig.Hash, Time: t})
	}
	return s, nil
}

// Body returns the checkpoint body (note text) of a signed note, without
// verifying anything. It is for showing evidence, never for trusting it.
func Body(msg []byte) ([]byte, error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil, errMalformed
	}
	return msg[:i+1], nil
}
