package keyd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"domicile/kms"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func MustParsePolicy(tb testing.TB, s string) *Policy {
	tb.Helper()
	p, err := ParsePolicy([]byte(s))
	if err != nil {
		tb.Fatalf("ParsePolicy = %v\n%s", err, s)
	}
	return p
}

var (
	appAccess = kms.Access{Cell: "cn-gz1", Role: kms.RoleApp, Jurisdiction: "CN", Reason: "service:messaging", Subject: "psn-1"}
	opAccess  = kms.Access{Cell: "cn-gz1", Role: kms.RoleOperator, Jurisdiction: "CN", Reason: kms.ReasonSupport, Reference: "TICKET-1"}
)

type decideCase struct {
	name   string
	access kms.Access
	now    time.Time
	allow  bool
	clause string
}

func runDecide(t *testing.T, policy string, cases []decideCase) {
	t.Helper()
	p := MustParsePolicy(t, policy)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			allow, clause, reason := p.Decide(tc.access, now)
			if allow != tc.allow || clause != tc.clause {
				t.Errorf("Decide(%+v, %v) = %v, %q (%s); want %v, %q", tc.access, now, allow, clause, reason, tc.allow, tc.clause)
			}
			if reason == "" {
				t.Errorf("Decide gave no reason")
			}
		})
	}
}

func with(a kms.Access, f func(*kms.Access)) kms.Access { f(&a); return a }

func TestClauseRole(t *testing.T) {
	runDecide(t, `
clauses:
  - name: apps
    effect: allow
    roles: [app, subject]
`, []decideCase{
		{"app allowed", appAccess, time.Time{}, true, "apps"},
		{"subject allowed", with(opAccess, func(a *kms.Access) { a.Role, a.Reason = kms.RoleSubject, kms.ReasonSubjectRequest }), time.Time{}, true, "apps"},
		{"operator default deny", opAccess, time.Time{}, false, ""},
	})
}

func TestClauseReason(t *testing.T) {
	runDecide(t, `
clauses:
  - name: billing-only
    effect: allow
    reasons: ["service:billing", maintenance]
  - name: any-service
    effect: deny
    reasons: ["service:*"]
`, []decideCase{
		{"exact purpose allowed", with(appAccess, func(a *kms.Access) { a.Reason = "service:billing" }), time.Time{}, true, "billing-only"},
		{"closed-list reason allowed", with(opAccess, func(a *kms.Access) { a.Reason = kms.ReasonMaintenance }), time.Time{}, true, "billing-only"},
		{"other purpose hits wildcard deny", appAccess, time.Time{}, false, "any-service"},
		{"other reason default deny", opAccess, time.Time{}, false, ""},
	})
}

func TestClauseReferenceRequired(t *testing.T) {
	runDecide(t, `
clauses:
  - name: support-with-ticket
    effect: allow
    roles: [operator]
    reference_required: true
`, []decideCase{
		{"with reference allowed", opAccess, time.Time{}, true, "support-with-ticket"},
		{"without reference denied", with(opAccess, func(a *kms.Access) { a.Reference = "" }), time.Time{}, false, ""},
		{"blank reference denied", with(opAccess, func(a *kms.Access) { a.Reference = "   " }), time.Time{}, false, ""},
	})
}

func TestClauseCell(t *testing.T) {
	runDecide(t, `
clauses:
  - name: gz-only
    effect: allow
    cells: [cn-gz1, cn-sh1]
`, []decideCase{
		{"listed cell allowed", appAccess, time.Time{}, true, "gz-only"},
		{"other listed cell allowed", with(appAccess, func(a *kms.Access) { a.Cell = "cn-sh1" }), time.Time{}, true, "gz-only"},
		{"unlisted cell denied", with(appAccess, func(a *kms.Access) { a.Cell = "eu-fra1" }), time.Time{}, false, ""},
	})
}

func TestClauseJurisdiction(t *testing.T) {
	runDecide(t, `
clauses:
  - name: domestic
    effect: allow
    roles: [authority]
    jurisdictions: [CN]
`, []decideCase{
		{"domestic authority allowed", kms.Access{Cell: "cn-gz1", Role: kms.RoleAuthority, Jurisdiction: "CN", Reason: kms.ReasonLawfulRequestDomestic, Reference: "case-1"}, time.Time{}, true, "domestic"},
		{"foreign authority denied", kms.Access{Cell: "cn-gz1", Role: kms.RoleAuthority, Jurisdiction: "US", Reason: kms.ReasonLawfulRequestForeign, Reference: "case-2"}, time.Time{}, false, ""},
		{"HK is not CN", kms.Access{Cell: "cn-gz1", Role: kms.RoleAuthority, Jurisdiction: "HK", Reason: kms.ReasonLawfulRequestForeign}, time.Time{}, false, ""},
		{"no jurisdiction denied", kms.Access{Cell: "cn-gz1", Role: kms.RoleAuthority, Reason: kms.ReasonLawfulRequestDomestic}, time.Time{}, false, ""},
	})
}

