package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"domicile/client"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"domicile/httpapi"
)

const app = "service"

// TestWalkthrough is the README's walk-through: register a CN subject,
// store a message and a photo, read them back, and fail to place that
// subject outside China.
func TestWalkthrough(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")

	sub, err := c.CreateSubject(ctx, "alice", "CN", "")
	if err != nil {
		t.Fatal(err)
	}
	if sub.Cell != "cn-gz1" {
		t.Fatalf("CN subject placed in %s, want cn-gz1", sub.Cell)
	}
	msg := map[string]string{"from": "alice", "to": "bob", "body": "你好"}
	rec, err := c.PutRecord(ctx, "alice", "message", "m1", msg, "")
	if err != nil || rec.Version != 1 {
		t.Fatalf("PutRecord = %+v, %v", rec, err)
	}
	got, err := c.GetRecord(ctx, "alice", "message", "m1")
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	json.Unmarshal(got.Data, &back)
	if back["body"] != "你好" {
		t.Fatalf("GetRecord data = %s", got.Data)
	}
	photo := make([]byte, 300<<10)
	rand.Read(photo)
	o, err := c.PutObject(ctx, "alice", "photo1.jpg", "image/jpeg", bytes.NewReader(photo), int64(len(photo)))
	if err != nil || o.Size != int64(len(photo)) {
		t.Fatalf("PutObject = %+v, %v", o, err)
	}
	resp, err := c.GetObject(ctx, "alice", "photo1.jpg", "")
	if err != nil {
		t.Fatal(err)
	}
	down, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(down, photo) || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GetObject returned %d bytes (%s), want the photo", len(down), resp.Header.Get("Content-Type"))
	}
	// A range across a chunk boundary.
	resp, err = c.GetObject(ctx, "alice", "photo1.jpg", "bytes=65530-65545")
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(part, photo[65530:65546]) {
		t.Fatalf("range read: status %d, %d bytes", resp.StatusCode, len(part))
	}
	// Placing the same subject (or another CN subject) outside China fails.
	_, err = c.CreateSubject(ctx, "alice-us", "CN", "us-east1")
	var pe *client.ProblemError
	if !errors.As(err, &pe) || pe.Status != 403 || pe.Code != "residency-forbidden" || pe.Field != "cell" {
		t.Fatalf("placing a CN subject in us-east1: %v, want 403 residency-forbidden", err)
	}
	if _, err := c.GetSubject(ctx, "alice-us"); !isStatus(err, 404) {
		t.Fatalf("refused subject exists afterwards: %v", err)
	}
	// EU member states live in eu-fra1; HK is not CN.
	for id, want := range map[string]string{"de1": "eu-fra1", "hk1": "us-east1", "us1": "us-east1"} {
		j := strings.ToUpper(id[:2])
		sub, err := c.CreateSubject(ctx, id, j, "")
		if err != nil || sub.Cell != want {
			t.Errorf("subject of %s placed in %v (%v), want %s", j, sub.Cell, err, want)
		}
	}
}

func isStatus(err error, status int) bool {
	var pe *client.ProblemError
	return errors.As(err, &pe) && pe.Status == status
}

