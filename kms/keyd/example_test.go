package keyd_test

import (
	"fmt"
	"time"

	"domicile/kms"
	"domicile/kms/keyd"
)

func ExampleParsePolicy() {
	p, err := keyd.ParsePolicy([]byte(`
clauses:
  - name: support-with-ticket
    effect: allow
    roles: [operator]
    reasons: [support]
    reference_required: true
`))
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a := kms.Access{Cell: "cn-gz1", Role: kms.RoleOperator, Jurisdiction: "CN", Reason: kms.ReasonSupport}
	fmt.Println(p.Decide(a, now))
	a.Reference = "TICKET-42"
	fmt.Println(p.Decide(a, now))
	// Output:
	// false  no clause matches role operator with reason support; default deny
	// true support-with-ticket clause "support-with-ticket" allows role operator with reason support
}
