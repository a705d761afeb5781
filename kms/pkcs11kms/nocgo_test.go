//go:build !cgo

package pkcs11kms

import (
	"context"
	"errors"
	"testing"
)

func TestOpenWithoutCgo(t *testing.T) {
	if _, err := Open(context.Background(), Config{Module: "x", TokenLabel: "t", KeyLabelPrefix: "p"}); !errors.Is(err, ErrNoCgo) {
		t.Errorf("Open() without cgo = %v, want ErrNoCgo", err)
	}
}
