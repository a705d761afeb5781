package main

import (
	"bytes"
	"context"
	"domicile/client"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"domicile"
	"domicile/httpapi"
	"domicile/rights"
	"domicile/transfer"
)

// rightsStart is the instant the rights tests run at (injected clock):
// the eve of the 2027 Spring Festival holiday in China, so that a CN
// deadline crosses nine days off and two adjusted working days.
var rightsStart = time.Date(2027, 2, 4, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))

// rightsServer starts `domicile serve` in this process with a clock set
// to rightsStart, and returns the clock, the server and an app client.
func rightsServer(t *testing.T) (*clock, *server, *httpapi.Client) {
	t.Helper()
	clk := &clock{}
	clk.Advance(time.Until(rightsStart))
	url, data, admin := inProcess(t, clk.Now)
	s := &server{t: t, URL: url, Data: data, Admin: admin}
	app := s.client(s.token("app", "CN", ""), "service", "")
	return clk, s, app
}

func mustRequest(t *testing.T, c *httpapi.Client, id string, in rights.Input) *rights.Request {
	t.Helper()
	r, err := c.CreateRequest(context.Background(), id, in)
	if err != nil {
		t.Fatalf("file %s request for %s: %v", in.Kind, id, err)
	}
	return r
}

func wantProblem(t *testing.T, err error, status int, field string) {
	t.Helper()
	var pe *client.ProblemError
	if !errors.As(err, &pe) || pe.Status != status || pe.Field != field {
		t.Fatalf("error %v, want a %d problem naming %q", err, status, field)
	}
}

