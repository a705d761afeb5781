package filekms_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"domicile/kms"
	"domicile/kms/filekms"
)

func Example() {
	dir, _ := os.MkdirTemp("", "filekms-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	k, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "kek.json"), ID: "cn-gz1/kek"})
	if err != nil {
		panic(err)
	}
	aad := []byte("cell=cn-gz1;subject=psn-1")
	version, wrapped, _ := k.Wrap(ctx, []byte("a data key"), aad)

	access := kms.Access{Cell: "cn-gz1", Role: kms.RoleApp, Jurisdiction: "CN", Reason: "service:messaging"}
	key, _ := k.Unwrap(ctx, access, version, wrapped, aad)
	fmt.Println(k.ID(), version, string(key))
	// Output: cn-gz1/kek 1 a data key
}
