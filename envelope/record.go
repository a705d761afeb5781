package envelope

import (
	"fmt"
	"io"
)

// RecordHeaderSize is the size in bytes of a sealed record's header: version,
// key generation and salt.
const RecordHeaderSize = 1 + 1 + SaltSize

// RecordOverhead is how many bytes a sealed record adds to its plaintext.
const RecordOverhead = RecordHeaderSize + TagSize

// RecordHeader is the cleartext header of a sealed record.
type RecordHeader struct {
	// KeyGen is the generation of the subject's data key that sealed the
	// record, as given to [SealRecord]. Callers use it to fetch the right DK.
	KeyGen uint8
	// Salt is the random salt from which the record's key was derived.
	Salt [SaltSize]byte
}

// MarshalBinary returns the RecordHeaderSize-byte encoding of h:
// 0x01 || KeyGen || Salt. It never fails.
func (h RecordHeader) MarshalBinary() ([]byte, error) {
	return h.append(make([]byte, 0, RecordHeaderSize)), nil
}

func (h RecordHeader) append(dst []byte) []byte {
	dst = append(dst, versionRecord, h.KeyGen)
	return append(dst, h.Salt[:]...)
}

// ParseRecordHeader parses the header of the sealed record sealed. It checks
// the version byte and that sealed is long enough to hold a header and a tag;
// it does not authenticate anything. Any other input yields [ErrMalformed].
func ParseRecordHeader(sealed []byte) (RecordHeader, error) {
	if len(sealed) < RecordOverhead || sealed[0] != versionRecord {
		return RecordHeader{}, ErrMalformed
	}
	var h RecordHeader
	h.KeyGen = sealed[1]
	copy(h.Salt[:], sealed[2:RecordHeaderSize])
	return h, nil
}

// RecordKeyGen returns the data-key generation that sealed the record sealed,
// so the caller can fetch (unwrap) that DK before [OpenRecord]. It is
// [ParseRecordHeader] without the salt.
func RecordKeyGen(sealed []byte) (uint8, error) {
	h, err := ParseRecordHeader(sealed)
	return h.KeyGen, err
}

// SealRecord seals plaintext under the data key dk (KeySize bytes) and returns
// the record envelope
//
//	0x01 || keyGen || salt (32 bytes) || AES-256-GCM ciphertext || tag (16 bytes)
//
// The salt is read from rand (crypto/rand.Reader if rand is nil). The message
// key is HKDF-SHA256(ikm=dk, salt, info="domicile/record/v1"), used for this
// one message with an all-zero nonce. The associated data is the 34-byte
// header followed by b.AD(), so the header and the binding are authenticated.
// keyGen is the caller's generation number of dk; it is stored, not
// interpreted. The result is len(plaintext)+RecordOverhead bytes.
func SealRecord(rand io.Reader, dk []byte, keyGen uint8, b Binding, plaintext []byte) ([]byte, error) {
	if uint64(len(plaintext)) > gcmMaxPlaintext {
		return nil, fmt.Errorf("envelope: record of %d bytes exceeds the AES-GCM limit", len(plaintext))
	}
	h := RecordHeader{KeyGen: keyGen}
	if err := readSalt(rand, h.Salt[:]); err != nil {
		return nil, err
	}
	aead, err := deriveAEAD(dk, h.Salt[:], infoRecord)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(plaintext)+RecordOverhead)
	out = h.append(out)
	ad := b.appendAD(append(make([]byte, 0, 128), out...))
	return aead.Seal(out, zeroNonce[:], plaintext, ad), nil
}

// OpenRecord authenticates and decrypts the record envelope sealed with the
// data key dk and the binding b it was sealed with. It returns [ErrMalformed]
// if sealed is not a record envelope, [ErrAuth] if it does not authenticate
// (wrong key, wrong binding, altered bytes), and never returns plaintext with
// an error. sealed is not modified.
func OpenRecord(dk []byte, b Binding, sealed []byte) ([]byte, error) {
	h, err := ParseRecordHeader(sealed)
	if err != nil {
		return nil, err
	}
	aead, err := deriveAEAD(dk, h.Salt[:], infoRecord)
	if err != nil {
		return nil, err
	}
	ad := b.appendAD(append(make([]byte, 0, 128), sealed[:RecordHeaderSize]...))
	pt, err := aead.Open(nil, zeroNonce[:], sealed[RecordHeaderSize:], ad)
	if err != nil {
		return nil, ErrAuth
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
