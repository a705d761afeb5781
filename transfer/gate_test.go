package transfer_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile"
	"domicile/transfer"
)

// march is a day in 2026, inside the calendar and the 2024 regime.
var march = time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)

func mustRefused(t *testing.T, err error) *transfer.Decision {
	t.Helper()
	var re *transfer.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	d := re.Decision
	if d.Allowed || len(d.Rules) == 0 || len(d.Reasons) == 0 || len(d.Remedies) == 0 {
		t.Fatalf("refusal without reasons, rule ids and remedies: %+v", d)
	}
	return d
}

// TestCountingIsExact: the same subject twice counts once; erasure does
// not reduce the count; a new year starts at zero.
func TestCountingIsExact(t *testing.T) {
	e := newEnv(t, march)
	e.subject("a")
	e.subject("b")
	for i, tc := range []struct {
		ids    []string
		newPI  int64
		wantPI int64
	}{{[]string{"a"}, 1, 1}, {[]string{"a"}, 0, 1}, {[]string{"a", "b"}, 1, 2}} {
		d, recs, err := e.transferPlain(messageRequest(tc.ids...))
		if err != nil {
			t.Fatalf("transfer %d: %v", i, err)
		}
		if d.Law != "exempt" || d.MechanismRule != "CN.CBDF.5.4" || !slices.Contains(d.Obligations, "notice_art39") {
			t.Errorf("transfer %d: %s by %s, obligations %v; want exempt by CN.CBDF.5.4 with notice_art39", i, d.Law, d.MechanismRule, d.Obligations)
		}
		if d.NewPI != tc.newPI || d.PIYTD != tc.wantPI || len(recs) != len(tc.ids) {
			t.Errorf("transfer %d: new %d ytd %d records %d, want %d %d %d", i, d.NewPI, d.PIYTD, len(recs), tc.newPI, tc.wantPI, len(tc.ids))
		}
	}
	if _, err := e.router.Erase(context.Background(), e.appCN, "b"); err != nil {
		t.Fatal(err)
	}
	if pi, _ := e.counts(); pi != 2 {
		t.Errorf("after erasing b: pi = %d, want 2 (erasure does not undo a transfer)", pi)
	}
	// 1 January 2027 00:30 in China is still 2026 in UTC: the year is China's.
	e.clock.Set(time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC))
	if pi, _ := e.counts(); pi != 0 {
		t.Errorf("new year: pi = %d, want 0", pi)
	}
	d, _, err := e.transferPlain(messageRequest("a"))
	if err != nil || d.Year != 2027 || d.PIYTD != 1 || d.NewPI != 1 {
		t.Fatalf("first transfer of 2027: %+v, %v; want year 2027, ytd 1", d, err)
	}
}

// TestThresholdNeedsFiledContract: the request that brings the count to
// 100,000 needs a filed standard contract; fields outside its scope stay.
func TestThresholdNeedsFiledContract(t *testing.T) {
	e := newEnv(t, march)
	e.seed(99_998, "2026-01-15", "personal")
	for _, id := range []string{"s1", "s2", "s3"} {
		e.subject(id)
	}
	d, _, err := e.transferPlain(messageRequest("s1"))
	if err != nil || d.Law != "exempt" || d.PIYTD != 99_999 {
		t.Fatalf("99,999th person: %+v, %v; want exempt", d, err)
	}
	if len(d.Warnings) != 1 || d.Warnings[0].Percent != 90 || d.Warnings[0].Threshold != 100_000 {
		t.Errorf("warnings at 99,999: %+v, want one at 90%% of 100,000", d.Warnings)
	}
	_, _, err = e.transferPlain(messageRequest("s2"))
	r := mustRefused(t, err)
	if r.Law != "sc_or_certification" || !slices.Contains(r.Rules, "CN.CBDF.8") || r.PIYTD != 100_000 {
		t.Fatalf("100,000th person: %s, rules %v, ytd %d; want sc_or_certification refused under CN.CBDF.8", r.Law, r.Rules, r.PIYTD)
	}
	if pi, _ := e.counts(); pi != 99_999 {
		t.Fatalf("a refusal changed the count: %d", pi)
	}
	ctx := context.Background()
	// Signed, not yet filed: still refused, saying by when to file.
	if _, err := e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "")); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.transferPlain(messageRequest("s2"))
	r = mustRefused(t, err)
	if !strings.Contains(strings.Join(r.Reasons, " "), "not filed") || !slices.Contains(r.Rules, "CN.SCM.5") {
		t.Fatalf("unfiled contract: reasons %v rules %v", r.Reasons, r.Rules)
	}
	if _, err := e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "2026-03-09")); err != nil {
		t.Fatal(err)
	}
	d, recs, err := e.transferPlain(messageRequest("s2", "s3"))
	if err != nil {
		t.Fatalf("with a filed contract: %v", err)
	}
	if d.Mechanism == nil || d.Mechanism.ID != "sc-1" || d.PIYTD != 100_001 {
		t.Fatalf("decision %+v", d)
	}
	if !slices.Equal(d.Dropped["message"], []string{"to"}) {
		t.Errorf("dropped %v, want message.to", d.Dropped)
	}
	for _, r := range recs {
		if strings.Contains(string(r.Data), "zhang.san") || strings.Contains(string(r.Data), `"to"`) {
			t.Errorf("bundle holds a field outside the contract's scope: %s", r.Data)
		}
	}
}

