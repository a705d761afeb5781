package cell_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/kms/filekms"
	"domicile/sqlite"
)

// twoCells returns cn-gz1 and a cn-gz2 of the migration example.
func twoCells(t *testing.T) (*cell.Cell, *cell.Cell) {
	t.Helper()
	b, err := os.ReadFile("../examples/migrate/after.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dep, err := deploy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	open := func(id string) *cell.Cell {
		dir := filepath.Join(t.TempDir(), id)
		st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
		if err != nil {
			t.Fatal(err)
		}
		ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody"))
		if err != nil {
			t.Fatal(err)
		}
		kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", "kek.json"), ID: id + "/kek"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close(); ks.Close() })
		return cell.New(cell.Config{Cell: *dep.Cell(id), Deployment: dep, Store: st, KEK: kek, KeyStore: ks})
	}
	return open("cn-gz1"), open("cn-gz2")
}

// TestMigrateOutIn moves a subject's sealed data between two cells: the
// digests agree, the data reads back the same in the target, a parcel
// sealed to another cell's key or altered on the way is refused, and the
// source's shredding leaves it no key.
func TestMigrateOutIn(t *testing.T) {
	ctx := context.Background()
	src, dst := twoCells(t)
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	k := key("li")
	if _, err := src.CreateSubject(ctx, app, k, "CN"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m1", "m2"} {
		if _, err := src.PutRecord(ctx, app, k, "message", id, []byte(`{"body":"你好 `+id+`"}`), domicile.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	src.PutRecord(ctx, app, k, "message", "m1", []byte(`{"body":"v2"}`), domicile.AnyVersion)
	photo := bytes.Repeat([]byte("photo"), 30000)
	if _, err := src.PutObject(ctx, app, k, "p.jpg", "image/jpeg", bytes.NewReader(photo), 1<<20, domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	pub, err := dst.MigrationKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := src.MigrateOut(ctx, "m-0000000000000001", k.Ref, "cn-gz2", pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 2 || len(p.Objects) != 1 || len(p.Keys) != 1 {
		t.Fatalf("parcel: %d records, %d objects, %d keys", len(p.Records), len(p.Objects), len(p.Keys))
	}
	if bytes.Contains(p.Records[0].Body, []byte("v2")) || bytes.Contains(p.Objects[0].Sealed, []byte("photophoto")) {
		t.Fatal("the parcel holds plaintext")
	}

	// Altered on the way: refused, nothing stored.
	bad := *p
	bad.Records = append([]domicile.StoredRecord(nil), p.Records...)
	bad.Records[0].Body = append([]byte(nil), p.Records[0].Body...)
	bad.Records[0].Body[40] ^= 1
	if _, _, err := dst.MigrateIn(ctx, &bad, ""); err == nil {
		t.Fatal("an altered parcel was brought in")
	}
	// Sealed to another cell's key (the source's own): refused.
	other, _ := src.MigrationKey(ctx)
	p2, err := src.MigrateOut(ctx, "m-0000000000000001", k.Ref, "cn-gz2", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dst.MigrateIn(ctx, p2, ""); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("a parcel sealed to another key: %v", err)
	}

	d, idx, err := dst.MigrateIn(ctx, p, "notice=n-1")
	if err != nil {
		t.Fatal(err)
	}
	if d != p.Digest || idx < 0 {
		t.Fatalf("MigrateIn = %s %d, want the source's digest %s", d, idx, p.Digest)
	}
	// Again: not brought in twice.
	if d2, idx2, err := dst.MigrateIn(ctx, p, ""); err != nil || d2 != d || idx2 != -1 {
		t.Fatalf("second MigrateIn = %s %d %v", d2, idx2, err)
	}
	rec, err := dst.GetRecord(ctx, app, k, "message", "m1")
	if err != nil || string(rec.Data) != `{"body":"v2"}` || rec.Version != 2 {
		t.Fatalf("target reads %+v %v", rec, err)
	}
	_, _, _, or, err := dst.GetObject(ctx, app, k, "p.jpg", func(o *domicile.Object) (int64, int64, error) { return 0, o.Size, nil })
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(or)
	or.Close()
	if !bytes.Equal(got.Bytes(), photo) {
		t.Fatal("the object reads back different")
	}

	// A changed source is a stale copy.
	src.PutRecord(ctx, app, k, "message", "m3", []byte(`{"body":"late"}`), domicile.AnyVersion)
	p3, _ := src.MigrateOut(ctx, "m-0000000000000001", k.Ref, "cn-gz2", pub)
	if _, _, err := dst.MigrateIn(ctx, p3, ""); !errors.Is(err, cell.ErrStaleCopy) {
		t.Fatalf("MigrateIn of a changed subject = %v, want ErrStaleCopy", err)
	}

	// After the switch the source refuses the subject, then shreds it.
	src.MarkMoved(k.Ref, "cn-gz2")
	var moved *cell.MovedError
	if _, err := src.GetRecord(ctx, app, k, "message", "m1"); !errors.As(err, &moved) || moved.To != "cn-gz2" {
		t.Fatalf("read of a moved subject = %v", err)
	}
	if err := src.Shred(ctx, "m-0000000000000001", k.Ref); err != nil {
		t.Fatal(err)
	}
	if has, err := src.HasKeys(ctx, k.Ref); err != nil || has {
		t.Fatalf("the source still holds keys: %v %v", has, err)
	}
	if has, _ := dst.HasKeys(ctx, k.Ref); !has {
		t.Fatal("the target holds no key")
	}
}

// TestHoldWaitsForWrites: a held subject's writes wait, then go to the
// new cell (MovedError) or on here.
func TestHoldWaitsForWrites(t *testing.T) {
	ctx := context.Background()
	src, _ := twoCells(t)
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	k := key("wang")
	if _, err := src.CreateSubject(ctx, app, k, "CN"); err != nil {
		t.Fatal(err)
	}
	for _, movedTo := range []string{"", "cn-gz2"} {
		release, err := src.Hold(ctx, k.Ref, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := src.PutRecord(ctx, app, k, "message", "m", []byte(`{"body":"x"}`), domicile.AnyVersion)
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("a write to a held subject went through: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		release(movedTo)
		err = <-done
		var moved *cell.MovedError
		switch {
		case movedTo == "" && err != nil:
			t.Fatalf("released without a move, the write failed: %v", err)
		case movedTo != "" && !errors.As(err, &moved):
			t.Fatalf("released to %s, the write = %v, want a MovedError", movedTo, err)
		}
	}
}