func TestClauseAbsoluteWindow(t *testing.T) {
	nb := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
	em := with(opAccess, func(a *kms.Access) { a.Reason = kms.ReasonEmergency })
	runDecide(t, `
clauses:
  - name: incident
    effect: allow
    reasons: [emergency]
    not_before: 2026-03-01T00:00:00Z
    not_after: "2026-03-08T08:00:00+08:00"
`, []decideCase{
		{"before window denied", em, nb.Add(-time.Second), false, ""},
		{"at not_before allowed", em, nb, true, "incident"},
		{"inside allowed", em, nb.Add(72 * time.Hour), true, "incident"},
		{"just before not_after allowed", em, na.Add(-time.Nanosecond), true, "incident"},
		{"at not_after denied", em, na, false, ""},
	})
}

func TestClauseDailyHours(t *testing.T) {
	t.Run("office hours in Shanghai", func(t *testing.T) {
		day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
		runDecide(t, `
clauses:
  - name: office
    effect: allow
    hours: "09:00-18:00"
    timezone: Asia/Shanghai
`, []decideCase{
			{"08:59 CST denied", opAccess, day.Add(59 * time.Minute), false, ""},
			{"09:00 CST allowed", opAccess, day.Add(time.Hour), true, "office"},
			{"17:59 CST allowed", opAccess, day.Add(9*time.Hour + 59*time.Minute), true, "office"},
			{"18:00 CST denied", opAccess, day.Add(10 * time.Hour), false, ""},
		})
	})
	t.Run("overnight window in UTC", func(t *testing.T) {
		day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		runDecide(t, `
clauses:
  - name: night
    effect: allow
    hours: "22:00-06:00"
`, []decideCase{
			{"23:00 allowed", opAccess, day.Add(23 * time.Hour), true, "night"},
			{"05:59 allowed", opAccess, day.Add(5*time.Hour + 59*time.Minute), true, "night"},
			{"06:00 denied", opAccess, day.Add(6 * time.Hour), false, ""},
			{"21:59 denied", opAccess, day.Add(21*time.Hour + 59*time.Minute), false, ""},
		})
	})
}

func TestFirstMatchWins(t *testing.T) {
	runDecide(t, `
clauses:
  - name: no-foreign-lawful
    effect: deny
    reasons: [lawful-request-foreign]
  - name: authorities
    effect: allow
    roles: [authority]
  - name: never-reached
    effect: deny
    roles: [authority]
`, []decideCase{
		{"earlier deny wins over later allow", kms.Access{Cell: "c", Role: kms.RoleAuthority, Jurisdiction: "US", Reason: kms.ReasonLawfulRequestForeign}, time.Time{}, false, "no-foreign-lawful"},
		{"earlier allow wins over later deny", kms.Access{Cell: "c", Role: kms.RoleAuthority, Jurisdiction: "CN", Reason: kms.ReasonLawfulRequestDomestic}, time.Time{}, true, "authorities"},
	})
}

