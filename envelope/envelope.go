package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// KeySize is the size in bytes of a data key (DK).
const KeySize = 32

// SaltSize is the size in bytes of the random salt drawn for each record and
// each object; the salt selects the message or stream key derived from the DK.
const SaltSize = 32

// TagSize is the size in bytes of the AES-GCM authentication tag appended to
// each sealed record and each sealed chunk.
const TagSize = 16

// Format version bytes: the first byte of every encoding in this package, so
// that a blob says what it is.
const (
	versionRecord  = 0x01
	versionStream  = 0x02
	versionWrapped = 0x03
)

// HKDF info strings: one per construction, so the key for a record can never
// equal the key for an object even if a salt repeated.
const (
	infoRecord = "domicile/record/v1"
	infoStream = "domicile/object/v1"
)

// ErrMalformed reports input that is not an envelope of the expected kind:
// wrong version byte, bad length, non-canonical encoding. The data is corrupt
// or not what the caller thinks it is; retrying will not help. The error never
// echoes the input.
var ErrMalformed = errors.New("envelope: malformed envelope")

// ErrAuth reports that a ciphertext did not authenticate: the data key is
// wrong, the [Binding] differs from the one it was sealed with, or the bytes
// were altered, truncated, reordered or moved. No plaintext is returned with
// it. Callers should treat it as tampering or a key mix-up and not retry.
var ErrAuth = errors.New("envelope: message authentication failed")

// zeroNonce is the GCM nonce of every record: each record key seals exactly one
// message, so a fixed nonce is never reused under the same key.
var zeroNonce [12]byte

// gcmMaxPlaintext is the largest plaintext AES-GCM accepts under one
// (key, nonce) pair, (2^32 - 2) blocks of 16 bytes (NIST SP 800-38D §5.2.1.1).
const gcmMaxPlaintext = (1<<32 - 2) * 16

// deriveAEAD returns AES-256-GCM keyed with HKDF-SHA256(ikm=dk, salt, info).
func deriveAEAD(dk, salt []byte, info string) (cipher.AEAD, error) {
	if len(dk) != KeySize {
		return nil, fmt.Errorf("envelope: data key is %d bytes, want %d", len(dk), KeySize)
	}
	k, err := hkdf.Key(sha256.New, dk, salt, info, 32)
	if err != nil {
		return nil, fmt.Errorf("envelope: derive key: %v", err)
	}
	defer clear(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("envelope: aes: %v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("envelope: gcm: %v", err)
	}
	return aead, nil
}

// readSalt fills salt from r, or from crypto/rand when r is nil.
func readSalt(r io.Reader, salt []byte) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, salt); err != nil {
		return fmt.Errorf("envelope: read random salt: %v", err)
	}
	return nil
}

// Binding is what a ciphertext is bound to: it is authenticated as associated
// data, so a record or object moved to another cell, subject, kind, resource
// or version fails to open with [ErrAuth]. It is not encrypted and not stored
// in the envelope: the caller supplies the same Binding to open.
type Binding struct {
	// Cell is the id of the cell that stores the data ("cn-gz1").
	Cell string
	// Subject is the app's opaque subject id.
	Subject string
	// Kind is the record kind ("profile") or the object's kind.
	Kind string
	// ID is the resource id of the record or object.
	ID string
	// Version is the resource version being written.
	Version int64
}

// bindingTag is the domain tag that starts every [Binding.AD] encoding.
const bindingTag = "domicile/binding/v1"

// AD returns the canonical associated-data encoding of b:
//
//	u32(len(tag)) || tag || u32(len(Cell)) || Cell || u32(len(Subject)) || Subject ||
//	u32(len(Kind)) || Kind || u32(len(ID)) || ID || u64(Version)
//
// with tag = "domicile/binding/v1", u32 and u64 big-endian, and Version in
// two's complement. Every field is length-prefixed, so distinct Bindings have
// distinct encodings. If a field is longer than 2^32-1 bytes, AD panics.
func (b Binding) AD() []byte {
	return b.appendAD(nil)
}

func (b Binding) appendAD(dst []byte) []byte {
	fields := [...]string{bindingTag, b.Cell, b.Subject, b.Kind, b.ID}
	n := 8
	for _, f := range fields {
		n += 4 + len(f)
	}
	dst = growCap(dst, n)
	for _, f := range fields {
		if uint64(len(f)) > math.MaxUint32 {
			panic("envelope: binding field longer than 2^32-1 bytes")
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f)))
		dst = append(dst, f...)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(b.Version))
}

// growCap returns dst with room for at least n more bytes.
func growCap(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}