// TestRightsDeadlines: a CN request filed on the eve of the Spring
// Festival is due 15 working days later on the CN calendar (2027-03-04,
// not 2027-02-25); an EU one a month later. A correction stays open:
// past its deadline (clock moved) it is overdue, until the app completes
// it; a refusal needs a reason, and a final request does not change.
func TestRightsDeadlines(t *testing.T) {
	clk, s, app := rightsServer(t)
	ctx := context.Background()
	for _, sub := range []struct{ id, jur string }{{"li", "CN"}, {"anna", "DE"}} {
		if _, err := app.CreateSubject(ctx, sub.id, sub.jur, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.PutRecord(ctx, "li", "profile", "main", map[string]string{"name": "李卫"}, ""); err != nil {
		t.Fatal(err)
	}
	li := s.client(s.token("subject", "CN", "li"), "", "")
	corr := mustRequest(t, li, "li", rights.Input{Kind: rights.Correction, Record: &rights.RecordRef{Kind: "profile", ID: "main"},
		Changes: map[string]json.RawMessage{"name": json.RawMessage(`"李伟"`)}, Note: "my name is 李伟"})
	wantDue := time.Date(2027, 3, 4, 23, 59, 59, 0, time.FixedZone("CST", 8*3600))
	if corr.State != rights.Received || !corr.Deadline.Due.Equal(wantDue) || corr.Deadline.Rule != "CN.PIPL.44-50" || corr.Deadline.Approximate {
		t.Fatalf("CN correction: state %s, deadline %+v; want received, due %s under CN.PIPL.44-50", corr.State, corr.Deadline, wantDue)
	}
	anna := mustRequest(t, app, "anna", rights.Input{Kind: rights.Correction, Record: &rights.RecordRef{Kind: "profile", ID: "p"},
		Changes: map[string]json.RawMessage{"email": json.RawMessage(`"anna@example.de"`)}})
	if want := time.Date(2027, 3, 4, 23, 59, 59, 0, time.UTC); !anna.Deadline.Due.Equal(want) || anna.Deadline.Rule != "GDPR Art. 12(3)" {
		t.Errorf("EU correction deadline %+v, want %s under GDPR Art. 12(3)", anna.Deadline, want)
	}

	// Bad input names its field.
	_, err := li.CreateRequest(ctx, "li", rights.Input{Kind: "forget-me"})
	wantProblem(t, err, 400, "kind")
	_, err = li.CreateRequest(ctx, "li", rights.Input{Kind: rights.Correction, Record: &rights.RecordRef{Kind: "profile", ID: "main"},
		Changes: map[string]json.RawMessage{"shoe_size": json.RawMessage(`42`)}})
	wantProblem(t, err, 400, "changes")
	_, err = li.CreateRequest(ctx, "li", rights.Input{Kind: rights.Copy, Recipient: "age1notakey"})
	wantProblem(t, err, 400, "recipient")

	// A day before the deadline it is open; a day after, overdue.
	clk.Advance(wantDue.Add(-24 * time.Hour).Sub(clk.Now()))
	if r, err := li.Request(ctx, "li", corr.ID); err != nil || r.Overdue {
		t.Fatalf("a day before the deadline: %+v, %v; want not overdue", r, err)
	}
	clk.Advance(48 * time.Hour)
	r, err := li.Request(ctx, "li", corr.ID)
	if err != nil || !r.Overdue || r.State != rights.Received {
		t.Fatalf("a day after the deadline: %+v, %v; want overdue", r, err)
	}
	// The subject files and reads; the app moves requests on.
	_, err = li.UpdateRequest(ctx, "li", corr.ID, rights.Update{State: rights.Completed})
	wantProblem(t, err, 403, "")
	_, err = app.UpdateRequest(ctx, "li", corr.ID, rights.Update{State: rights.Refused})
	wantProblem(t, err, 400, "reason")
	if _, err := app.UpdateRequest(ctx, "li", corr.ID, rights.Update{State: rights.InProgress}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.PutRecord(ctx, "li", "profile", "main", map[string]string{"name": "李伟"}, ""); err != nil {
		t.Fatal(err)
	}
	done, err := app.UpdateRequest(ctx, "li", corr.ID, rights.Update{State: rights.Completed, Note: "name corrected"})
	if err != nil || done.State != rights.Completed || done.Overdue || len(done.History) != 3 {
		t.Fatalf("complete: %+v, %v; want completed, not overdue, three steps", done, err)
	}
	_, err = app.UpdateRequest(ctx, "li", corr.ID, rights.Update{State: rights.Refused, Reason: "changed our mind"})
	wantProblem(t, err, 409, "state")

	// The requests are in the subject's list, and each step is an event
	// in its trail.
	list, err := li.Requests(ctx, "li")
	if err != nil || len(list) != 1 || list[0].ID != corr.ID {
		t.Fatalf("li's requests: %+v, %v", list, err)
	}
	evs := trailOf(t, s, s.token("subject", "CN", "li"), "li")
	var steps []string
	for _, e := range evs {
		if e.Action == domicile.ActRequest && e.Outcome == domicile.Allowed {
			steps = append(steps, e.Detail)
		}
	}
	if want := []string{"correction request received; due 2027-03-04", "correction request in-progress", "correction request completed"}; strings.Join(steps, "|") != strings.Join(want, "|") {
		t.Errorf("request events in li's trail: %q, want %q", steps, want)
	}
}

// TestRightsAccessExplanation: access answers with what the subject holds
// (no values) and where; explanation with each category's purposes,
// consents and rules, in the language asked for.
func TestRightsAccessExplanation(t *testing.T) {
	_, s, app := rightsServer(t)
	seedSubject(t, app, "li")
	li := s.client(s.token("subject", "CN", "li"), "", "")
	acc := mustRequest(t, li, "li", rights.Input{Kind: rights.Access})
	inv := acc.Result.Inventory
	if acc.State != rights.Completed || inv == nil || inv.Cell != "cn-gz1" || inv.Objects != 1 || len(inv.Kinds) != 2 {
		t.Fatalf("access: %+v", acc)
	}
	if b, _ := json.Marshal(acc); bytes.Contains(b, []byte("110101199001011234")) || bytes.Contains(b, []byte("明天见")) {
		t.Errorf("the access answer holds a value: %s", b)
	}
	for _, k := range inv.Kinds {
		if k.Kind == "profile" && !containsCat(k.Categories, domicile.SpecificIdentity) {
			t.Errorf("profile categories %v lack specific-identity", k.Categories)
		}
	}
	st, _, body := s.do("POST", "/v1/subjects/li/requests?lang=zh-CN", li.Token, map[string]string{"Content-Type": "application/json"}, strings.NewReader(`{"kind":"explanation"}`))
	if st != 201 {
		t.Fatalf("explanation: %d %s", st, body)
	}
	var ex rights.Request
	json.Unmarshal(body, &ex)
	var sens *rights.CategoryBasis
	for i, b := range ex.Result.Explanation {
		if b.Category == domicile.SpecificIdentity {
			sens = &ex.Result.Explanation[i]
		}
	}
	if sens == nil || !hasRightsRule(sens.Rules, "CN.PIPL.28") || !hasRightsRule(sens.Rules, "CN.PIPL.13") || !strings.Contains(sens.Text, "其依据为") {
		t.Fatalf("explanation of specific-identity: %+v", sens)
	}
	for _, b := range ex.Result.Explanation {
		if b.Category == domicile.Personal {
			var marketing *rights.PurposeBasis
			for i := range b.Purposes {
				if b.Purposes[i].Purpose == "marketing" {
					marketing = &b.Purposes[i]
				}
			}
			if marketing == nil || marketing.Consent != "marketing" || marketing.Given {
				t.Errorf("personal data's marketing purpose: %+v; want it named, needing a consent not given", marketing)
			}
		}
	}
}

func containsCat(cs []domicile.Category, c domicile.Category) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func hasRightsRule(rs []rights.RuleRef, id string) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// seedSubject registers a CN subject with a profile (sensitive id
// number), a message and a file.
func seedSubject(t *testing.T, app *httpapi.Client, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := app.CreateSubject(ctx, id, "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := app.PutRecord(ctx, id, "profile", "main", map[string]string{"name": "李伟", "email": "li@example.cn", "id_number": "110101199001011234"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := app.PutRecord(ctx, id, "message", "m 1 ünïcode%", map[string]string{"from": id, "body": "明天见"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := app.PutObject(ctx, id, "photo.jpg", "image/jpeg", strings.NewReader("\xff\xd8 not really a photo"), 21); err != nil {
		t.Fatal(err)
	}
}

// TestRightsCopyBundle: a copy filed by the app on the subject's behalf,
// encrypted to the subject's age key, opens with Debian's age and unzip,
// its manifest and SHA256SUMS check (sha256sum -c), its files hold the
// records and objects, and its trail verifies with domicile verify. The
// app may not take a plain copy; the subject may.
func TestRightsCopyBundle(t *testing.T) {
	_, s, app := rightsServer(t)
	ctx := context.Background()
	seedSubject(t, app, "li")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := mustRequest(t, app, "li", rights.Input{Kind: rights.Copy, Recipient: id.Recipient().String()})
	if cp.State != rights.Completed || cp.Result.Bundle != "/v1/subjects/li/requests/"+cp.ID+"/bundle" || !cp.Result.Encrypted {
		t.Fatalf("copy request: %+v", cp)
	}
	var enc bytes.Buffer
	name, err := app.RequestBundle(ctx, "li", cp.ID, &enc)
	if err != nil || name != "copy-"+cp.ID+".zip.age" {
		t.Fatalf("download: %q, %v", name, err)
	}
	// Decrypt with the library, and with Debian's age where installed.
	dec, err := age.Decrypt(bytes.NewReader(enc.Bytes()), id)
	if err != nil {
		t.Fatalf("age library: %v", err)
	}
	zipBytes, _ := io.ReadAll(dec)
	encFile := filepath.Join(dir, name)
	os.WriteFile(encFile, enc.Bytes(), 0o600)
	zipFile := filepath.Join(dir, "copy.zip")
	if _, err := exec.LookPath("age"); err != nil {
		t.Log("age is not installed (Debian package age): the bundle was decrypted with filippo.io/age only")
		os.WriteFile(zipFile, zipBytes, 0o600)
	} else {
		if out, err := exec.Command("age", "-d", "-i", keyFile, "-o", zipFile, encFile).CombinedOutput(); err != nil {
			t.Fatalf("age -d: %v\n%s", err, out)
		}
		got, _ := os.ReadFile(zipFile)
		if !bytes.Equal(got, zipBytes) {
			t.Fatal("age and filippo.io/age decrypt the bundle differently")
		}
	}
	m, err := rights.VerifyBundle(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	if m.Request != cp.ID || m.Subject != "li" || m.Cell != "cn-gz1" {
		t.Errorf("manifest %+v", m)
	}
	out := filepath.Join(dir, "out")
	if _, err := exec.LookPath("unzip"); err != nil {
		t.Skip("unzip is not installed (Debian package unzip): the bundle was checked with archive/zip only")
	}
	if o, err := exec.Command("unzip", "-q", zipFile, "-d", out).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, o)
	}
	sums := exec.Command("sha256sum", "-c", "--strict", "SHA256SUMS")
	sums.Dir = out
	if o, err := sums.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, o)
	}
	photo, err := os.ReadFile(filepath.Join(out, "objects", "photo.jpg"))
	if err != nil || string(photo) != "\xff\xd8 not really a photo" {
		t.Errorf("objects/photo.jpg = %q, %v", photo, err)
	}
	var rec struct {
		ID   string            `json:"id"`
		Data map[string]string `json:"data"`
	}
	b, err := os.ReadFile(filepath.Join(out, "records", "message", "m%201%20%C3%BCn%C3%AFcode%25.json"))
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.ID != "m 1 ünïcode%" || rec.Data["body"] != "明天见" {
		t.Errorf("the message record in the bundle: %s, %v", b, err)
	}
	b, _ = os.ReadFile(filepath.Join(out, "records", "profile", "main.json"))
	if !bytes.Contains(b, []byte("110101199001011234")) {
		t.Errorf("the copy withholds the profile's id number (purpose limitation must not narrow a subject's copy): %s", b)
	}
	// The trail verifies against the cell's log with only the specs,
	// and includes this download.
	var trail rights.Trail
	b, _ = os.ReadFile(filepath.Join(out, "trail.json"))
	if err := json.Unmarshal(b, &trail); err != nil || len(trail.Events) == 0 || len(trail.Pending) != 0 {
		t.Fatalf("trail.json: %v, %d events, %d pending", err, len(trail.Events), len(trail.Pending))
	}
	last := trail.Events[len(trail.Events)-1].Event
	if last.Resource != "request/"+cp.ID+"/bundle" || last.Role != domicile.RoleApp || last.Action != domicile.ActRead {
		t.Errorf("the trail's last event is %+v, want the app's download", last)
	}
	vout, err := exec.Command(binary, "verify", "--log", s.URL+"/log/cn-gz1/", "--key", trail.Log.VerifierKey, "--events", filepath.Join(out, "trail.json"), "--state", filepath.Join(dir, "verify.state")).CombinedOutput()
	if err != nil || !strings.Contains(string(vout), "events: each commits to its event and is included in the log") {
		t.Fatalf("domicile verify --events trail.json: %v\n%s", err, vout)
	}
	// A tampered file fails the check.
	os.WriteFile(filepath.Join(out, "objects", "photo.jpg"), []byte("tampered"), 0o600)
	sums = exec.Command("sha256sum", "-c", "--quiet", "SHA256SUMS")
	sums.Dir = out
	if err := sums.Run(); err == nil {
		t.Error("sha256sum -c passed a tampered file")
	}

	// Unencrypted: the subject may take it, the app may not.
	plain := mustRequest(t, app, "li", rights.Input{Kind: rights.Copy})
	_, err = app.RequestBundle(ctx, "li", plain.ID, io.Discard)
	wantProblem(t, err, 400, "recipient")
	li := s.client(s.token("subject", "CN", "li"), "", "")
	var pz bytes.Buffer
	if name, err := li.RequestBundle(ctx, "li", plain.ID, &pz); err != nil || name != "copy-"+plain.ID+".zip" {
		t.Fatalf("the subject's plain download: %q, %v", name, err)
	}
	if _, err := rights.VerifyBundle(bytes.NewReader(pz.Bytes()), int64(pz.Len())); err != nil {
		t.Errorf("plain bundle: %v", err)
	}
	// Another subject's token reaches neither.
	if _, err := app.CreateSubject(ctx, "zhang", "CN", ""); err != nil {
		t.Fatal(err)
	}
	zhang := s.client(s.token("subject", "CN", "zhang"), "", "")
	_, err = zhang.RequestBundle(ctx, "li", plain.ID, io.Discard)
	wantProblem(t, err, 403, "")
}

