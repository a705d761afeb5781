package residency_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/kms/filekms"
	"domicile/residency"
	"domicile/sqlite"
)

// openCells opens every cell of dep under dir, with a control store
// they share, and the directory key.
func openCells(t *testing.T, dir string, dep *domicile.Deployment) (map[string]*cell.Cell, *sqlite.Control) {
	t.Helper()
	ctx := context.Background()
	cells := map[string]*cell.Cell{}
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
		cells[cc.ID] = cell.New(cell.Config{Cell: cc, Deployment: dep, Store: st, KEK: kek, KeyStore: ks})
	}
	ctl, err := sqlite.OpenControl(ctx, filepath.Join(dir, "control"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	return cells, ctl
}

const testDirKey = "a 32-byte directory key for test"

func newRouter(t *testing.T) *residency.Router {
	t.Helper()
	dep := deploy.Default()
	cells, ctl := openCells(t, t.TempDir(), dep)
	var all []*cell.Cell
	for _, cc := range dep.Cells {
		all = append(all, cells[cc.ID])
	}
	return residency.New(dep, all, ctl, []byte(testDirKey))
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

// TestCellProcesses: routers that each serve one cell (serve --cell) and
// one that serves none (serve --router), over one control store. A cell
// refuses a subject the policy does not place in it, whatever sent the
// registration, and logs the refusal; a subject whose home is another
// cell is misdirected, never served; the router finds every home; an
// entry of another process's cell is never cached stale.
func TestCellProcesses(t *testing.T) {
	ctx := context.Background()
	dep := deploy.Default()
	cells, ctl := openCells(t, t.TempDir(), dep)
	proc := map[string]*residency.Router{}
	for id, c := range cells {
		proc[id] = residency.New(dep, []*cell.Cell{c}, ctl, []byte(testDirKey))
	}
	router := residency.New(dep, nil, ctl, []byte(testDirKey))

	usLog := cells["us-east1"].PublicLog()
	before, err := usLog.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proc["us-east1"].Register(ctx, app, "li.wei", "CN", ""); domicile.ErrorCode(err) != domicile.EResidency {
		t.Fatalf("the US cell registering a CN subject = %v, want residency-forbidden", err)
	}
	after, err := usLog.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := usLog.Leaves(ctx, before, after)
	if err != nil || after != before+1 || !strings.Contains(string(leaves[0]), " o=denied ") {
		t.Fatalf("the US cell's refusal is not in its log: size %d before, %d after, leaves %q, %v", before, after, leaves, err)
	}
	if _, err := router.Home(ctx, "li.wei"); domicile.ErrorCode(err) != domicile.ENotFound {
		t.Fatalf("refused subject in the directory: %v", err)
	}
	if _, err := proc["cn-gz1"].Register(ctx, app, "li.wei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	// The CN cell registered it; the US process cannot register it again,
	// nor reach it.
	if _, err := proc["us-east1"].Register(ctx, app, "li.wei", "US", ""); domicile.ErrorCode(err) != domicile.EConflict {
		t.Fatalf("second registration of the id elsewhere = %v, want conflict", err)
	}
	for _, id := range []string{"us-east1", "eu-fra1"} {
		if _, _, err := proc[id].Locate(ctx, "li.wei"); domicile.ErrorCode(err) != domicile.EMisdirected {
			t.Errorf("%s locating the CN subject = %v, want misdirected", id, err)
		}
		if _, err := proc[id].Erase(ctx, app, "li.wei"); domicile.ErrorCode(err) != domicile.EMisdirected {
			t.Errorf("%s erasing the CN subject = %v, want misdirected", id, err)
		}
	}
	if h, err := router.Home(ctx, "li.wei"); err != nil || h.Cell != "cn-gz1" {
		t.Fatalf("router Home = %+v, %v, want cn-gz1", h, err)
	}
	if ref, err := router.Ref(ctx, "li.wei"); err != nil || ref.IsZero() {
		t.Fatalf("router Ref = %v, %v", ref, err)
	}
	// An EU subject asked into the EU cell through the US process: the
	// policy permits it only in eu-fra1, so the US cell refuses it.
	if _, err := proc["us-east1"].Register(ctx, app, "anna", "DE", "eu-fra1"); domicile.ErrorCode(err) != domicile.EResidency {
		t.Fatalf("the US cell registering a DE subject = %v, want residency-forbidden", err)
	}
	// Erased in its cell, registered again elsewhere: nobody answers from
	// a stale entry.
	if _, err := proc["cn-gz1"].Erase(ctx, app, "li.wei"); err != nil {
		t.Fatal(err)
	}
	if _, err := proc["us-east1"].Register(ctx, app, "li.wei", "US", ""); err != nil {
		t.Fatal(err)
	}
	if h, err := router.Home(ctx, "li.wei"); err != nil || h.Cell != "us-east1" {
		t.Fatalf("router Home after re-registration = %+v, %v, want us-east1", h, err)
	}
	if _, _, err := proc["cn-gz1"].Locate(ctx, "li.wei"); domicile.ErrorCode(err) != domicile.EMisdirected {
		t.Fatalf("the CN cell locating the re-registered subject = %v, want misdirected", err)
	}
	if c, _, err := proc["us-east1"].Locate(ctx, "li.wei"); err != nil || c.ID() != "us-east1" {
		t.Fatalf("the US cell locating its subject = %v, %v", c, err)
	}
	if err := proc["cn-gz1"].Serves("us-east1"); domicile.ErrorCode(err) != domicile.EMisdirected {
		t.Errorf("Serves(another process's cell) = %v, want misdirected", err)
	}
	if err := proc["cn-gz1"].Serves("cn-gz1"); err != nil {
		t.Errorf("Serves(own cell) = %v", err)
	}
}
