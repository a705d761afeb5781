package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"domicile"
	"domicile/httpapi"
	"domicile/transfer"
)

// runCLI runs the binary with args and returns its standard output.
func runBinary(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.Bytes(), nil
}

// openBundle decrypts an age bundle with id and verifies it.
func openBundle(t *testing.T, body io.Reader, id *age.X25519Identity) (*transfer.BundleHeader, []transfer.BundleRecord, *transfer.Manifest) {
	t.Helper()
	r, err := age.Decrypt(body, id)
	if err != nil {
		t.Fatalf("decrypt bundle: %v", err)
	}
	h, recs, m, err := transfer.VerifyBundle(r)
	if err != nil {
		t.Fatalf("verify bundle: %v", err)
	}
	return h, recs, m
}

func ledgerCounts(t *testing.T, c *httpapi.Client) (pi, spi int64) {
	t.Helper()
	v, err := c.Ledger(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Counts {
		if n.Source == "CN" && n.Dim == "" {
			if n.Class == domicile.ClassPI {
				pi = n.N
			} else {
				spi = n.N
			}
		}
	}
	return
}

// TestTransferGateEndToEnd is issue 6's "done when", on the embedded
// default with the real binary: an app acting from the US exports CN
// subjects' messages under the small-volume exemption, the 100,000th
// person needs a filed standard contract, fields outside its scope stay,
// a sensitive field flips the counting, a withdrawn consent removes a
// subject, a remote read counts once, and assess --live agrees.
func TestTransferGateEndToEnd(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	cn := s.client(s.token("app", "CN", ""), "support", "")
	us := s.client(s.token("app", "US", ""), "support", "")
	admin := s.client(s.Admin, "", "")
	ids := []string{"li.wei", "wang.fang", "zhang.min", "chen.jie"}
	for _, id := range ids {
		if _, err := cn.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := cn.PutRecord(ctx, id, "message", "m1", map[string]string{"from": id, "to": "zhang.san", "body": "明天见"}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := cn.PutRecord(ctx, id, "location", "l1", map[string]string{"lat": "23.1", "lon": "113.3"}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := cn.SetConsent(ctx, id, "cross-border", "v1", true); err != nil {
			t.Fatal(err)
		}
	}

	// A remote read from the US counts once per subject per year.
	for i := 0; i < 3; i++ {
		if _, err := us.GetRecord(ctx, "li.wei", "message", "m1"); err != nil {
			t.Fatalf("remote read %d: %v", i, err)
		}
	}
	if pi, _ := ledgerCounts(t, admin); pi != 1 {
		t.Fatalf("after three remote reads of one subject: pi = %d, want 1", pi)
	}

	// Seed the year through the import path (the CLI).
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	var csv bytes.Buffer
	csv.WriteString(transfer.ImportHeader + "\n")
	for i := 0; i < 99_997; i++ {
		fmt.Fprintf(&csv, "%s,pre-%d,US,personal,exempt\n", today, i)
	}
	csvPath := filepath.Join(t.TempDir(), "earlier.csv")
	os.WriteFile(csvPath, csv.Bytes(), 0o600)
	if out, err := runBinary(t, "transfer", "import", "--server", s.URL, "--token", s.Admin, csvPath); err != nil {
		t.Fatalf("transfer import: %v\n%s", err, out)
	}
	if pi, _ := ledgerCounts(t, admin); pi != 99_998 {
		t.Fatalf("after import: pi = %d, want 99,998", pi)
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	req := func(fields map[string][]string, subjects ...string) transfer.Request {
		return transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: subjects, Fields: fields, RecipientKey: id.Recipient().String()}
	}
	msg := map[string][]string{"message": {"from", "to", "body"}}

	// Under 100,000: exempt, with notice obligations; li.wei counted already.
	d, body, err := us.Transfer(ctx, req(msg, "li.wei", "wang.fang"))
	if err != nil {
		t.Fatalf("export under 100,000: %v", err)
	}
	_, recs, man := openBundle(t, body, id)
	body.Close()
	// The subject's statement shows the transfer, from the gateway's ledger.
	// (A statement names every record, so the app asks under a purpose
	// that reads them all.)
	stmt, err := s.client(s.token("app", "CN", ""), "service", "").Statement(ctx, "wang.fang", "en")
	if err != nil {
		t.Fatalf("statement: %v", err)
	}
	if !stmt.TransfersReported || len(stmt.Transfers) != 1 || stmt.Transfers[0].Destination != "US" || stmt.Transfers[0].Reference != d.ID {
		t.Fatalf("statement transfers = %+v (reported %v), want the export %s to US", stmt.Transfers, stmt.TransfersReported, d.ID)
	}
	if d.Law != "exempt" || d.MechanismRule != "CN.CBDF.5.4" || !slices.Contains(d.Obligations, "notice_art39") || d.PIYTD != 99_999 {
		t.Fatalf("decision: %s by %s, obligations %v, ytd %d", d.Law, d.MechanismRule, d.Obligations, d.PIYTD)
	}
	if len(recs) != 2 || man.Subjects != 2 || !strings.Contains(string(recs[0].Data), `"to"`) {
		t.Fatalf("bundle: %d records, manifest %+v", len(recs), man)
	}
	// The headroom warning (90% of 100,000) is in the server log too,
	// as doc/transfers.md promises.
	eventually(t, 10*time.Second, "the threshold warning in the server log", func() bool {
		return strings.Contains(s.Log(), `msg="transfer: threshold warning"`) && strings.Contains(s.Log(), "threshold=100000")
	})

	// The request that would bring the count to 100,000 is refused.
	_, _, err = us.Transfer(ctx, req(msg, "zhang.min"))
	var re *httpapi.TransferRefusedError
	if !errors.As(err, &re) || re.Status != 403 || !slices.Contains(re.Decision.Rules, "CN.CBDF.8") || len(re.Decision.Remedies) == 0 || re.Decision.PIYTD != 100_000 {
		t.Fatalf("the 100,000th person: %v, want 403 under CN.CBDF.8 with remedies", err)
	}

	// A filed standard contract, registered through the CLI, lets it pass;
	// message.to is outside its scope.
	sc := transfer.Mechanism{ID: "sc-acme", Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-2026-001", Signed: today,
		Filed: today, FilingReference: "粤网信备-001", Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"},
			Recipients: []string{"Acme Support Inc.", "remote:app"}, Purposes: []string{"support"},
			Categories: []domicile.Category{domicile.Personal, domicile.Whereabouts}, Fields: []string{"message.from", "message.body", "location.lat", "location.lon"}}}
	b, _ := json.Marshal(sc)
	scPath := filepath.Join(t.TempDir(), "sc.json")
	os.WriteFile(scPath, b, 0o600)
	if out, err := runBinary(t, "mechanism", "add", "--server", s.URL, "--token", s.Admin, "--file", scPath); err != nil {
		t.Fatalf("mechanism add: %v\n%s", err, out)
	}
	d, body, err = us.Transfer(ctx, req(msg, "zhang.min"))
	if err != nil {
		t.Fatalf("with a filed contract: %v", err)
	}
	_, recs, _ = openBundle(t, body, id)
	body.Close()
	if d.Law != "sc_or_certification" || d.Mechanism == nil || d.Mechanism.ID != "sc-acme" || d.PIYTD != 100_000 {
		t.Fatalf("decision %+v", d)
	}
	for _, r := range recs {
		if strings.Contains(string(r.Data), "zhang.san") {
			t.Errorf("message.to, outside the contract's scope, left: %s", r.Data)
		}
	}

	// One sensitive field flips the counting: sensitive consent, sensitive count.
	loc := map[string][]string{"location": {"lat"}}
	_, _, err = us.Transfer(ctx, req(loc, "li.wei"))
	if !errors.As(err, &re) || !slices.Contains(re.Decision.Rules, "CN.PIPL.28") {
		t.Fatalf("sensitive field without sensitive consent: %v", err)
	}
	if _, err := cn.SetConsent(ctx, "li.wei", "sensitive", "s1", true); err != nil {
		t.Fatal(err)
	}
	d, body, err = us.Transfer(ctx, req(loc, "li.wei"))
	if err != nil {
		t.Fatalf("sensitive export: %v", err)
	}
	openBundle(t, body, id)
	body.Close()
	if pi, spi := ledgerCounts(t, admin); spi != 1 || pi != 100_000 || d.SensitivePIYTD != 1 {
		t.Fatalf("after a sensitive field: pi %d spi %d (decision %d), want 100,000 and 1", pi, spi, d.SensitivePIYTD)
	}

	// A withdrawal removes the subject from the next export.
	if _, err := cn.SetConsent(ctx, "wang.fang", "cross-border", "v1", false); err != nil {
		t.Fatal(err)
	}
	d, body, err = us.Transfer(ctx, req(msg, "li.wei", "wang.fang"))
	if err != nil {
		t.Fatal(err)
	}
	_, recs, _ = openBundle(t, body, id)
	body.Close()
	if len(recs) != 1 || recs[0].Subject != "li.wei" || len(d.Excluded) != 1 || d.Excluded[0].Subject != "wang.fang" {
		t.Fatalf("after withdrawal: %d records, excluded %+v", len(recs), d.Excluded)
	}

	// Each exported subject has export events in its cell's log.
	st, _, evs := s.do("GET", "/v1/subjects/li.wei/events?limit=1000", s.token("subject", "CN", "li.wei"), nil, nil)
	if st != 200 || strings.Count(string(evs), `\"action\":\"export\"`) != 3 {
		t.Errorf("li.wei's trail: status %d, %d export events, want 3", st, strings.Count(string(evs), `\"action\":\"export\"`))
	}

	// assess --live reports the gate's counts and mechanism.
	out, err := runBinary(t, "assess", "--live", "--format", "json", "--server", s.URL, "--token", s.Admin)
	if err != nil {
		t.Fatalf("assess --live: %v", err)
	}
	var live struct {
		Mechanism string `json:"mechanism"`
		Ledger    struct {
			PI  int64 `json:"pi_individuals_ytd"`
			SPI int64 `json:"sensitive_pi_individuals_ytd"`
		} `json:"ledger"`
	}
	if err := json.Unmarshal(out, &live); err != nil {
		t.Fatalf("assess --live output: %v\n%s", err, out)
	}
	if live.Mechanism != d.Law || live.Ledger.PI != d.PIYTD || live.Ledger.SPI != d.SensitivePIYTD {
		t.Fatalf("assess --live: %s %d/%d; gate: %s %d/%d", live.Mechanism, live.Ledger.PI, live.Ledger.SPI, d.Law, d.PIYTD, d.SensitivePIYTD)
	}

	// Warnings are metrics too, and the evidence lists every transfer.
	_, _, m := s.do("GET", "/metrics", "", nil, nil)
	if !strings.Contains(string(m), `domicile_transfer_individuals_ytd{class="pi",dim="",entity="demo",source="CN",value=""} 100000`) ||
		!strings.Contains(string(m), `domicile_transfer_decisions_total{mechanism="sc_or_certification",outcome="allowed"}`) {
		t.Errorf("/metrics lacks the transfer gauges:\n%s", grepLines(string(m), "domicile_transfer"))
	}
	ev, err := admin.Evidence(ctx, "", "", "csv")
	if err != nil {
		t.Fatal(err)
	}
	evb, _ := io.ReadAll(ev)
	ev.Close()
	if n := strings.Count(string(evb), "\n"); n < 8 || strings.Contains(string(evb), "li.wei") {
		t.Errorf("evidence: %d lines (or holds a subject id):\n%s", n, evb)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
