package domicile

import (
	"slices"
	"testing"
)

func TestPublicTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Event
		want []string
	}{
		{"app read", Event{Role: RoleApp, Action: ActRead, Basis: "service:support", Outcome: Allowed}, nil},
		{"operator with reason", Event{Role: RoleOperator, Action: ActRead, Basis: "support", Outcome: Allowed}, []string{"support"}},
		{"operator refused without reason", Event{Role: RoleOperator, Action: ActRead, Basis: "", Outcome: Denied}, nil},
		{"authority from abroad", Event{Role: RoleAuthority, Action: ActRead, Basis: "lawful-request-foreign", Outcome: Allowed, Detail: "remote read from US under exempt"},
			[]string{"lawful-request-foreign", "remote"}},
		{"remote read refused", Event{Role: RoleApp, Action: ActRead, Outcome: Denied, Detail: "remote read from US"}, nil},
		{"withdrawal", Event{Role: RoleSubject, Action: ActConsent, Outcome: Allowed, Detail: ConsentWithdrawnPrefix + "v2"}, []string{"withdrawal"}},
		{"consent given", Event{Role: RoleApp, Action: ActConsent, Outcome: Allowed, Detail: "granted:v2"}, nil},
		{"an app cannot claim a reason", Event{Role: RoleApp, Action: ActRead, Basis: "support", Outcome: Allowed}, nil},
	} {
		if got := tc.e.PublicTags(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: PublicTags() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