// TestRightsPortabilityAndDeletion: portability to a handler abroad goes
// through the transfer gate: refused without a mechanism (the request is
// refused with the gate's reason), allowed with one (counted in the
// ledger, the download an export naming the transfer). Deletion then
// returns the crypto-shredding receipt listing the copies it cannot
// reach, with their recipients; the receipt can be fetched again without
// a token, and names no one.
func TestRightsPortabilityAndDeletion(t *testing.T) {
	clk, s, app := rightsServer(t)
	ctx := context.Background()
	seedSubject(t, app, "li")
	li := s.client(s.token("subject", "CN", "li"), "", "")
	to := &rights.Handler{Name: "Acme Analytics Inc.", Jurisdiction: "US"}
	refused := mustRequest(t, li, "li", rights.Input{Kind: rights.Portability, To: to})
	if refused.State != rights.Refused || !strings.Contains(refused.Reason, "transfer gate refused") || refused.Result != nil {
		t.Fatalf("portability abroad without a mechanism: %+v", refused)
	}
	_, err := li.RequestBundle(ctx, "li", refused.ID, io.Discard)
	wantProblem(t, err, 409, "")

	today := clk.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	sc := transfer.Mechanism{ID: "sc-port", Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-2027-001", Signed: today,
		Filed: today, FilingReference: "粤网信备-2027-001", Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"},
			Recipients: []string{"Acme Analytics Inc."}, Purposes: []string{transfer.PortabilityPurpose},
			Categories: []domicile.Category{domicile.Personal, domicile.SpecificIdentity}}}
	if _, err := s.client(s.Admin, "", "").PutMechanism(ctx, sc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cross-border", "sensitive"} {
		if _, err := li.SetConsent(ctx, "li", k, "v1", true); err != nil {
			t.Fatal(err)
		}
	}
	port := mustRequest(t, li, "li", rights.Input{Kind: rights.Portability, To: to})
	if port.State != rights.Completed || port.Result.Transfer == nil || port.Result.Transfer.Mechanism != "sc-port" {
		t.Fatalf("portability abroad with a mechanism: %+v (reason %q)", port, port.Reason)
	}
	var z bytes.Buffer
	if _, err := li.RequestBundle(ctx, "li", port.ID, &z); err != nil {
		t.Fatal(err)
	}
	if _, err := rights.VerifyBundle(bytes.NewReader(z.Bytes()), int64(z.Len())); err != nil {
		t.Fatal(err)
	}
	evs := trailOf(t, s, s.token("subject", "CN", "li"), "li")
	var export *domicile.Event
	for i := range evs {
		if evs[i].Action == domicile.ActExport {
			export = &evs[i]
		}
	}
	if export == nil || !strings.Contains(export.Detail, "transfer "+port.Result.Transfer.ID) || !strings.Contains(export.Detail, "Acme Analytics Inc.") {
		t.Fatalf("the portability download's event: %+v", export)
	}
	ledger, err := s.client(s.Admin, "", "").Ledger(ctx, 2027)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(ledger); !bytes.Contains(b, []byte(`"sc-port"`)) {
		t.Errorf("the ledger does not count the portability under sc-port: %s", b)
	}

	del := mustRequest(t, li, "li", rights.Input{Kind: rights.Deletion})
	rec := del.Result.Receipt
	if del.State != rights.Completed || rec == nil || !strings.HasPrefix(rec.ID, "rcp_") || len(rec.KeyFingerprints) == 0 || rec.Records != 2 || rec.Objects != 1 {
		t.Fatalf("deletion: %+v", del)
	}
	var gone *domicile.UnreachableCopy
	for i := range rec.Unreachable {
		if rec.Unreachable[i].Transfer == port.Result.Transfer.ID {
			gone = &rec.Unreachable[i]
		}
	}
	if gone == nil || gone.Recipient != "Acme Analytics Inc." || gone.Destination != "US" || gone.What != "portability" {
		t.Fatalf("the receipt does not list the copy moved to Acme: %+v", rec.Unreachable)
	}
	// The subject's tokens died with it; the receipt is fetched by id alone.
	if _, err := li.Requests(ctx, "li"); err == nil {
		t.Error("the erased subject's token still works")
	}
	again, err := (&httpapi.Client{Client: client.Client{BaseURL: s.URL}}).Receipt(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Subject != "" || again.LogIndex != rec.LogIndex || strings.Join(again.KeyFingerprints, ",") != strings.Join(rec.KeyFingerprints, ",") || len(again.Unreachable) != len(rec.Unreachable) {
		t.Errorf("receipt fetched again: %+v, want %+v without the subject reference", again, rec)
	}
	st, _, body := s.do("GET", "/v1/receipts/rcp_0123", "", nil, nil)
	if st != 400 || mustProblem(t, body).Field != "id" {
		t.Errorf("malformed receipt id: %d %s", st, body)
	}
	st, _, body = s.do("GET", "/v1/receipts/rcp_00000000000000000000000000000000", "", nil, nil)
	if st != 404 {
		t.Errorf("unknown receipt: %d %s", st, body)
	}
}

