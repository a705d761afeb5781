package law_test

import (
	"fmt"
	"log"
	"time"

	"domicile/law"
)

// Example assesses a fact file: exactly 100,000 people's personal information
// sent abroad this year needs a standard contract or certification.
func Example() {
	e, err := law.New()
	if err != nil {
		log.Fatal(err)
	}
	in, err := law.Parse([]byte(`
transfers_abroad: true
transfer_contains_pi: true
pi_individuals_ytd: 100000
recipient_country: US
`))
	if err != nil {
		log.Fatal(err)
	}
	rep, err := e.Assess(in, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.MechanismName(), "by", rep.MechanismRule)
	// Output: sc_or_certification by CN.CBDF.8
}

// ExampleEngine_Decide decides one transfer as the gateway does, with counts
// from its own ledger, under the law of two dates.
func ExampleEngine_Decide() {
	e, err := law.New()
	if err != nil {
		log.Fatal(err)
	}
	f := law.Facts{"transfers_abroad": true, "transfer_contains_pi": true,
		"pi_individuals_ytd": int64(45000), "pi_individuals_since_prev_year": int64(120000)}
	for _, d := range []string{"2023-06-01", "2024-06-01"} {
		asOf, _ := time.Parse(time.DateOnly, d)
		rep, err := e.Decide(f, asOf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(d, rep.MechanismName(), rep.MechanismRule)
	}
	// Output:
	// 2023-06-01 security_assessment CN.SAM.4
	// 2024-06-01 exempt CN.CBDF.5.4
}