// TestSensitiveFieldFlipsCounting: one sensitive field needs a contract,
// the sensitive consent, and counts in the sensitive count.
func TestSensitiveFieldFlipsCounting(t *testing.T) {
	e := newEnv(t, march)
	e.subject("a")
	req := &transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: []string{"a"},
		Fields: map[string][]string{"location": {"lat", "lon"}}, Plain: true}
	_, _, err := e.transferPlain(req)
	r := mustRefused(t, err)
	if r.Law != "sc_or_certification" {
		t.Fatalf("sensitive field: %s, want sc_or_certification", r.Law)
	}
	ctx := context.Background()
	if _, err := e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "2026-03-06")); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.transferPlain(req)
	r = mustRefused(t, err)
	if len(r.Excluded) != 1 || r.Excluded[0].Rule != "CN.PIPL.28" {
		t.Fatalf("without sensitive consent: excluded %+v, want a CN.PIPL.28 exclusion", r.Excluded)
	}
	if _, err := e.g.SetConsent(ctx, e.appCN, "a", domicile.ConsentSensitive, "s1", true); err != nil {
		t.Fatal(err)
	}
	d, recs, err := e.transferPlain(req)
	if err != nil || len(recs) != 1 {
		t.Fatalf("with consent: %v, %d records", err, len(recs))
	}
	if d.SensitivePIYTD != 1 || d.NewSensitivePI != 1 {
		t.Errorf("sensitive count %d (new %d), want 1", d.SensitivePIYTD, d.NewSensitivePI)
	}
	if pi, spi := e.counts(); pi != 0 || spi != 1 {
		t.Errorf("counts pi %d spi %d, want 0 and 1 (only sensitive fields left)", pi, spi)
	}
}

// TestConsentWithdrawal: a withdrawn consent removes the subject from the
// next export.
func TestConsentWithdrawal(t *testing.T) {
	e := newEnv(t, march)
	e.subject("a")
	e.subject("b")
	_, recs, err := e.transferPlain(messageRequest("a", "b"))
	if err != nil || len(recs) != 2 {
		t.Fatalf("first export: %v, %d records", err, len(recs))
	}
	if _, err := e.g.SetConsent(context.Background(), e.appCN, "b", domicile.ConsentCrossBorder, "v1", false); err != nil {
		t.Fatal(err)
	}
	d, recs, err := e.transferPlain(messageRequest("a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Subject != "a" || len(d.Excluded) != 1 || d.Excluded[0].Subject != "b" || d.Excluded[0].Rule != "CN.PIPL.39.CONSENT" {
		t.Fatalf("after withdrawal: records %v, excluded %+v", recs, d.Excluded)
	}
}

// TestRemoteReadCountsOnce: reads from abroad count once per subject per
// year; a read the law refuses is refused with its rule ids.
func TestRemoteReadCountsOnce(t *testing.T) {
	e := newEnv(t, march)
	e.subject("a")
	ctx := context.Background()
	c, k, _ := e.router.Locate(ctx, "a")
	for i := 0; i < 3; i++ {
		if _, err := c.GetRecord(ctx, e.app, k, "message", "m1"); err != nil {
			t.Fatalf("remote read %d: %v", i, err)
		}
	}
	if _, _, err := c.ListRecords(ctx, e.app, k, "message", "", "", 10); err != nil {
		t.Fatal(err)
	}
	if pi, _ := e.counts(); pi != 1 {
		t.Fatalf("pi after four reads = %d, want 1", pi)
	}
	n := 0
	e.store.Records(ctx, time.Time{}, march.AddDate(1, 0, 0), func(r *domicile.TransferRecord) error { n++; return nil })
	if n != 1 {
		t.Errorf("%d transfer records, want 1", n)
	}
	// Support does not read location records (purpose limitation)...
	if _, err := c.GetRecord(ctx, e.app, k, "location", "l1"); domicile.ErrorCode(err) != domicile.EForbidden || !strings.Contains(err.Error(), "purposes.support") {
		t.Fatalf("support reading a location: %v, want forbidden under purposes.support", err)
	}
	// ...and under a purpose that does, a read of sensitive data needs a
	// contract: refused, naming the rules.
	service := e.app
	service.Purpose = "service"
	_, err := c.GetRecord(ctx, service, k, "location", "l1")
	if domicile.ErrorCode(err) != domicile.EForbidden || !strings.Contains(err.Error(), "CN.CBDF.8") {
		t.Fatalf("remote sensitive read: %v, want forbidden under CN.CBDF.8", err)
	}
	// Reads from inside China are not transfers.
	serviceCN := e.appCN
	serviceCN.Purpose = "service"
	if _, err := c.GetRecord(ctx, serviceCN, k, "location", "l1"); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCrossing: two requests that together would reach the
// 10,000 sensitive-PI threshold of a security assessment cannot both pass.
func TestConcurrentCrossing(t *testing.T) {
	e := newEnv(t, march)
	e.seed(9_998, "2026-02-01", "whereabouts")
	ctx := context.Background()
	e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "2026-03-06"))
	for _, id := range []string{"x", "y"} {
		e.subject(id)
		e.g.SetConsent(ctx, e.appCN, id, domicile.ConsentSensitive, "s1", true)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{"x", "y"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = e.transferPlain(&transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: []string{id},
				Fields: map[string][]string{"location": {"lat", "lon"}}, Plain: true})
		}()
	}
	wg.Wait()
	passed := 0
	for _, err := range errs {
		if err == nil {
			passed++
			continue
		}
		if d := mustRefused(t, err); d.Law != "security_assessment" || !slices.Contains(d.Rules, "CN.CBDF.7") {
			t.Errorf("the refused one: %s under %v, want security_assessment under CN.CBDF.7", d.Law, d.Rules)
		}
	}
	if passed != 1 {
		t.Fatalf("%d requests passed, want exactly 1 (%v)", passed, errs)
	}
	if _, spi := e.counts(); spi != 9_999 {
		t.Fatalf("spi = %d, want 9,999", spi)
	}
}