// TestRequestCLI drives `domicile request` through the binary: create,
// list, show, update and bundle, and a missing flag named in the error.
func TestRequestCLI(t *testing.T) {
	_, s, app := rightsServer(t)
	seedSubject(t, app, "li")
	sub := s.token("subject", "CN", "li")
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(args, "--server", s.URL)...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("domicile %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var r rights.Request
	out := run(true, "request", "create", "--subject", "li", "--kind", "correction", "--record-kind", "profile", "--record-id", "main",
		"--changes", `{"name":"李伟"}`, "--note", "typo", "--token", sub)
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.State != rights.Received || r.Deadline.Rule != "CN.PIPL.44-50" {
		t.Fatalf("request create: %v\n%s", err, out)
	}
	if out := run(true, "request", "list", "--subject", "li", "--token", sub); !strings.Contains(out, r.ID) {
		t.Errorf("request list lacks %s:\n%s", r.ID, out)
	}
	if out := run(true, "request", "update", "--subject", "li", "--id", r.ID, "--state", "completed", "--token", app.Token, "--purpose", "service"); !strings.Contains(out, `"state": "completed"`) {
		t.Errorf("request update:\n%s", out)
	}
	if out := run(true, "request", "show", "--subject", "li", "--id", r.ID, "--token", sub); !strings.Contains(out, `"state": "completed"`) {
		t.Errorf("request show:\n%s", out)
	}
	out = run(true, "request", "create", "--subject", "li", "--kind", "copy", "--token", sub)
	json.Unmarshal([]byte(out), &r)
	dir := t.TempDir()
	file := filepath.Join(dir, "copy.zip")
	run(true, "request", "bundle", "--subject", "li", "--id", r.ID, "--out", file, "--token", sub)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rights.VerifyBundle(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Errorf("the bundle the CLI wrote: %v", err)
	}
	if out := run(false, "request", "show", "--subject", "li", "--token", sub); !strings.Contains(out, "--id is required") {
		t.Errorf("a missing flag is not named:\n%s", out)
	}
	if out := run(false, "request", "create", "--subject", "li", "--kind", "copy", "--recipient", "nope", "--token", sub); !strings.Contains(out, "recipient") {
		t.Errorf("a bad recipient is not named:\n%s", out)
	}
}
