// Package pkcs11kms implements a [kms.KEK] whose versions are AES-256 key
// objects inside an HSM, reached through PKCS#11.
//
// # Key objects
//
// Version N of a KEK is a token secret-key object labelled "<prefix>-v<N>"
// (CKA_LABEL and CKA_ID), generated inside the token with CKM_AES_KEY_GEN and
// the attributes CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE set and CKA_EXTRACTABLE,
// CKA_WRAP, CKA_UNWRAP cleared: the key never leaves the HSM. The current
// version is the highest one present. Open creates version 1 if the token holds
// none. Retire destroys the object; a missing version below the current one is
// reported as retired.
//
// # Wrapping
//
// Wrap encrypts with CKM_AES_GCM inside the token: a random 96-bit IV generated
// host-side (from Config.Rand), the caller's associated data, and a 128-bit
// tag. The ciphertext is IV || encrypted || tag, the same layout as filekms.
// A token that does not offer CKM_AES_GCM is refused at Open. SoftHSM2 (2.x)
// offers CKM_AES_GCM; CKM_AES_KEY_WRAP_PAD (RFC 5649) cannot bind associated
// data, so it is not used as a fallback.
//
// # Concurrency
//
// A KEK is safe for concurrent use: each operation borrows a session from a
// pool (Config.Sessions). Several KEKs may share one module in a process; the
// module is initialised once and finalised when the last KEK is closed.
// Rotate must be run by one process at a time for a given prefix.
//
// This package needs cgo. Built with CGO_ENABLED=0, Open returns an error.
package pkcs11kms

import (
	"io"
	"log/slog"
	"time"
)

// Config configures a PKCS#11 KEK. Zero fields take the defaults noted.
type Config struct {
	// Module is the path of the PKCS#11 library (for example
	// "/usr/lib/softhsm/libsofthsm2.so"). Required.
	Module string
	// TokenLabel selects the token by its label. Required.
	TokenLabel string
	// PIN is the user PIN. It is never logged; read it from the environment
	// or a protected file, not from a command line.
	PIN string
	// KeyLabelPrefix prefixes the label of every version's key object
	// ("<prefix>-v<N>"). Required.
	KeyLabelPrefix string
	// ID is the KEK id reported by ID. Default KeyLabelPrefix.
	ID string
	// Sessions is the size of the session pool. Default 4.
	Sessions int
	// Rand is the source of GCM IVs. Default crypto/rand.Reader.
	Rand io.Reader
	// Timeout bounds how long an operation waits for a free session. Default 5 s.
	Timeout time.Duration
}

// LogValue implements slog.LogValuer: the PIN is never shown.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("module", c.Module),
		slog.String("token", c.TokenLabel),
		slog.String("key_label_prefix", c.KeyLabelPrefix),
		slog.String("pin", "REDACTED"),
	)
}
