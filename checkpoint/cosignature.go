package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// CosignatureAlg is the signature type byte of Ed25519 cosignature/v1 keys
// (C2SP tlog-cosignature), used in key IDs and verifier keys.
const CosignatureAlg = 0x04

// cosignatureSize is the size of a timestamped Ed25519 cosignature.
const cosignatureSize = 8 + ed25519.SignatureSize

// keyID computes a note key ID: SHA-256(name || "\n" || key)[:4], where key
// starts with the signature type byte.
func keyID(name string, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName reports whether name can be a note key name: non-empty UTF-8
// with no Unicode spaces and no plus signs.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// GenerateCosignerKey returns a new Ed25519 cosigner key pair for a witness
// named name: the signer key "PRIVATE+KEY+<name>+<key ID>+base64(0x04 ||
// seed)", to keep secret, and the verifier key "<name>+<key ID>+base64(0x04
// || public key)" (a C2SP vkey of type 0x04), to publish.
func GenerateCosignerKey(rand io.Reader, name string) (signer, verifier string, err error) {
	if !validName(name) {
		return "", "", errors.New("checkpoint: invalid cosigner name")
	}
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", "", fmt.Errorf("checkpoint: generate cosigner key: %v", err)
	}
	pk := append([]byte{CosignatureAlg}, pub...)
	sk := append([]byte{CosignatureAlg}, priv.Seed()...)
	id := keyID(name, pk)
	signer = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(sk))
	verifier = fmt.Sprintf("%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(pk))
	return signer, verifier, nil
}

// splitKey splits "<name>+<hex key ID>+<base64 key>" and checks the ID
// format; key includes the type byte.
func splitKey(s string) (name string, id uint32, key []byte, ok bool) {
	name, rest, _ := strings.Cut(s, "+")
	hex, b64, _ := strings.Cut(rest, "+")
	h, err1 := strconv.ParseUint(hex, 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(b64)
	if len(hex) != 8 || err1 != nil || err2 != nil || !validName(name) || len(key) == 0 {
		return "", 0, nil, false
	}
	return name, uint32(h), key, true
}

// A Cosigner makes cosignature/v1 signatures. It implements note.Signer, so
// note.Sign cosigns a checkpoint with it. It is safe for concurrent use.
type Cosigner struct {
	name string
	id   uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

// NewCosigner returns the cosigner for a signer key made by
// [GenerateCosignerKey]. now gives the cosignature timestamps (time.Now
// when nil).
func NewCosigner(skey string, now func() time.Time) (*Cosigner, error) {
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return nil, errors.New("checkpoint: malformed cosigner key")
	}
	name, id, key, ok := splitKey(rest)
	if !ok || len(key) != 1+ed25519.SeedSize || key[0] != CosignatureAlg {
		return nil, errors.New("checkpoint: malformed cosigner key")
	}
	priv := ed25519.NewKeyFromSeed(key[1:])
	pk := append([]byte{CosignatureAlg}, priv.Public().(ed25519.PublicKey)...)
	if keyID(name, pk) != id {
		return nil, errors.New("checkpoint: cosigner key ID does not match its key")
	}
	if now == nil {
		now = time.Now
	}
	return &Cosigner{name: name, id: id, key: priv, now: now}, nil
}

// Name returns the witness name.
func (c *Cosigner) Name() string { return c.name }

// KeyHash returns the key ID.
func (c *Cosigner) KeyHash() uint32 { return c.id }

// Verifier returns the verifier key of c.
func (c *Cosigner) Verifier() string {
	pk := append([]byte{CosignatureAlg}, c.key.Public().(ed25519.PublicKey)...)
	return fmt.Sprintf("%s+%08x+%s", c.name, c.id, base64.StdEncoding.EncodeToString(pk))
}

// Sign returns the timestamped cosignature of msg, which must be a
// checkpoint body: a witness states nothing about other texts.
func (c *Cosigner) Sign(msg []byte) ([]byte, error) {
	if _, err := Parse(msg); err != nil {
		return nil, errors.New("checkpoint: cosigner signs only checkpoints")
	}
	ts := c.now().Unix()
	if ts < 0 {
		return nil, errors.New("checkpoint: cosignature time before 1970")
	}
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, cosignatureSize), uint64(ts))
	return append(sig, ed25519.Sign(c.key, cosignedMessage(uint64(ts), msg))...), nil
}

