package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/client"
	"domicile/deploy"
	"domicile/httpapi"
	"domicile/kms/filekms"
	"domicile/residency"
	"domicile/sqlite"
)

// TestCellMigrationRoutes moves a subject's sealed data from a cell of
// one process (cn-gz1, here) to a cell served by another (cn-gz2, behind
// an HTTP server) through the cell-to-cell routes: the target hears only
// the cell token of the cell a running plan moves the subject from, the
// parcel on the wire holds no plaintext, the data reads back the same in
// the target, and a stale copy comes back as cell.ErrStaleCopy.
func TestCellMigrationRoutes(t *testing.T) {
	ctx := context.Background()
	b, err := os.ReadFile("../examples/migrate/after.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dep, err := deploy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
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
	src, dst := open("cn-gz1"), open("cn-gz2")
	ctl, err := sqlite.OpenControl(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	srv := httpapi.New(httpapi.Config{Router: residency.New(dep, []*cell.Cell{dst}, ctl, make([]byte, 32)), Control: ctl,
		Logger: slog.New(slog.DiscardHandler), MigrationTargets: ctl})
	// The wire: every request body the target process receives.
	var mu sync.Mutex
	var wire [][]byte
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		wire = append(wire, body)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)

	token := func(role domicile.Role, subject string) string {
		secret, _, err := httpapi.IssueToken(ctx, ctl, domicile.Token{Role: role, Jurisdiction: "CN", Subject: subject, Created: time.Now().UTC()}, "test")
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	gz1, fra, admin := token(domicile.RoleCell, "cn-gz1"), token(domicile.RoleCell, "eu-fra1"), token(domicile.RoleAdmin, "")
	target := func(tok string) *httpapi.CellTarget {
		return &httpapi.CellTarget{Cell: "cn-gz2", Client: client.Client{BaseURL: hs.URL, Token: tok}}
	}

	// A subject with a record and an object, both holding the marker.
	const marker = "MARKER-明天见-plaintext"
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	var k, other cell.SubjectKey
	k.ID, other.ID = "li", "wang"
	copy(k.Ref[:], "li")
	copy(other.Ref[:], "wang")
	for _, s := range []cell.SubjectKey{k, other} {
		if _, err := src.CreateSubject(ctx, app, s, "CN"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.PutRecord(ctx, app, k, "message", "m1", []byte(`{"body":"`+marker+`"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	photo := bytes.Repeat([]byte(marker), 2000)
	if _, err := src.PutObject(ctx, app, k, "p.jpg", "image/jpeg", bytes.NewReader(photo), 1<<20, domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}

	// The plan moves li (not wang) from cn-gz1 to cn-gz2; planned, not
	// yet running.
	const plan = "m-00000000000000a1"
	now := time.Now().UTC()
	if err := ctl.PutMigration(ctx, domicile.Migration{ID: plan, Plan: []byte(`{}`), State: "planned", Created: now}, []domicile.MigrationSubject{
		{Plan: plan, Key: k.Ref, Ref: k.Ref, From: "cn-gz1", To: "cn-gz2", Jurisdiction: "CN", State: domicile.MovePlanned, OutIndex: -1, InIndex: -1, Updated: now},
	}); err != nil {
		t.Fatal(err)
	}
	pub, err := target(gz1).MigrationKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := dst.MigrationKey(ctx); !bytes.Equal(pub, want) {
		t.Fatal("the migration key over the wire is not the target's")
	}
	parcel, err := src.MigrateOut(ctx, plan, k.Ref, "cn-gz2", pub)
	if err != nil {
		t.Fatal(err)
	}
	otherParcel, err := src.MigrateOut(ctx, plan, other.Ref, "cn-gz2", pub)
	if err != nil {
		t.Fatal(err)
	}

	status := func(err error) int {
		var pe *client.ProblemError
		if errors.As(err, &pe) {
			return pe.Status
		}
		return 0
	}
	if _, _, err := target(gz1).MigrateIn(ctx, parcel, ""); status(err) != 403 {
		t.Fatalf("a parcel of a plan not running: %v, want 403", err)
	}
	m, _ := ctl.Migration(ctx, plan)
	m.State = "running"
	if err := ctl.UpdateMigration(ctx, *m); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want int
	}{
		{"no token", func() error { _, err := target("").MigrationKey(ctx); return err }, 401},
		{"admin: key", func() error { _, err := target(admin).MigrationKey(ctx); return err }, 403},
		{"admin: in", func() error { _, _, err := target(admin).MigrateIn(ctx, parcel, ""); return err }, 403},
		{"admin: discard", func() error { return target(admin).Discard(ctx, plan, k.Ref) }, 403},
		{"another cell: in", func() error { _, _, err := target(fra).MigrateIn(ctx, parcel, ""); return err }, 403},
		{"another cell: discard", func() error { return target(fra).Discard(ctx, plan, k.Ref) }, 403},
		{"a subject the plan does not move", func() error { _, _, err := target(gz1).MigrateIn(ctx, otherParcel, ""); return err }, 403},
		{"a cell not served there", func() error {
			_, err := (&httpapi.CellTarget{Cell: "cn-gz1", Client: client.Client{BaseURL: hs.URL, Token: gz1}}).MigrationKey(ctx)
			return err
		}, 404},
	} {
		if got := status(tc.call()); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if ok, _ := dst.HasKeys(ctx, other.Ref); ok {
		t.Fatal("the target took a subject the plan does not move")
	}

	d, idx, err := target(gz1).MigrateIn(ctx, parcel, "notice=n-1")
	if err != nil {
		t.Fatal(err)
	}
	if d != parcel.Digest || idx < 0 {
		t.Fatalf("MigrateIn = %s %d, want digest %s", d, idx, parcel.Digest)
	}
	if d2, idx2, err := target(gz1).MigrateIn(ctx, parcel, ""); err != nil || d2 != d || idx2 != -1 {
		t.Fatalf("the same parcel again = %s %d %v, want the digest and -1", d2, idx2, err)
	}
	rec, err := dst.GetRecord(ctx, app, k, "message", "m1")
	if err != nil || !bytes.Contains(rec.Data, []byte(marker)) {
		t.Fatalf("the target reads %+v %v", rec, err)
	}

	// Nothing on the wire holds the plaintext: not the bodies as sent,
	// nor the sealed bytes they carry.
	mu.Lock()
	sent := append([][]byte(nil), wire...)
	mu.Unlock()
	parcels := 0
	for _, body := range sent {
		if bytes.Contains(body, []byte(marker)) || bytes.Contains(body, []byte("MARKER")) {
			t.Fatal("a request body on the wire holds the plaintext")
		}
		var in httpapi.CellParcelIn
		if json.Unmarshal(body, &in) != nil || in.Parcel == nil {
			continue
		}
		parcels++
		for _, r := range in.Parcel.Records {
			if bytes.Contains(r.Body, []byte("MARKER")) {
				t.Fatal("a record body on the wire is plaintext")
			}
		}
		for _, o := range in.Parcel.Objects {
			if bytes.Contains(o.Sealed, []byte("MARKER")) {
				t.Fatal("an object on the wire is plaintext")
			}
		}
		for _, pk := range in.Parcel.Keys {
			if len(pk.Sealed) <= 32 {
				t.Fatal("a data key on the wire is not HPKE-sealed")
			}
		}
	}
	if parcels == 0 {
		t.Fatal("no parcel seen on the wire")
	}

	// Changed at the source since: the target's copy is stale, and it is
	// said so; discarded, the new parcel comes in.
	if _, err := src.PutRecord(ctx, app, k, "message", "m2", []byte(`{"body":"later"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	p2, err := src.MigrateOut(ctx, plan, k.Ref, "cn-gz2", pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := target(gz1).MigrateIn(ctx, p2, ""); !errors.Is(err, cell.ErrStaleCopy) {
		t.Fatalf("a stale copy: %v, want cell.ErrStaleCopy", err)
	}
	if err := target(gz1).Discard(ctx, plan, k.Ref); err != nil {
		t.Fatal(err)
	}
	if d, _, err := target(gz1).MigrateIn(ctx, p2, ""); err != nil || d != p2.Digest {
		t.Fatalf("after the discard: %s %v, want %s", d, err, p2.Digest)
	}

	// The sizes a router plans from: the admin's, of a cell served here.
	sizes := func(tok, cellID string, refs []domicile.SubjectRef) (*httpapi.CellSizes, int) {
		var out httpapi.CellSizes
		c := client.Client{BaseURL: hs.URL, Token: tok}
		_, err := c.Call(ctx, http.MethodPost, "/v1/cells/"+cellID+"/migration/sizes", httpapi.CellSizesRequest{Refs: refs}, &out)
		var pe *client.ProblemError
		if errors.As(err, &pe) {
			return nil, pe.Status
		}
		if err != nil {
			t.Fatal(err)
		}
		return &out, http.StatusOK
	}
	got, code := sizes(admin, "cn-gz2", []domicile.SubjectRef{k.Ref, other.Ref})
	if code != http.StatusOK || len(got.Subjects) != 2 || !got.Subjects[0].Found || got.Subjects[0].Jurisdiction != "CN" ||
		got.Subjects[0].Records != 2 || got.Subjects[0].Objects != 1 || got.Subjects[0].Bytes == 0 || got.Subjects[1].Found {
		t.Errorf("sizes = %+v (%d), want the moved subject's 2 records and 1 object, and the other not found", got, code)
	}
	for _, c := range []struct {
		tok, cell string
		refs      int
		want      int
	}{
		{"", "cn-gz2", 1, http.StatusUnauthorized},
		{gz1, "cn-gz2", 1, http.StatusForbidden},
		{admin, "cn-gz1", 1, http.StatusMisdirectedRequest}, // a cell of another process
		{admin, "xx-none", 1, http.StatusNotFound},
		{admin, "cn-gz2", 1001, http.StatusBadRequest},
	} {
		if _, code := sizes(c.tok, c.cell, make([]domicile.SubjectRef, c.refs)); code != c.want {
			t.Errorf("sizes of %s with %d refs: %d, want %d", c.cell, c.refs, code, c.want)
		}
	}
}
