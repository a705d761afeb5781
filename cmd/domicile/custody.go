package main

import (
	"context"
	"fmt"

	"domicile"
	"domicile/kms"
)

// openExternalKEK opens a KEK held outside the data directory: in an HSM
// through PKCS#11, or by an external custodian (domicile keyd).
func openExternalKEK(ctx context.Context, dir string, c domicile.CellConfig) (kms.KEK, error) {
	return nil, fmt.Errorf("custody %q is not available in this build", c.Custody.Kind)
}
