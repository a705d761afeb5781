package blobdir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"domicile"
)

func TestWriteReadGC(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	put := func(s string) string {
		w, err := d.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, s)
		k, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keep, drop := put("keep"), put("drop")
	// A write that never committed leaves a temporary file.
	w, _ := d.Create(ctx)
	io.WriteString(w, "half")
	if err := d.GC(map[string]bool{keep: true}); err != nil {
		t.Fatal(err)
	}
	r, err := d.Open(ctx, keep)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, r.Size())
	r.ReadAt(b, 0)
	r.Close()
	if string(b) != "keep" {
		t.Fatalf("kept blob reads %q", b)
	}
	if _, err := d.Open(ctx, drop); !errors.Is(err, domicile.ErrNotFound) {
		t.Fatalf("unreferenced blob survived GC: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Fatalf("temporary blobs survived GC: %d", len(ents))
	}
	if _, err := d.Open(ctx, "../../etc/passwd"); err == nil {
		t.Fatal("a malformed key opened a file")
	}
}
