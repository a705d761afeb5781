package residency_test

import (
	"context"
	"path/filepath"
	"testing"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/kms/filekms"
	"domicile/residency"
	"domicile/sqlite"
)

func newRouter(t *testing.T) *residency.Router {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dep := deploy.Default()
	var cells []*cell.Cell
	for _, cc := range dep.Cells {
		st, err := sqlite.Open(ctx, filepath.Join(dir, cc.ID))
		if err != nil {
			t.Fatal(err)
		}
		ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody", cc.ID))
		if err != nil {
			t.Fatal(err)
		}
		kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", cc.ID, "kek.json"), ID: cc.ID + "/kek"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close(); ks.Close() })
		cells = append(cells, cell.New(cell.Config{Cell: cc, Deployment: dep, Store: st, KEK: kek, KeyStore: ks}))
	}
	ctl, err := sqlite.OpenControl(ctx, filepath.Join(dir, "control"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	return residency.New(dep, cells, ctl, []byte("a 32-byte directory key for test"))
}

var app = domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}

func TestRegisterPlaces(t *testing.T) {
	ctx := context.Background()
	r := newRouter(t)
	tests := []struct {
		id, jur, asked, want, code string
	}{
		{"cn1", "CN", "", "cn-gz1", ""},
		{"de1", "DE", "", "eu-fra1", ""},
		{"hk1", "HK", "", "us-east1", ""},
		{"cn2", "CN", "cn-gz1", "cn-gz1", ""},
		{"cn3", "CN", "eu-fra1", "", domicile.EResidency},
		{"cn4", "CN", "mars-1", "", domicile.EInvalid},
		{"cn1", "CN", "", "", domicile.EConflict},
	}
	for _, tt := range tests {
		s, err := r.Register(ctx, app, tt.id, domicile.Jurisdiction(tt.jur), tt.asked)
		if tt.code != "" {
			if domicile.ErrorCode(err) != tt.code {
				t.Errorf("Register(%s, %s, %q) = %v, want %s", tt.id, tt.jur, tt.asked, err, tt.code)
			}
			continue
		}
		if err != nil || s.Cell != tt.want {
			t.Errorf("Register(%s, %s, %q) = %+v, %v, want cell %s", tt.id, tt.jur, tt.asked, s, err, tt.want)
		}
	}
	// A refused registration leaves nothing in the directory.
	if _, _, err := r.Locate(ctx, "cn3"); domicile.ErrorCode(err) != domicile.ENotFound {
		t.Errorf("refused subject located: %v", err)
	}
}

// TestRegistrationsHaveFreshRefs: each registration gets a random
// reference, unrelated to the id and to earlier registrations of it; the
// person key is the id's stable keyed hash.
func TestRegistrationsHaveFreshRefs(t *testing.T) {
	ctx := context.Background()
	r := newRouter(t)
	if _, err := r.Register(ctx, app, "alice", "CN", ""); err != nil {
		t.Fatal(err)
	}
	a, err := r.Ref(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a == r.PersonKey("alice") || a.IsZero() {
		t.Fatalf("reference %s is the id's keyed hash or zero", a)
	}
	if _, err := r.Erase(ctx, app, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Ref(ctx, "alice"); domicile.ErrorCode(err) != domicile.EInvalid {
		t.Fatalf("Ref of an erased id = %v, want a field error", err)
	}
	if _, err := r.Register(ctx, app, "alice", "CN", ""); err != nil {
		t.Fatal(err)
	}
	b, err := r.Ref(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("a re-registration got its former reference")
	}
	if p1, p2 := r.PersonKey("alice"), r.PersonKey("alice"); p1 != p2 || p1 == r.PersonKey("bob") {
		t.Fatal("person keys are not a function of the id")
	}
}

// TestLocateForHidesRegistration: a refused actor gets the same answer
// for a registered and an unknown id.
func TestLocateForHidesRegistration(t *testing.T) {
	ctx := context.Background()
	r := newRouter(t)
	if _, err := r.Register(ctx, app, "known", "CN", ""); err != nil {
		t.Fatal(err)
	}
	other := domicile.Actor{Role: domicile.RoleSubject, Subject: r.PersonKey("someone").String()}
	for _, id := range []string{"known", "unknown"} {
		c, _, err := r.LocateFor(ctx, other, id, domicile.ActRead)
		if id == "known" {
			// Located: the cell refuses and logs.
			if err != nil || c == nil {
				t.Fatalf("LocateFor(known) = %v", err)
			}
			continue
		}
		if domicile.ErrorCode(err) != domicile.EForbidden {
			t.Fatalf("LocateFor(unknown) for another subject's token = %v, want forbidden", err)
		}
	}
	if _, _, err := r.LocateFor(ctx, app, "unknown", domicile.ActRead); domicile.ErrorCode(err) != domicile.ENotFound {
		t.Fatalf("LocateFor(unknown) for the app = %v, want not-found", err)
	}
	// Erasure drops the subject from the directory and its cache.
	if _, err := r.Erase(ctx, app, "known"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Locate(ctx, "known"); domicile.ErrorCode(err) != domicile.ENotFound {
		t.Fatalf("erased subject still located: %v", err)
	}
}