// TestRefusalsNameRules: every kind of refusal names rule ids and a remedy.
func TestRefusalsNameRules(t *testing.T) {
	e := newEnv(t, march)
	e.subject("a")
	ctx := context.Background()
	e.g.PutMechanism(ctx, e.admin, standardContract("late", "2026-01-05", "2026-02-20"))
	cases := []struct {
		name string
		req  *transfer.Request
		rule string
	}{
		{"sensitive without contract", &transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: []string{"a"}, Fields: map[string][]string{"profile": {"id_number"}}, Plain: true}, "CN.CBDF.8"},
		{"contract exemption not registered", &transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: []string{"a"}, Ground: "contract_with_individual", Necessary: true, Fields: map[string][]string{"message": {"body"}}, Plain: true}, "CN.CBDF.5.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.transferPlain(tc.req)
			d := mustRefused(t, err)
			if !slices.Contains(d.Rules, tc.rule) {
				t.Errorf("rules %v lack %s", d.Rules, tc.rule)
			}
		})
	}
	// A late filing is named as such.
	_, _, err := e.transferPlain(&transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: []string{"a"}, Fields: map[string][]string{"location": {"lat"}}, Plain: true})
	d := mustRefused(t, err)
	if !strings.Contains(strings.Join(d.Reasons, " "), "after its deadline 2026-01-19") {
		t.Errorf("late filing reasons: %v", d.Reasons)
	}
}

// TestAssessMatchesGate: the live assessment reports the gate's counts and
// mechanism.
func TestAssessMatchesGate(t *testing.T) {
	e := newEnv(t, march)
	e.seed(50, "2026-01-20", "personal")
	e.subject("a")
	ctx := context.Background()
	e.g.SetConsent(ctx, e.appCN, "a", domicile.ConsentSensitive, "s1", true)
	e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "2026-03-06"))
	d, _, err := e.transferPlain(&transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: []string{"a"},
		Fields: map[string][]string{"message": {"body"}, "location": {"lat"}}, Plain: true})
	if err != nil {
		t.Fatal(err)
	}
	as, err := e.g.Assess(ctx, e.admin, "CN")
	if err != nil {
		t.Fatal(err)
	}
	if as.PIYTD != 51 || as.PIYTD != d.PIYTD || as.SensitivePIYTD != d.SensitivePIYTD || as.Report.MechanismName() != d.Law {
		t.Fatalf("assess: %d/%d %s; gate: %d/%d %s", as.PIYTD, as.SensitivePIYTD, as.Report.MechanismName(), d.PIYTD, d.SensitivePIYTD, d.Law)
	}
}

// TestRegistrySharedAcrossProcesses: two gateways over one store, as two
// cell processes sharing the ledger. A mechanism registered through one
// governs the other once its cached registry is older than Refresh, and
// not before; without Refresh the registry is read once.
func TestRegistrySharedAcrossProcesses(t *testing.T) {
	e := newEnv(t, march)
	ctx := context.Background()
	other, err := transfer.New(ctx, transfer.Config{Store: e.store, Engine: lawEngine(t), Router: e.router, Now: e.clock.Now, Refresh: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	once, err := transfer.New(ctx, transfer.Config{Store: e.store, Engine: lawEngine(t), Router: e.router, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "2026-03-09")); err != nil {
		t.Fatal(err)
	}
	ids := func(g *transfer.Gateway) []string {
		t.Helper()
		ms, err := g.Mechanisms(ctx, e.admin)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	if got := ids(other); len(got) != 0 {
		t.Fatalf("registry read again before Refresh: %v", got)
	}
	e.clock.Set(march.Add(2 * time.Second))
	if got := ids(other); !slices.Equal(got, []string{"sc-1"}) {
		t.Fatalf("registry after Refresh = %v, want [sc-1]", got)
	}
	if got := ids(once); len(got) != 0 {
		t.Fatalf("registry without Refresh read again: %v", got)
	}
}
