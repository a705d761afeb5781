package domicile_test

import (
	"strings"
	"testing"
	"time"

	"domicile"
)

// TestControlEventCanonical pins the canonical form and hash of a control
// log entry: the worked example of doc/tokens.md.
func TestControlEventCanonical(t *testing.T) {
	e := domicile.ControlEvent{Time: time.Date(2026, 3, 1, 8, 0, 0, 500000000, time.UTC), Action: domicile.ControlMint, Token: "tok_3c5e0a9d41f2",
		Role: domicile.RoleApp, Jurisdiction: "CN", Expires: time.Date(2026, 5, 30, 8, 0, 0, 500000000, time.UTC), Actor: "tok_0b17c2e8a6d4"}
	if err := e.Seal(2, "5d1f0e7d9c6f2b4a8e3d1c0b9a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5"); err != nil {
		t.Fatal(err)
	}
	want := `domicile control log v1
seq 2
time 2026-03-01T08:00:00.5Z
action mint
token tok_3c5e0a9d41f2
role app
jurisdiction CN
expires 2026-05-30T08:00:00.5Z
replaces -
count 0
actor tok_0b17c2e8a6d4
prev 5d1f0e7d9c6f2b4a8e3d1c0b9a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5
`
	if got := string(e.Canonical()); got != want {
		t.Errorf("Canonical() =\n%s\nwant\n%s", got, want)
	}
	if want := "18b2fd532eed9688fb99f94a4ee458592e5e2fbaec86bdd381463d56b0cb353b"; e.Hash != want {
		t.Errorf("Hash = %s, want %s", e.Hash, want)
	}
	if _, _, err := domicile.VerifyControlLog([]domicile.ControlEvent{e}, 1, e.Prev); err != nil {
		t.Errorf("VerifyControlLog of the sealed entry: %v", err)
	}
}

// TestControlEventSealRefuses: a value that would break the canonical
// form (white space, a line break), an unknown action or no actor is
// refused.
func TestControlEventSealRefuses(t *testing.T) {
	base := domicile.ControlEvent{Time: time.Unix(1, 0), Action: domicile.ControlRevoke, Token: "tok_1", Actor: "tok_0"}
	for name, edit := range map[string]func(e *domicile.ControlEvent){
		"token with a space":      func(e *domicile.ControlEvent) { e.Token = "tok 1" },
		"actor with a line break": func(e *domicile.ControlEvent) { e.Actor = "tok_0\nrole admin" },
		"unknown action":          func(e *domicile.ControlEvent) { e.Action = "grant" },
		"no actor":                func(e *domicile.ControlEvent) { e.Actor = "" },
		"replaces far too long":   func(e *domicile.ControlEvent) { e.Replaces = strings.Repeat("x", 200) },
		"jurisdiction with a tab": func(e *domicile.ControlEvent) { e.Jurisdiction = "C\tN" },
	} {
		e := base
		edit(&e)
		if err := e.Seal(1, domicile.ZeroControlHash); err == nil {
			t.Errorf("%s: Seal = nil, want an error", name)
		}
	}
	e := base
	if err := e.Seal(1, domicile.ZeroControlHash); err != nil || len(e.Hash) != 64 {
		t.Errorf("Seal of a valid entry = %v, hash %q", err, e.Hash)
	}
}
