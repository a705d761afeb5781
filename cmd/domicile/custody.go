package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"domicile"
	"domicile/kms"
	"domicile/kms/keyd"
	"domicile/kms/pkcs11kms"
)

// openExternalKEK opens a KEK held outside the data directory: in an HSM
// through PKCS#11, or by an external custodian (domicile keyd). Relative
// file names in the deployment are taken from the data directory.
func openExternalKEK(ctx context.Context, dir string, c domicile.CellConfig) (kms.KEK, error) {
	cu := c.Custody
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	switch cu.Kind {
	case "pkcs11":
		if cu.Module == "" || cu.Token == "" || cu.PINEnv == "" {
			return nil, fmt.Errorf("custody pkcs11 needs module, token and pin_env")
		}
		pin := os.Getenv(cu.PINEnv)
		if pin == "" {
			return nil, fmt.Errorf("custody pkcs11: environment variable %s (pin_env) is empty", cu.PINEnv)
		}
		return pkcs11kms.Open(ctx, pkcs11kms.Config{Module: cu.Module, TokenLabel: cu.Token, PIN: pin, KeyLabelPrefix: "domicile-" + c.ID, ID: c.ID + "/kek"})
	case "keyd":
		if cu.URL == "" || cu.CAFile == "" || cu.CertFile == "" || cu.KeyFile == "" {
			return nil, fmt.Errorf("custody keyd needs url, ca_file, cert_file and key_file")
		}
		ca, err := os.ReadFile(path(cu.CAFile))
		if err != nil {
			return nil, fmt.Errorf("custody keyd ca_file: %w", err)
		}
		cert, err := os.ReadFile(path(cu.CertFile))
		if err != nil {
			return nil, fmt.Errorf("custody keyd cert_file: %w", err)
		}
		key, err := os.ReadFile(path(cu.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("custody keyd key_file: %w", err)
		}
		tlsCfg, err := keyd.ClientTLSConfig(cert, key, ca)
		if err != nil {
			return nil, fmt.Errorf("custody keyd: %w", err)
		}
		return keyd.NewClient(keyd.ClientConfig{URL: cu.URL, TLS: tlsCfg, ID: c.ID + "/kek@keyd"})
	}
	return nil, fmt.Errorf("custody %q is unknown", cu.Kind)
}
