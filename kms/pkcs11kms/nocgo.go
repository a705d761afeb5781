//go:build !cgo

package pkcs11kms

import (
	"context"
	"errors"

	"domicile/kms"
)

// ErrNoCgo is returned by Open in a binary built without cgo: PKCS#11
// modules are C libraries and can only be loaded through cgo.
var ErrNoCgo = errors.New("pkcs11kms: this binary was built without cgo (CGO_ENABLED=0); rebuild with cgo to use a PKCS#11 HSM")

// KEK is a key-encryption key held in a PKCS#11 token. In a binary built
// without cgo none can be opened.
type KEK struct{}

var _ kms.KEK = (*KEK)(nil)

// Open returns ErrNoCgo: this binary cannot load PKCS#11 modules.
func Open(ctx context.Context, cfg Config) (*KEK, error) { return nil, ErrNoCgo }

// Close implements io.Closer.
func (k *KEK) Close() error { return nil }

// ID implements kms.KEK.
func (k *KEK) ID() string { return "" }

// Wrap implements kms.KEK; it returns ErrNoCgo.
func (k *KEK) Wrap(context.Context, []byte, []byte) (uint32, []byte, error) { return 0, nil, ErrNoCgo }

// Unwrap implements kms.KEK; it returns ErrNoCgo.
func (k *KEK) Unwrap(context.Context, kms.Access, uint32, []byte, []byte) ([]byte, error) {
	return nil, ErrNoCgo
}

// Rotate implements kms.KEK; it returns ErrNoCgo.
func (k *KEK) Rotate(context.Context) (uint32, error) { return 0, ErrNoCgo }

// Versions implements kms.KEK; it returns ErrNoCgo.
func (k *KEK) Versions(context.Context) (uint32, []uint32, error) { return 0, nil, ErrNoCgo }

// Retire implements kms.KEK; it returns ErrNoCgo.
func (k *KEK) Retire(context.Context, uint32) error { return ErrNoCgo }