func TestDefaultDeny(t *testing.T) {
	t.Run("empty policy", func(t *testing.T) {
		runDecide(t, "clauses: []\n", []decideCase{{"app denied", appAccess, time.Time{}, false, ""}})
	})
	runDecide(t, `
clauses:
  - name: apps
    effect: allow
    roles: [app]
`, []decideCase{{"unmatched operator denied", opAccess, time.Time{}, false, ""}})
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		line  int
		field string
	}{
		{"not yaml", "clauses:\n\t- a\n", 2, ""},
		{"top-level list", "- a\n", 1, ""},
		{"unknown top field", "clauses: []\nextra: 1\n", 2, "extra"},
		{"unknown clause field", "clauses:\n  - name: a\n    effect: allow\n    role: [app]\n", 4, "clauses[0].role"},
		{"missing effect", "clauses:\n  - name: a\n    roles: [app]\n", 2, "clauses[0].effect"},
		{"bad effect", "clauses:\n  - name: a\n    effect: permit\n", 3, "clauses[0].effect"},
		{"missing name", "clauses:\n  - effect: allow\n", 2, "clauses[0].name"},
		{"duplicate name", "clauses:\n  - {name: a, effect: allow}\n  - {name: a, effect: deny}\n", 3, "clauses[1].name"},
		{"unknown role", "clauses:\n  - name: a\n    effect: allow\n    roles: [app, root]\n", 4, "clauses[0].roles[1]"},
		{"free-text reason", "clauses:\n  - name: a\n    effect: allow\n    reasons: [because]\n", 4, "clauses[0].reasons[0]"},
		{"empty list", "clauses:\n  - name: a\n    effect: allow\n    cells: []\n", 4, "clauses[0].cells"},
		{"lower-case jurisdiction", "clauses:\n  - name: a\n    effect: allow\n    jurisdictions: [cn]\n", 4, "clauses[0].jurisdictions[0]"},
		{"reference_required not bool", "clauses:\n  - name: a\n    effect: allow\n    reference_required: yes\n", 4, "clauses[0].reference_required"},
		{"bad time", "clauses:\n  - name: a\n    effect: allow\n    not_before: 2026-13-01\n", 4, "clauses[0].not_before"},
		{"window inverted", "clauses:\n  - name: a\n    effect: allow\n    not_before: 2026-03-02T00:00:00Z\n    not_after: 2026-03-01T00:00:00Z\n", 2, "clauses[0].not_after"},
		{"bad hours", "clauses:\n  - name: a\n    effect: allow\n    hours: 9-17\n", 4, "clauses[0].hours"},
		{"empty hours", "clauses:\n  - name: a\n    effect: allow\n    hours: \"09:00-09:00\"\n", 4, "clauses[0].hours"},
		{"unknown zone", "clauses:\n  - name: a\n    effect: allow\n    hours: \"09:00-17:00\"\n    timezone: Mars/Olympus\n", 5, "clauses[0].timezone"},
		{"zone without hours", "clauses:\n  - name: a\n    effect: allow\n    timezone: UTC\n", 4, "clauses[0].timezone"},
		{"duplicate key", "clauses:\n  - name: a\n    effect: allow\n    effect: deny\n", 4, "clauses[0].effect"},
		{"alias", "clauses:\n  - &x {name: a, effect: allow}\n  - *x\n", 2, ""},
		{"bad key_admin", "key_admin: [delete]\nclauses: []\n", 1, "key_admin"},
		{"clause not a mapping", "clauses:\n  - allow\n", 2, "clauses[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.in))
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePolicy(%q) = %v, want *PolicyError", tc.in, err)
			}
			if pe.Line != tc.line || pe.Field != tc.field {
				t.Errorf("ParsePolicy(%q) = %v; want line %d field %q", tc.in, err, tc.line, tc.field)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		if _, err := ParsePolicy(make([]byte, MaxPolicyBytes+1)); err == nil {
			t.Error("ParsePolicy(oversized) = nil error")
		}
	})
}

func TestExamplePolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.yaml")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := MustParsePolicy(t, string(b))
		if len(p.Clauses) == 0 {
			t.Errorf("%s: no clauses", f)
		}
	}
	if p := MustParsePolicy(t, ExamplePolicy); len(p.Clauses) < 4 {
		t.Errorf("ExamplePolicy has %d clauses", len(p.Clauses))
	}
}

var policyCmp = cmp.Options{
	cmpopts.IgnoreUnexported(Clause{}),
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

func FuzzParsePolicy(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Add([]byte(ExamplePolicy))
	f.Add([]byte("clauses: []\n"))
	f.Add([]byte("key_admin: [rotate, retire]\nclauses:\n  - {name: a, effect: allow, hours: \"22:00-06:00\", timezone: Asia/Shanghai}\n"))
	f.Add([]byte("clauses:\n  - &x {name: a, effect: allow}\n  - *x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "keyd: policy") {
				t.Fatalf("ParsePolicy error %v (%T) is not a *PolicyError", err, err)
			}
			return
		}
		out := p.Format()
		p2, err := ParsePolicy(out)
		if err != nil {
			t.Fatalf("ParsePolicy(Format(p)) = %v\n%s", err, out)
		}
		if diff := cmp.Diff(p, p2, policyCmp); diff != "" {
			t.Fatalf("Format round trip changed the policy (-want +got):\n%s\n%s", diff, out)
		}
		if out2 := p2.Format(); string(out2) != string(out) {
			t.Fatalf("Format output not canonical:\n%s\n----\n%s", out, out2)
		}
	})
}
