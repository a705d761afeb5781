package envelope

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
)

// MaxKEKIDLen is the longest KEK id a [Wrapped] blob can carry, in bytes.
const MaxKEKIDLen = 255

// MaxWrappedCiphertextLen is the longest wrapped-key ciphertext a [Wrapped]
// blob can carry, in bytes: ample for AES key wrap, an AEAD, RSA-OAEP-4096
// or HPKE output around a 32-byte key.
const MaxWrappedCiphertextLen = 4096

// Wrapped is a key wrapped (encrypted) by a key-encryption key (KEK). This
// package defines only the container; the KEK implementation produces and
// consumes Ciphertext. Its binary encoding is
//
//	0x03 || u8(len(KEKID)) || KEKID || u32be(KEKVersion) || u16be(len(Ciphertext)) || Ciphertext
//
// KEKID is 1 to MaxKEKIDLen bytes of printable ASCII without spaces
// (0x21–0x7e); Ciphertext is 1 to MaxWrappedCiphertextLen bytes.
type Wrapped struct {
	// KEKID names the key-encryption key, e.g. "local:cn-gz1".
	KEKID string
	// KEKVersion is the KEK's version; rotation adds versions.
	KEKVersion uint32
	// Ciphertext is the wrapped key, opaque to this package.
	Ciphertext []byte
}

// MarshalBinary returns the canonical encoding of w. It fails with
// [ErrMalformed] if KEKID or Ciphertext is empty, too long, or KEKID holds a
// byte outside 0x21–0x7e.
func (w Wrapped) MarshalBinary() ([]byte, error) {
	if !validKEKID(w.KEKID) || len(w.Ciphertext) == 0 || len(w.Ciphertext) > MaxWrappedCiphertextLen {
		return nil, ErrMalformed
	}
	out := make([]byte, 0, 1+1+len(w.KEKID)+4+2+len(w.Ciphertext))
	out = append(out, versionWrapped, byte(len(w.KEKID)))
	out = append(out, w.KEKID...)
	out = binary.BigEndian.AppendUint32(out, w.KEKVersion)
	out = binary.BigEndian.AppendUint16(out, uint16(len(w.Ciphertext)))
	return append(out, w.Ciphertext...), nil
}

// ParseWrapped parses the encoding made by [Wrapped.MarshalBinary]. It accepts
// only canonical input: exactly the bytes MarshalBinary would produce for the
// result, with nothing trailing. Anything else yields [ErrMalformed]. The
// returned Ciphertext does not alias b.
func ParseWrapped(b []byte) (Wrapped, error) {
	if len(b) < 2 || b[0] != versionWrapped {
		return Wrapped{}, ErrMalformed
	}
	idLen := int(b[1])
	rest := b[2:]
	if len(rest) < idLen+4+2 {
		return Wrapped{}, ErrMalformed
	}
	id := string(rest[:idLen])
	version := binary.BigEndian.Uint32(rest[idLen:])
	ctLen := int(binary.BigEndian.Uint16(rest[idLen+4:]))
	ct := rest[idLen+6:]
	if !validKEKID(id) || ctLen == 0 || ctLen > MaxWrappedCiphertextLen || len(ct) != ctLen {
		return Wrapped{}, ErrMalformed
	}
	return Wrapped{KEKID: id, KEKVersion: version, Ciphertext: append([]byte(nil), ct...)}, nil
}

func validKEKID(id string) bool {
	if len(id) == 0 || len(id) > MaxKEKIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// LogValue logs the KEK id and version and the ciphertext length, not the
// ciphertext.
func (w Wrapped) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kek_id", w.KEKID),
		slog.Uint64("kek_version", uint64(w.KEKVersion)),
		slog.Int("ciphertext_len", len(w.Ciphertext)),
	)
}

// fingerprintTag is the domain tag hashed before a key by Fingerprint.
const fingerprintTag = "domicile/key-fingerprint/v1\x00"

// Fingerprint returns a short fingerprint of the data key dk for erasure
// receipts and logs: the lowercase hex of the first 16 bytes of
// SHA-256("domicile/key-fingerprint/v1" || 0x00 || dk), 32 characters. It
// identifies a key without revealing it: recovering a 32-byte random key from
// its fingerprint means inverting SHA-256. The domain tag keeps the value
// distinct from any other hash of the key. dk of any length is accepted.
func Fingerprint(dk []byte) string {
	h := sha256.New()
	h.Write([]byte(fingerprintTag))
	h.Write(dk)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