// TestBadInput sends each kind of bad input, checks the status and the
// problem document, and reads back to prove nothing changed.
func TestBadInput(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	appTok := s.token("app", "CN", "")
	c := s.client(appTok, app, "")
	if _, err := c.CreateSubject(ctx, "alice", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, "alice", "message", "m1", map[string]string{"body": "original"}, ""); err != nil {
		t.Fatal(err)
	}
	// A subject whose id has an accent, composed (NFC).
	if _, err := c.CreateSubject(ctx, "jos\u00e9", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "alice", "empty.txt", "text/plain", strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	admin := s.client(s.Admin, "", "")
	// A token that expires at once (any positive ttl is allowed), and a
	// revoked one.
	expired, err := admin.CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: "CN", TTL: "1ns"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := admin.CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: "CN"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeToken(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	tokensBefore, err := admin.ListTokens(ctx, client.TokenListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	appH := map[string]string{"Domicile-Purpose": app, "Content-Type": "application/json"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	big := strings.Repeat("x", 2<<20)
	tests := []struct {
		name, method, path, token string
		hdr                       map[string]string
		body                      string
		status                    int
		code, field               string
	}{
		{"malformed JSON", "PUT", "/v1/subjects/alice/records/message/m1", appTok, appH, `{"body":`, 400, "invalid", ""},
		{"record not an object", "PUT", "/v1/subjects/alice/records/message/m1", appTok, appH, `["x"]`, 400, "invalid", ""},
		{"undeclared field", "PUT", "/v1/subjects/alice/records/message/m1", appTok, appH, `{"body":"x","mood":"sad"}`, 400, "invalid", "mood"},
		{"unknown kind", "PUT", "/v1/subjects/alice/records/diary/m1", appTok, appH, `{"body":"x"}`, 404, "not-found", "kind"},
		{"record too large", "PUT", "/v1/subjects/alice/records/message/m1", appTok, appH, `{"body":"` + big + `"}`, 413, "too-large", ""},
		{"wrong content type", "PUT", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "Content-Type", "text/plain"), `{"body":"x"}`, 415, "unsupported-media", ""},
		{"stale If-Match", "PUT", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-Match", `"v7"`), `{"body":"x"}`, 412, "precondition-failed", ""},
		{"malformed If-Match", "PUT", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-Match", `abc`), `{"body":"x"}`, 400, "invalid", "If-Match"},
		{"If-None-Match on existing", "PUT", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-None-Match", "*"), `{"body":"x"}`, 412, "precondition-failed", ""},
		{"record id with control char", "PUT", "/v1/subjects/alice/records/message/m%01", appTok, appH, `{"body":"x"}`, 400, "invalid", "recordID"},
		{"record id with separator", "PUT", "/v1/subjects/alice/records/message/a%2Fb", appTok, appH, `{"body":"x"}`, 400, "invalid", "recordID"},
		{"record id too long", "PUT", "/v1/subjects/alice/records/message/" + strings.Repeat("r", 257), appTok, appH, `{"body":"x"}`, 400, "invalid", "recordID"},
		{"subject id with separator", "POST", "/v1/subjects", appTok, appH, `{"id":"a/b","jurisdiction":"CN"}`, 400, "invalid", "id"},
		{"subject id too long", "POST", "/v1/subjects", appTok, appH, `{"id":"` + strings.Repeat("s", 257) + `","jurisdiction":"CN"}`, 400, "invalid", "id"},
		{"unknown jurisdiction", "POST", "/v1/subjects", appTok, appH, `{"id":"zed","jurisdiction":"XX"}`, 400, "invalid", "jurisdiction"},
		{"lower-case jurisdiction", "POST", "/v1/subjects", appTok, appH, `{"id":"zed","jurisdiction":"cn"}`, 400, "invalid", "jurisdiction"},
		{"unknown field in subject", "POST", "/v1/subjects", appTok, appH, `{"id":"zed","jurisdiction":"CN","home":"x"}`, 400, "invalid", "home"},
		{"wrong type", "POST", "/v1/subjects", appTok, appH, `{"id":7,"jurisdiction":"CN"}`, 400, "invalid", "id"},
		{"unknown cell", "POST", "/v1/subjects", appTok, appH, `{"id":"zed","jurisdiction":"CN","cell":"mars1"}`, 400, "invalid", "cell"},
		{"forbidden cell", "POST", "/v1/subjects", appTok, appH, `{"id":"zed","jurisdiction":"CN","cell":"eu-fra1"}`, 403, "residency-forbidden", "cell"},
		{"duplicate subject", "POST", "/v1/subjects", appTok, appH, `{"id":"alice","jurisdiction":"CN"}`, 409, "conflict", ""},
		{"no token", "GET", "/v1/subjects/alice/records/message/m1", "", nil, "", 401, "unauthorized", ""},
		{"unknown token", "GET", "/v1/subjects/alice/records/message/m1", "dmc_nope", appH, "", 401, "unauthorized", ""},
		{"missing purpose", "GET", "/v1/subjects/alice/records/message/m1", appTok, nil, "", 400, "invalid", "Domicile-Purpose"},
		{"undeclared purpose", "GET", "/v1/subjects/alice/records/message/m1", appTok, map[string]string{"Domicile-Purpose": "resale"}, "", 400, "invalid", "Domicile-Purpose"},
		{"wrong role creates tokens", "POST", "/v1/tokens", appTok, appH, `{"role":"app","jurisdiction":"CN"}`, 403, "forbidden", ""},
		{"bad role", "POST", "/v1/tokens", s.Admin, appH, `{"role":"root","jurisdiction":"CN"}`, 400, "invalid", "role"},
		{"bad object name", "PUT", "/v1/subjects/alice/objects/.hidden", appTok, with(appH, "Content-Type", "image/png"), "x", 400, "invalid", "name"},
		{"object without content type", "PUT", "/v1/subjects/alice/objects/p.png", appTok, map[string]string{"Domicile-Purpose": app}, "x", 415, "unsupported-media", ""},
		{"bad limit", "GET", "/v1/subjects/alice/records?limit=5000", appTok, appH, "", 400, "invalid", "limit"},
		{"bad cursor", "GET", "/v1/subjects/alice/records?cursor=!!!", appTok, appH, "", 400, "invalid", "cursor"},
		{"unknown subject", "GET", "/v1/subjects/nobody/records/message/m1", appTok, appH, "", 404, "not-found", ""},
		{"unknown route", "GET", "/v1/nothing", appTok, appH, "", 404, "not-found", ""},

		// Ids that look like another, or hide what they are.
		{"record id with a bidi override", "PUT", "/v1/subjects/alice/records/message/m1%E2%80%AEtxt", appTok, appH, `{"body":"x"}`, 400, "invalid", "recordID"},
		{"record id with a zero-width space", "PUT", "/v1/subjects/alice/records/message/m%E2%80%8B1", appTok, appH, `{"body":"x"}`, 400, "invalid", "recordID"},
		{"record id with invalid UTF-8", "PUT", "/v1/subjects/alice/records/message/m%FF1", appTok, appH, `{"body":"x"}`, 400, "invalid", "recordID"},
		{"reading a record id with a bidi isolate", "GET", "/v1/subjects/alice/records/message/m%E2%81%A61", appTok, appH, "", 400, "invalid", "recordID"},
		{"subject id with a zero-width joiner", "POST", "/v1/subjects", appTok, appH, `{"id":"al\u200dice","jurisdiction":"CN"}`, 400, "invalid", "id"},
		{"subject id with a bidi isolate", "POST", "/v1/subjects", appTok, appH, `{"id":"\u2066zed\u2069","jurisdiction":"CN"}`, 400, "invalid", "id"},
		{"subject id in the path with a BOM", "GET", "/v1/subjects/%EF%BB%BFalice", appTok, appH, "", 400, "invalid", "id"},
		{"decomposed twin of a subject", "POST", "/v1/subjects", appTok, appH, `{"id":"jose\u0301","jurisdiction":"CN"}`, 409, "conflict", ""},
		{"invalid UTF-8 in a JSON id", "POST", "/v1/subjects", appTok, appH, "{\"id\":\"ze\xffd\",\"jurisdiction\":\"CN\"}", 400, "invalid", "id"},
		{"invalid UTF-8 in a record", "PUT", "/v1/subjects/alice/records/message/m1", appTok, appH, "{\"body\":\"x\xc3\"}", 400, "invalid", "body"},
		{"duplicate JSON key", "POST", "/v1/subjects", appTok, appH, `{"id":"zed","id":"zed2","jurisdiction":"CN"}`, 400, "invalid", "id"},
		{"duplicate key in a record", "PUT", "/v1/subjects/alice/records/message/m1", appTok, appH, `{"body":"x","body":"y"}`, 400, "invalid", "body"},
		{"duplicate key in a token request", "POST", "/v1/tokens", s.Admin, appH, `{"role":"auditor","role":"admin","jurisdiction":"CN"}`, 400, "invalid", "role"},

		// Conditional requests (RFC 9110 section 13).
		{"If-Match a tag never given", "PUT", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-Match", `"stale"`), `{"body":"x"}`, 412, "precondition-failed", ""},
		{"weak If-Match", "PUT", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-Match", `W/"v1"`), `{"body":"x"}`, 412, "precondition-failed", ""},
		{"an object's tag on a record", "PUT", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-Match", `"v1-0123456789abcdef"`), `{"body":"x"}`, 412, "precondition-failed", ""},
		{"If-Match * on a record that does not exist", "PUT", "/v1/subjects/alice/records/message/new", appTok, with(appH, "If-Match", "*"), `{"body":"x"}`, 412, "precondition-failed", ""},
		{"stale If-Match on a delete", "DELETE", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-Match", `"stale"`), "", 412, "precondition-failed", ""},
		{"If-Match stale on a read", "GET", "/v1/subjects/alice/records/message/m1", appTok, with(appH, "If-Match", `"v9"`), "", 412, "precondition-failed", ""},
		{"a range from the first byte of an empty object", "GET", "/v1/subjects/alice/objects/empty.txt", appTok, with(appH, "Range", "bytes=0-"), "", 416, "range-not-satisfiable", ""},

		// Tokens.
		{"expired token", "GET", "/v1/subjects/alice/records/message/m1", expired.Token, appH, "", 401, "unauthorized", ""},
		{"revoked token", "GET", "/v1/subjects/alice/records/message/m1", revoked.Token, appH, "", 401, "unauthorized", ""},
		{"ttl of zero", "POST", "/v1/tokens", s.Admin, appH, `{"role":"app","jurisdiction":"CN","ttl":"0s"}`, 400, "invalid", "ttl"},
		{"negative ttl", "POST", "/v1/tokens", s.Admin, appH, `{"role":"app","jurisdiction":"CN","ttl":"-1h"}`, 400, "invalid", "ttl"},
		{"ttl not a duration", "POST", "/v1/tokens", s.Admin, appH, `{"role":"app","jurisdiction":"CN","ttl":"30d"}`, 400, "invalid", "ttl"},
		{"ttl over the maximum", "POST", "/v1/tokens", s.Admin, appH, `{"role":"app","jurisdiction":"CN","ttl":"100000h"}`, 400, "invalid", "ttl"},
		{"note with a bidi override", "POST", "/v1/tokens", s.Admin, appH, `{"role":"app","jurisdiction":"CN","note":"a\u202eb"}`, 400, "invalid", "note"},
		{"note too long", "POST", "/v1/tokens", s.Admin, appH, `{"role":"app","jurisdiction":"CN","note":"` + strings.Repeat("n", 257) + `"}`, 400, "invalid", "note"},
		{"revoking an unknown token", "DELETE", "/v1/tokens/tok_000000000000", s.Admin, nil, "", 404, "not-found", ""},
		{"an app listing tokens", "GET", "/v1/tokens", appTok, appH, "", 403, "forbidden", ""},
		{"an app reading the control log", "GET", "/v1/control/log", appTok, appH, "", 403, "forbidden", ""},
		{"bad control log position", "GET", "/v1/control/log?after=-1", s.Admin, nil, "", 400, "invalid", "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			status, h, b := s.do(tt.method, tt.path, tt.token, tt.hdr, body)
			if status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, status, b, tt.status)
			}
			if ct := h.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q, want application/problem+json", ct)
			}
			p := mustProblem(t, b)
			if p.Code != tt.code || p.Field != tt.field || p.Type != client.ProblemTypePrefix+tt.code || p.Detail == "" {
				t.Fatalf("problem = %+v, want code %q field %q", p, tt.code, tt.field)
			}
		})
	}
	// Nothing changed: the record is as it was, and no refused subject exists.
	got, err := c.GetRecord(ctx, "alice", "message", "m1")
	if err != nil || got.Version != 1 || !strings.Contains(string(got.Data), "original") {
		t.Fatalf("after bad input the record is %+v, %v; want version 1, original", got, err)
	}
	for _, id := range []string{"zed", "a/b"} {
		if _, err := c.GetSubject(ctx, id); err == nil {
			t.Errorf("subject %q exists after a refused registration", id)
		}
	}
	page, err := c.ListRecords(ctx, "alice", "", 0, "")
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("records after bad input: %+v, %v", page, err)
	}
	if _, err := c.GetObject(ctx, "alice", "p.png", ""); !isStatus(err, 404) {
		t.Fatalf("object written despite refusal: %v", err)
	}
	// The decomposed spelling names the one subject registered composed.
	if sub, err := c.GetSubject(ctx, "jose\u0301"); err != nil || sub.ID != "jos\u00e9" {
		t.Errorf("the decomposed spelling reads %+v, %v; want the composed subject", sub, err)
	}
	for _, id := range []string{"zed2"} {
		if _, err := c.GetSubject(ctx, id); err == nil {
			t.Errorf("subject %q exists after a refused registration", id)
		}
	}
	if _, err := c.GetRecord(ctx, "alice", "message", "new"); !isStatus(err, 404) {
		t.Errorf("If-Match * created a record: %v", err)
	}
	tokensAfter, err := admin.ListTokens(ctx, client.TokenListOptions{Limit: 1000})
	if err != nil || len(tokensAfter.Tokens) != len(tokensBefore.Tokens) {
		t.Errorf("%d tokens after the refused token requests, %d before", len(tokensAfter.Tokens), len(tokensBefore.Tokens))
	}
}

// TestActors checks role and subject confinement and jurisdiction-bound
// tokens.
func TestActors(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	for _, id := range []string{"alice", "bob"} {
		if _, err := c.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutRecord(ctx, id, "profile", "p", map[string]string{"name": id}, ""); err != nil {
			t.Fatal(err)
		}
	}
	alice := s.client(s.token("subject", "CN", "alice"), "", "")
	if r, err := alice.GetRecord(ctx, "alice", "profile", "p"); err != nil || !strings.Contains(string(r.Data), "alice") {
		t.Fatalf("subject token reading its own record: %v", err)
	}
	if _, err := alice.GetRecord(ctx, "bob", "profile", "p"); !isStatus(err, 403) {
		t.Fatalf("subject token reading another subject: %v, want 403", err)
	}
	// Probing other ids tells a subject token nothing: a registered
	// subject and an unknown id are refused alike.
	_, errKnown := alice.GetRecord(ctx, "bob", "profile", "p")
	_, errUnknown := alice.GetRecord(ctx, "nobody-at-all", "profile", "p")
	if !isStatus(errKnown, 403) || !isStatus(errUnknown, 403) || errKnown.Error() != errUnknown.Error() {
		t.Fatalf("probing: registered %v, unknown %v; want the same 403", errKnown, errUnknown)
	}
	if _, err := s.client(s.Admin, "", "").GetSubject(ctx, "nobody-at-all"); !isStatus(err, 403) {
		t.Fatalf("admin probing an unknown id: %v, want 403", err)
	}
	if _, err := alice.PutRecord(ctx, "alice", "profile", "p", map[string]string{"name": "Alice L."}, ""); err != nil {
		t.Fatalf("subject correcting its own record: %v", err)
	}
	admin := s.client(s.Admin, "", "")
	if _, err := admin.GetRecord(ctx, "alice", "profile", "p"); !isStatus(err, 403) {
		t.Fatalf("admin reading subject data: %v, want 403 (admin is not a backdoor)", err)
	}
	// A refused actor learns nothing of an object, not even its size.
	if _, err := c.PutObject(ctx, "alice", "scan.png", "image/png", strings.NewReader("12345"), 5); err != nil {
		t.Fatal(err)
	}
	status, h, body := s.do("GET", "/v1/subjects/alice/objects/scan.png", s.Admin, map[string]string{"Range": "bytes=100-"}, nil)
	if status != 403 || h.Get("Content-Range") != "" || strings.Contains(string(body), "5 bytes") {
		t.Fatalf("admin asking a range of an object: %d %q %s, want 403 and no size", status, h.Get("Content-Range"), body)
	}
	status, h, _ = s.do("GET", "/v1/subjects/alice/objects/scan.png", s.token("app", "CN", ""), map[string]string{"Range": "bytes=100-", "Domicile-Purpose": app}, nil)
	if status != 416 || h.Get("Content-Range") != "bytes */5" {
		t.Fatalf("unsatisfiable range for the app: %d %q, want 416 bytes */5", status, h.Get("Content-Range"))
	}
	auditor := s.client(s.token("auditor", "DE", ""), "", "")
	if _, err := auditor.GetRecord(ctx, "alice", "profile", "p"); !isStatus(err, 403) {
		t.Fatalf("auditor reading subject data: %v, want 403", err)
	}
	opTok := s.token("operator", "CN", "")
	if _, err := s.client(opTok, "", "").GetRecord(ctx, "alice", "profile", "p"); !isStatus(err, 403) {
		t.Fatalf("operator without justification: %v, want 403 (refused and logged by the cell)", err)
	}
	if _, err := s.client(opTok, "", "curiosity").GetRecord(ctx, "alice", "profile", "p"); !isStatus(err, 400) {
		t.Fatalf("operator with a reason off the closed list: %v, want 400", err)
	}
	op := s.client(opTok, "", "support TICKET-123")
	if _, err := op.GetRecord(ctx, "alice", "profile", "p"); err != nil {
		t.Fatalf("operator with justification: %v", err)
	}
	if _, err := op.PutRecord(ctx, "alice", "profile", "p", map[string]string{"name": "x"}, ""); !isStatus(err, 403) {
		t.Fatalf("operator writing: %v, want 403", err)
	}
	// A token acts from its jurisdiction: created for US, it says US.
	usTok, err := admin.CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: "US"})
	if err != nil || usTok.Jurisdiction != "US" {
		t.Fatalf("US token: %+v, %v", usTok, err)
	}
	if _, err := admin.CreateToken(ctx, client.TokenRequest{Role: "subject", Jurisdiction: "CN"}); !isStatus(err, 400) {
		t.Fatalf("subject token without subject: %v, want 400", err)
	}
}

// TestMetrics checks that /metrics shows the requests just made, by route,
// cell and outcome, and no subject id, on each embedded store.
func TestMetrics(t *testing.T) {
	for _, kind := range []string{kindPebble, kindSQLite} {
		t.Run(kind, func(t *testing.T) { testMetrics(t, kind) })
	}
}

func testMetrics(t *testing.T, kind string) {
	dep := filepath.Join(t.TempDir(), "deployment.yaml")
	yaml := benchDeploymentYAML(kind)
	if kind == kindPebble {
		// One cell bounds its Pebble memory; the others take the default.
		yaml = bytes.Replace(yaml, []byte("store: {kind: pebble}"), []byte("store: {kind: pebble, memory_mib: 40}"), 1)
	}
	if err := os.WriteFile(dep, yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", "--deployment", dep)
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	c.CreateSubject(ctx, "metric-subject-1", "CN", "")
	for i := 0; i < 3; i++ {
		c.PutRecord(ctx, "metric-subject-1", "message", fmt.Sprint(i), map[string]string{"body": "x"}, "")
	}
	c.GetRecord(ctx, "metric-subject-1", "message", "missing")
	_, _, b := s.do("GET", "/metrics", "", nil, nil)
	m := string(b)
	for _, want := range []string{
		`domicile_requests_total{cell="cn-gz1",outcome="ok",route="PUT /v1/subjects/{id}/records/{kind}/{rid}"} 3`,
		`domicile_requests_total{cell="cn-gz1",outcome="refused",route="GET /v1/subjects/{id}/records/{kind}/{rid}"} 1`,
		`domicile_request_duration_seconds_bucket{route="POST /v1/subjects"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, "metric-subject-1") {
		t.Error("/metrics holds a subject id")
	}
	// The cell store's commit counters: at least the subject and the three
	// writes were committed, each in a batch of its own or shared.
	val := func(name string) float64 {
		t.Helper()
		mm := regexp.MustCompile(`(?m)^` + name + `\{cell="cn-gz1"\} (\S+)$`).FindStringSubmatch(m)
		if mm == nil {
			t.Fatalf("/metrics lacks %s for cn-gz1", name)
		}
		v, err := strconv.ParseFloat(mm[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	commits, batches := val("domicile_store_commits_total"), val("domicile_store_committed_batches_total")
	busy, commit := val("domicile_store_writer_busy_seconds_total"), val("domicile_store_commit_seconds_total")
	if commits < 1 || batches < 4 || busy <= 0 || commit <= 0 {
		t.Errorf("store counters: %v commits, %v batches, %vs busy, %vs committing", commits, batches, busy, commit)
	}
	// SQLite's single writer commits groups of batches, and its commits
	// are part of its busy time. Pebble's commits are its WAL fsyncs,
	// which also carry writes that are no batch (the log's checkpoints),
	// and its busy time is only the serial part before them
	// (pebblestore.Store.CommitStats).
	if kind == kindSQLite && (batches < commits || commit > busy) {
		t.Errorf("SQLite store counters: %v commits of %v batches, %vs committing in %vs busy; want groups of batches, and commits within busy", commits, batches, commit, busy)
	}
	// Pebble's memory, outside the Go heap: the bound the deployment file
	// gave the first cell (cn-gz1), which is its block cache's size, and
	// what the cache and the memtables hold within it. SQLite reports none.
	if kind == kindSQLite {
		if strings.Contains(m, "domicile_store_memory_bound_bytes") || strings.Contains(m, "domicile_store_memtable_bytes") {
			t.Error("/metrics reports Pebble memory for a SQLite store")
		}
		return
	}
	bound, capacity := val("domicile_store_memory_bound_bytes"), val("domicile_store_block_cache_capacity_bytes")
	cache, mem, tables := val("domicile_store_block_cache_bytes"), val("domicile_store_memtable_bytes"), val("domicile_store_memtables")
	if bound != 40<<20 || capacity != bound {
		t.Errorf("cn-gz1 Pebble memory bound %v, block cache %v; want both %d (memory_mib: 40)", bound, capacity, 40<<20)
	}
	if tables < 1 || mem <= 0 || cache < 0 || cache+mem > bound+bound/64 {
		t.Errorf("cn-gz1 Pebble memory: cache holds %v, %v memtables hold %v, against a bound of %v", cache, tables, mem, bound)
	}
	if !regexp.MustCompile(`(?m)^domicile_store_memory_bound_bytes\{cell="eu-fra1"\} 6\.7108864e\+07$`).MatchString(m) {
		t.Errorf("eu-fra1 (no memory_mib) does not report the default bound of 64 MiB:\n%s", regexp.MustCompile(`(?m)^domicile_store_memory_bound_bytes.*$`).FindAllString(m, -1))
	}
}

// TestOpenAPICoversRoutes fails when a route the server registers is
// missing from the OpenAPI document.
func TestOpenAPICoversRoutes(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := openRuntime(context.Background(), t.TempDir(), mustDefault(), time.Now, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	lg, err := startLogs(context.Background(), rt, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	srv, err := newServer(rt, lg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+param.ReplaceAllString(p, "{}")] = true
		}
	}
	pats := srv.Patterns()
	if len(pats) < 10 {
		t.Fatalf("only %d routes registered", len(pats))
	}
	for _, p := range pats {
		key := param.ReplaceAllString(strings.TrimSuffix(p, "{rest...}"), "{}")
		key = strings.ReplaceAll(key, "{...}", "{}")
		if !documented[key] {
			t.Errorf("route %q is not in the OpenAPI document (httpapi/openapi.json)", p)
		}
	}
	// And the server serves that document.
	s := startServer(t, "")
	_, _, b := s.do("GET", "/v1/openapi.json", "", nil, nil)
	if !bytes.Equal(b, httpapi.OpenAPI()) {
		t.Error("GET /v1/openapi.json differs from the embedded document")
	}
}

// TestCrashKeepsAcknowledgedWrites kills the server with SIGKILL during a
// stream of writes and checks, after a restart, that every acknowledged
// write is there, whole.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	if _, err := c.CreateSubject(ctx, "crash", "CN", ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]int64{} // record id -> acknowledged version
	var objAcked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i%20)
				r, err := c.PutRecord(ctx, "crash", "message", id, map[string]string{"body": fmt.Sprintf("%s-%d", id, i)}, "")
				if err != nil {
					return // the server died
				}
				mu.Lock()
				if r.Version > acked[id] {
					acked[id] = r.Version
				}
				mu.Unlock()
				if w == 0 && i%10 == 0 {
					if _, err := c.PutObject(ctx, "crash", fmt.Sprintf("o%d.bin", i), "application/octet-stream", bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 100<<10)), 100<<10); err == nil {
						objAcked.Store(int64(i) + 1)
					}
				}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	s.Kill()
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}
	s2 := startServer(t, data)
	c2 := s2.client(tok, app, "")
	for id, v := range acked {
		r, err := c2.GetRecord(ctx, "crash", "message", id)
		if err != nil {
			t.Fatalf("acknowledged record %s lost: %v", id, err)
		}
		if r.Version < v {
			t.Fatalf("record %s at version %d after restart, acknowledged %d", id, r.Version, v)
		}
	}
	for i := int64(0); i < objAcked.Load(); i += 10 {
		resp, err := c2.GetObject(ctx, "crash", fmt.Sprintf("o%d.bin", i), "")
		if err != nil {
			t.Fatalf("acknowledged object o%d.bin lost: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(b, bytes.Repeat([]byte{byte(i)}, 100<<10)) {
			t.Fatalf("object o%d.bin after restart: %d bytes, %v", i, len(b), err)
		}
	}
	t.Logf("%d records and %d objects acknowledged before SIGKILL, all present after restart", len(acked), objAcked.Load()/10+1)
}

// TestResidencyOnDisk writes a unique marker for a CN subject as a record
// and an object, then scans every file under the data directory: the
// marker appears nowhere (it is sealed), and the subject's object blobs
// exist under cn-gz1's storage only.
func TestResidencyOnDisk(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	ctx := context.Background()
	c := s.client(s.token("app", "CN", ""), app, "")
	marker := fmt.Sprintf("MARKER-%x", time.Now().UnixNano())
	if _, err := c.CreateSubject(ctx, "li.wei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, "li.wei", "profile", "main", map[string]string{"name": marker, "id_number": marker}, ""); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte(marker+"\n"), 20000)
	if _, err := c.PutObject(ctx, "li.wei", "scan.txt", "text/plain", bytes.NewReader(payload), int64(len(payload))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRecord(ctx, "li.wei", "profile", "main"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	blobCells := map[string]int{}
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(data, p)
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("marker found in plaintext in %s", rel)
		}
		if bytes.Contains(b, []byte("li.wei")) {
			t.Errorf("raw subject id found in %s", rel)
		}
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) > 2 && parts[1] == "blobs" && parts[2] != "tmp" {
			blobCells[parts[0]]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if blobCells["cn-gz1"] != 1 || len(blobCells) != 1 {
		t.Fatalf("object blobs by cell: %v, want one under cn-gz1 only", blobCells)
	}
}

// TestCLI drives the client subcommands of the real binary against a
// running server.
func TestCLI(t *testing.T) {
	s := startServer(t, "")
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "DOMICILE_SERVER="+s.URL)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return out.String() + errb.String(), err
		}
		return out.String(), nil
	}
	out, err := run("", "token", "create", "--data", s.Data, "--role", "app", "--jurisdiction", "CN")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	var tok client.TokenResponse
	json.Unmarshal([]byte(out), &tok)
	if tok.Token == "" {
		t.Fatalf("token create printed %s", out)
	}
	a := []string{"--token", tok.Token, "--purpose", app}
	steps := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"subject", "create", "--id", "wang", "--jurisdiction", "CN"}, `"cell": "cn-gz1"`},
		{"", []string{"record", "put", "--subject", "wang", "--kind", "message", "--id", "m1", "--json", `{"body":"hello"}`}, `"version": 1`},
		{`{"body":"hello again"}`, []string{"record", "put", "--subject", "wang", "--kind", "message", "--id", "m1", "--json", "-", "--if-match", `"v1"`}, `"version": 2`},
		{"", []string{"record", "get", "--subject", "wang", "--kind", "message", "--id", "m1"}, "hello again"},
		{"", []string{"record", "list", "--subject", "wang"}, `"m1"`},
		{"photo-bytes", []string{"object", "put", "--subject", "wang", "--name", "p.jpg", "--type", "image/jpeg", "--file", "-"}, `"size": 11`},
		{"", []string{"object", "get", "--subject", "wang", "--name", "p.jpg"}, "photo-bytes"},
		{"", []string{"subject", "get", "--id", "wang"}, `"jurisdiction": "CN"`},
	}
	for _, st := range steps {
		out, err := run(st.stdin, append(st.args, a...)...)
		if err != nil || !strings.Contains(out, st.want) {
			t.Fatalf("domicile %s: %v\n%s\nwant %s", strings.Join(st.args, " "), err, out, st.want)
		}
	}
	// The cells and their public log keys, with no token.
	if out, err := run("", "cells", "--log-key", "cn-gz1"); err != nil || !strings.HasPrefix(out, "domicile/demo/cn-gz1+") {
		t.Fatalf("cells --log-key: %v\n%s", err, out)
	}
	if out, err := run("", "cells"); err != nil || !strings.Contains(out, "Guangzhou Demo Cloud") {
		t.Fatalf("cells: %v\n%s", err, out)
	}
	// A bad input names the field.
	out, err = run("", append([]string{"subject", "create", "--id", "x", "--jurisdiction", "ZZ"}, a...)...)
	if err == nil || !strings.Contains(out, "jurisdiction") {
		t.Fatalf("bad jurisdiction: %v\n%s", err, out)
	}
	out, err = run("", "record", "get", "--subject", "wang", "--kind", "message")
	if err == nil || !strings.Contains(out, "--id is required") {
		t.Fatalf("missing flag: %v\n%s", err, out)
	}
	out, err = run("", append([]string{"object", "put", "--subject", "wang", "--name", "e.jpg", "--file", "-"}, a...)...)
	if err != nil {
		t.Fatalf("empty object: %v\n%s", err, out)
	}
	// The right to deletion: erase, then nothing is there.
	if out, err := run("", append([]string{"subject", "erase", "--id", "wang"}, a...)...); err != nil || !strings.Contains(out, "key_fingerprints") {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if out, err := run("", append([]string{"record", "get", "--subject", "wang", "--kind", "message", "--id", "m1"}, a...)...); err == nil {
		t.Fatalf("record readable after erasure:\n%s", out)
	}
	_ = http.StatusOK
}
