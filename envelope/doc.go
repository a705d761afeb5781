// Package envelope implements domicile's encryption formats: sealed records,
// sealed objects (a chunked STREAM construction), the container of a wrapped
// key, and key fingerprints. It is pure: no I/O beyond the readers and
// writers it is given, no clock, no global state, and it imports only the
// standard library, so an auditor can check a ciphertext without the server.
//
// Where keys come from, who holds the key-encryption keys and how erasure
// destroys them is the business of the keyring and kms packages; this package
// takes a 32-byte data key (DK) and a [Binding] and does the rest.
//
// Functions of this package are safe for concurrent use; the readers and
// writers they return are not.
//
// # Records
//
// A record (a JSON document) is sealed in one piece by [SealRecord]:
//
//	offset  size  field
//	0       1     version, 0x01
//	1       1     key generation (uint8, chosen by the caller)
//	2       32    salt, random per record
//	34      n     AES-256-GCM ciphertext of the n-byte plaintext
//	34+n    16    GCM tag
//
// The record key is HKDF-SHA256(ikm=DK, salt=salt, info="domicile/record/v1")
// (RFC 5869), 32 bytes. It seals exactly one message, so the GCM nonce is
// fixed at twelve zero bytes. The GCM additional data is the 34-byte header
// followed by [Binding.AD]: every header byte and every binding field is
// authenticated.
//
// # Objects
//
// An object (a file of any size) is sealed by [NewWriter] as a header and a
// sequence of chunks:
//
//	header: 0x02 | key generation (1) | salt (32) | chunk size, uint32 big-endian (4) = 0x00010000
//	chunk i: AES-256-GCM(stream key, nonce_i, plaintext_i, header || Binding.AD()) — len(plaintext_i) + 16 bytes
//	nonce_i: i as an 11-byte big-endian integer | last flag (0x01 on the final chunk, else 0x00)
//
// The stream key is HKDF-SHA256(ikm=DK, salt=salt, info="domicile/object/v1").
// Every chunk holds [ChunkSize] (64 KiB) of plaintext except the final one,
// which holds 1 to 64 KiB; an empty object is a single empty final chunk.
// Only a chunk size of 64 KiB is accepted, so [SealedSize] and
// [PlaintextSize] are functions of the size alone, and a range of plaintext
// maps to known chunks ([NewRangeReader]).
//
// This is the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár
// ("Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance",
// CRYPTO 2015), as used by age's payload format. Because each nonce carries
// the chunk's position and whether it is the last, a reader that checks every
// chunk under the nonce for the position it read it from detects reordered,
// dropped, duplicated and truncated chunks and trailing data; the per-object
// salt makes chunks of other objects fail; the binding in the additional data
// makes chunks of other resources fail.
//
// # Wrapped keys
//
// [Wrapped] is the container of a key encrypted by a key-encryption key:
//
//	0x03 | len(KEKID) (1) | KEKID | KEK version, uint32 big-endian (4) | len(ciphertext), uint16 big-endian (2) | ciphertext
//
// The ciphertext is whatever the KEK implementation produced; this package
// neither makes nor opens it. Only canonical encodings parse.
//
// # Binding
//
// [Binding.AD] encodes (cell, subject, kind, id, version) as a domain tag and
// four length-prefixed strings and a 64-bit version, so no two bindings share
// an encoding. The binding is not stored in the envelope: the caller knows
// where it read a ciphertext from and supplies the binding for that place.
//
// # Security notes
//
//   - Per-message keys mean nothing is counted: no nonce counter to persist,
//     so no nonce reuse after a crash, a restore from backup or two writers
//     racing. Salts are 256-bit random values: the chance that any two of 2^64
//     messages under one DK share a salt (and so a key and a nonce) is
//     about 2^-129.
//   - Open functions never return plaintext with an error. A sequential object
//     reader returns each chunk only after it authenticates, but a stream is
//     known complete only when Read returns io.EOF: callers discard what they
//     read on any error.
//   - A range read authenticates only the chunks it reads. It checks the final
//     flag when the range reaches the end of the object.
//   - Error values never echo key material or plaintext. ErrAuth does not say
//     which of key, binding or bytes was wrong; nothing here can tell.
//   - crypto/cipher.NewGCM refuses to run when Go is started with
//     GODEBUG=fips140=only, because that mode allows only nonces the module
//     draws itself (NewGCMWithRandomNonce); these formats do not support that
//     mode.
//
// # Compatibility
//
// The version bytes 0x01, 0x02 and 0x03 name these exact layouts. They will
// never change meaning: a new layout gets a new version byte, and readers of
// this package keep opening the old ones. testdata/vectors.json holds fixed
// test vectors of each.
package envelope