// cosignedMessage returns the message a cosignature/v1 signs.
func cosignedMessage(ts uint64, body []byte) []byte {
	m := make([]byte, 0, 40+len(body))
	m = append(m, "cosignature/v1\ntime "...)
	m = strconv.AppendUint(m, ts, 10)
	m = append(m, '\n')
	return append(m, body...)
}

// A CosignatureVerifier verifies cosignature/v1 signatures by one witness.
// It implements note.Verifier, so note.Open verifies cosignatures with it.
type CosignatureVerifier struct {
	name string
	id   uint32
	key  ed25519.PublicKey
}

// NewCosignatureVerifier returns the verifier for a witness verifier key
// "<name>+<key ID>+base64(0x04 || Ed25519 public key)".
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	name, id, key, ok := splitKey(vkey)
	if !ok || len(key) != 1+ed25519.PublicKeySize || key[0] != CosignatureAlg {
		return nil, errors.New("checkpoint: malformed cosigner verifier key")
	}
	if keyID(name, key) != id {
		return nil, errors.New("checkpoint: cosigner key ID does not match its key")
	}
	return &CosignatureVerifier{name: name, id: id, key: ed25519.PublicKey(key[1:])}, nil
}

// Name returns the witness name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash returns the key ID.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.id }

// Verify reports whether sig is a valid timestamped cosignature of the
// checkpoint body msg.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig)
	if ts > 1<<63-1 {
		return false
	}
	return ed25519.Verify(v.key, cosignedMessage(ts, msg), sig[8:])
}

// CosignatureTime returns the timestamp of a cosignature/v1 note signature.
func CosignatureTime(sig note.Signature) (time.Time, error) {
	b, err := base64.StdEncoding.DecodeString(sig.Base64)
	if err != nil || len(b) != 4+cosignatureSize {
		return time.Time{}, errors.New("checkpoint: malformed cosignature")
	}
	ts := binary.BigEndian.Uint64(b[4:])
	if ts > 1<<63-1 {
		return time.Time{}, errors.New("checkpoint: malformed cosignature")
	}
	return time.Unix(int64(ts), 0).UTC(), nil
}

// Cosign returns the cosignature line ("— <name> <base64>\n") of cosigner
// on the checkpoint body text.
func Cosign(text []byte, cosigner *Cosigner) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: string(text)}, cosigner)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: cosign: %v", err)
	}
	return msg[len(text)+1:], nil
}

var errSigLine = errors.New("checkpoint: malformed signature line")

// parseSigLine returns the name and key ID of one signature line, which
// must end with a newline.
func parseSigLine(line []byte) (string, uint32, error) {
	rest, ok := bytes.CutPrefix(line, []byte("— "))
	if !ok || len(rest) == 0 || rest[len(rest)-1] != '\n' {
		return "", 0, errSigLine
	}
	name, b64, ok := strings.Cut(string(rest[:len(rest)-1]), " ")
	sig, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || !validName(name) || len(sig) < 5 {
		return "", 0, errSigLine
	}
	return name, binary.BigEndian.Uint32(sig), nil
}

// AddCosignatures appends cosignature lines (as returned by [Cosign]) to a
// signed checkpoint, replacing any earlier signature by the same key. It
// checks the lines' syntax, not their signatures.
func AddCosignatures(signed []byte, lines ...[]byte) ([]byte, error) {
	if len(signed) > MaxSignedSize {
		return nil, errMalformed
	}
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 || !bytes.HasSuffix(signed, []byte("\n")) {
		return nil, errMalformed
	}
	type key struct {
		name string
		id   uint32
	}
	replaced := map[key]bool{}
	for _, l := range lines {
		name, id, err := parseSigLine(l)
		if err != nil || bytes.Count(l, []byte("\n")) != 1 {
			return nil, errSigLine
		}
		replaced[key{name, id}] = true
	}
	out := bytes.Clone(signed[:i+2])
	for sigs := signed[i+2:]; len(sigs) > 0; {
		j := bytes.IndexByte(sigs, '\n')
		line := sigs[:j+1]
		sigs = sigs[j+1:]
		name, id, err := parseSigLine(line)
		if err != nil {
			return nil, errSigLine
		}
		if !replaced[key{name, id}] {
			out = append(out, line...)
		}
	}
	for _, l := range lines {
		out = append(out, l...)
	}
	return out, nil
}
