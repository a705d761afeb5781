package cell_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"domicile"
)

// TestChangeSubjectsIsLogged: a change plan's listing of the cell's
// subjects is for an admin only, and every listing, allowed or refused,
// is an event of the cell's log (list, resource subjects) with the
// actor's role; the list names references and field names only.
func TestChangeSubjectsIsLogged(t *testing.T) {
	ctx := context.Background()
	c, st := newCell(t)
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	for _, id := range []string{"li", "wang"} {
		if _, err := c.CreateSubject(ctx, app, key(id), "CN"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutRecord(ctx, app, key("li"), "profile", "p", []byte(`{"name":"李伟","id_number":"110101199001011234"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		n, err := st.LogSize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := size()
	for _, a := range []domicile.Actor{app, {Role: domicile.RoleAuditor, Jurisdiction: "DE"}, {Role: domicile.RoleOperator, Jurisdiction: "CN", Reason: "support", Reference: "T-1"}} {
		if _, err := c.ChangeSubjects(ctx, a, domicile.SubjectRef{}, 10); domicile.ErrorCode(err) != domicile.EForbidden {
			t.Errorf("ChangeSubjects as %s: %v, want forbidden", a.Role, err)
		}
	}
	admin := domicile.Actor{Role: domicile.RoleAdmin, TokenID: "tok-admin"}
	subs, err := c.ChangeSubjects(ctx, admin, domicile.SubjectRef{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 {
		t.Fatalf("ChangeSubjects(limit 1) = %d subjects", len(subs))
	}
	rest, err := c.ChangeSubjects(ctx, admin, subs[0].Ref, 10)
	if err != nil {
		t.Fatal(err)
	}
	all := append(subs, rest...)
	if len(all) != 2 {
		t.Fatalf("ChangeSubjects paged: %d subjects, want 2", len(all))
	}
	for _, s := range all {
		if s.Ref == key("li").Ref && len(s.Fields["profile"]) != 2 {
			t.Errorf("li's fields: %v, want name and id_number", s.Fields)
		}
	}
	evs, err := st.Events(ctx, before, size())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app list subjects denied", "auditor list subjects denied", "operator list subjects denied", "admin list subjects allowed", "admin list subjects allowed"}
	if len(evs) != len(want) {
		t.Fatalf("%d events of the listings, want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		var e domicile.Event
		if err := json.Unmarshal(ev.Committed, &e); err != nil {
			t.Fatal(err)
		}
		if got := string(e.Role) + " " + string(e.Action) + " " + e.Resource + " " + string(e.Outcome); got != want[i] {
			t.Errorf("event %d = %q, want %q", i, got, want[i])
		}
	}
}

// TestMigrationFields: a cross-border move's gate gets one subject's
// record fields from the cell's access path, as the system, with an
// event in that subject's trail; a subject the cell does not hold is not
// found, and its neighbours' fields never answer for it.
func TestMigrationFields(t *testing.T) {
	ctx := context.Background()
	c, st := newCell(t)
	app := domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service"}
	for _, id := range []string{"li", "wang", "zhao"} {
		if _, err := c.CreateSubject(ctx, app, key(id), "CN"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutRecord(ctx, app, key("li"), "profile", "p", []byte(`{"name":"李伟","id_number":"110101199001011234"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, app, key("li"), "message", "m", []byte(`{"body":"你好"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, app, key("zhao"), "profile", "p", []byte(`{"religion":"x"}`), domicile.AnyVersion); err != nil {
		t.Fatal(err)
	}
	before, err := st.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const plan = "m-0123456789abcdef"
	got, err := c.MigrationFields(ctx, plan, key("li").Ref)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"profile": {"id_number", "name"}, "message": {"body"}}
	for k := range got {
		slices.Sort(got[k])
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MigrationFields(li) = %v, want %v", got, want)
	}
	if got, err := c.MigrationFields(ctx, plan, key("wang").Ref); err != nil || len(got) != 0 {
		t.Errorf("MigrationFields(wang, no records) = %v, %v; want none", got, err)
	}
	if got, err := c.MigrationFields(ctx, plan, key("nobody").Ref); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("MigrationFields(a subject the cell does not hold) = %v, %v; want ErrNotFound", got, err)
	}
	evs, err := st.Events(ctx, before, before+2)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events of the two readings, want 2", len(evs))
	}
	for i, ref := range []domicile.SubjectRef{key("li").Ref, key("wang").Ref} {
		var e domicile.Event
		if err := json.Unmarshal(evs[i].Committed, &e); err != nil {
			t.Fatal(err)
		}
		if got := string(e.Role) + " " + string(e.Action) + " " + e.Resource + " " + string(e.Outcome); got != "system list fields allowed" || evs[i].Ref != ref || !strings.Contains(e.Detail, plan) {
			t.Errorf("event %d = %q (subject %s, detail %q), want the system's listing of that subject's fields for %s", i, got, evs[i].Ref, e.Detail, plan)
		}
	}
}
