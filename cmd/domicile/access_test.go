package main

import (
	"bytes"
	"context"
	"domicile/client"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"domicile"
	"domicile/httpapi"
	"domicile/rights"
	"domicile/transfer"
)

// actorSpec is one actor of the access table: a token and the headers it
// sends.
type actorSpec struct {
	name    string
	role    string
	jur     string
	subject string
	purpose string
	justify string
}

// The actors every route is tried with. The subject under test is li (CN,
// homed in cn-gz1); zhang is another subject.
var tableActors = []actorSpec{
	{name: "app-home", role: "app", jur: "CN", purpose: "service"},
	{name: "app-abroad", role: "app", jur: "US", purpose: "service"},      // no mechanism covers purpose service
	{name: "app-abroad-mech", role: "app", jur: "US", purpose: "support"}, // a standard contract covers support, personal data only
	{name: "operator", role: "operator", jur: "CN", justify: "support T-1"},
	{name: "operator-bare", role: "operator", jur: "CN"}, // no justification
	{name: "authority", role: "authority", jur: "CN", justify: "lawful-request-domestic REF-1"},
	{name: "authority-foreign", role: "authority", jur: "US", justify: "lawful-request-foreign MLA-1"},
	{name: "auditor", role: "auditor", jur: "DE"},
	{name: "admin", role: "admin"},
	{name: "subject", role: "subject", jur: "CN", subject: "li"},
	{name: "other-subject", role: "subject", jur: "CN", subject: "zhang"},
}

// row is one route of the OpenAPI document: how to try it, and for each
// actor the status expected. subject routes must leave exactly one event
// per attempt in li's trail; the others none.
type row struct {
	method, pattern string
	// path is the concrete path tried ({id} is li unless the row says).
	path string
	// body and contentType of the request, if any.
	body, contentType string
	// subject is true for the routes that reach li's data or metadata.
	subject bool
	// want maps actor names to statuses; def is the status of the others.
	want map[string]int
	def  int
	// fresh, if set, prepares a fresh target for each actor (deletes) and
	// returns the path to try.
	fresh func(t *testing.T, actor string) string
}

// TestAccessTable tries every route of the OpenAPI document with every kind
// of actor and checks the status, and that each attempt on the subject
// leaves exactly one access event in its trail (key unwraps aside: they
// are the custodian's own events) and other routes none. A route in the
// OpenAPI document without a row fails the test.
func TestAccessTable(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	admin := s.client(s.Admin, "", "")
	home := s.client(s.token("app", "CN", ""), "service", "")
	for _, id := range []string{"li", "zhang"} {
		if _, err := home.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := home.PutRecord(ctx, "li", "profile", "main", map[string]string{"name": "李伟", "email": "li@example.cn", "id_number": "110101199001011234"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := home.PutRecord(ctx, "li", "message", "m1", map[string]string{"from": "li", "body": "明天见"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := home.PutObject(ctx, "li", "photo.txt", "text/plain", strings.NewReader("not really a photo"), 18); err != nil {
		t.Fatal(err)
	}
	// li consents to provision abroad (PIPL Art. 39) and to the processing
	// of sensitive data (Art. 29): reads from abroad then turn on the
	// mechanism alone.
	for _, k := range []string{"cross-border", "sensitive"} {
		if _, err := home.SetConsent(ctx, "li", k, "v1", true); err != nil {
			t.Fatal(err)
		}
	}
	// A standard contract covering reads from the US for support, of
	// personal (not sensitive) data.
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	sc := transfer.Mechanism{ID: "sc-support", Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-2026-009", Signed: today,
		Filed: today, FilingReference: "粤网信备-009", Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"},
			Recipients: []string{"remote:app"}, Purposes: []string{"support"}, Categories: []domicile.Category{domicile.Personal}}}
	b, _ := json.Marshal(sc)
	if st, _, body := s.do("PUT", "/v1/mechanisms/sc-support", s.Admin, map[string]string{"Content-Type": "application/json"}, strings.NewReader(string(b))); st != 200 {
		t.Fatalf("register mechanism: %d %s", st, body)
	}
	// Rights requests: a correction (open) and a copy encrypted to the
	// subject's age key, which the app may download; a receipt of an
	// erasure of someone else.
	corr, err := home.CreateRequest(ctx, "li", rights.Input{Kind: rights.Correction, Record: &rights.RecordRef{Kind: "profile", ID: "main"},
		Changes: map[string]json.RawMessage{"name": json.RawMessage(`"李伟"`)}})
	if err != nil {
		t.Fatal(err)
	}
	ageID, _ := age.GenerateX25519Identity()
	cpy, err := home.CreateRequest(ctx, "li", rights.Input{Kind: rights.Copy, Recipient: ageID.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := home.CreateSubject(ctx, "gone", "CN", ""); err != nil {
		t.Fatal(err)
	}
	receipt, err := home.EraseSubject(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}

	tokens := map[string]string{}
	for _, a := range tableActors {
		if a.role == "admin" {
			tokens[a.name] = s.Admin
			continue
		}
		tokens[a.name] = s.token(a.role, a.jur, a.subject)
	}
	trailTok := s.token("subject", "CN", "li")
	lastIndex := int64(-1)
	// trail returns li's access events after the last one seen, without
	// the trail reading's own event.
	trail := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		for {
			cur := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(lastIndex, 10)))
			st, _, body := s.do("GET", "/v1/subjects/li/events?limit=1000&cursor="+cur, trailTok, nil, nil)
			if st != 200 {
				t.Fatalf("trail: %d %s", st, body)
			}
			var p httpapi.EventPage
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				lastIndex = e.LeafIndex
				var ev map[string]any
				json.Unmarshal(e.Event, &ev)
				out = append(out, ev)
			}
			if p.Next == "" {
				break
			}
		}
		// The last event is the trail reading itself.
		if n := len(out); n == 0 || out[n-1]["resource"] != "events" || out[n-1]["role"] != "subject" {
			t.Fatalf("the trail does not end with its own reading: %v", out)
		}
		out = out[:len(out)-1]
		var access []map[string]any
		for _, e := range out {
			if e["action"] != "key-unwrap" {
				access = append(access, e)
			}
		}
		return access
	}
	trail()

	seq := 0
	freshRecord := func(t *testing.T, actor string) string {
		seq++
		id := fmt.Sprintf("del-%d", seq)
		if _, err := home.PutRecord(ctx, "li", "message", id, map[string]string{"body": "x"}, ""); err != nil {
			t.Fatal(err)
		}
		return "/v1/subjects/li/records/message/" + id
	}
	freshObject := func(t *testing.T, actor string) string {
		seq++
		name := fmt.Sprintf("del-%d.txt", seq)
		if _, err := home.PutObject(ctx, "li", name, "text/plain", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		return "/v1/subjects/li/objects/" + name
	}

	// freshToken makes a token for an actor to revoke or rotate, so that
	// no actor's own token is touched.
	freshToken := func(suffix string) func(t *testing.T, actor string) string {
		return func(t *testing.T, actor string) string {
			tok, err := admin.CreateToken(ctx, client.TokenRequest{Role: "auditor", Jurisdiction: "DE", Note: "for " + actor})
			if err != nil {
				t.Fatal(err)
			}
			return "/v1/tokens/" + tok.ID + suffix
		}
	}

	readers := map[string]int{"app-home": 200, "app-abroad": 200, "app-abroad-mech": 200, "operator": 200, "authority": 200, "subject": 200}
	writers := map[string]int{"app-home": 201, "app-abroad": 200, "app-abroad-mech": 200, "subject": 200}
	with := func(m map[string]int, kv ...any) map[string]int {
		out := map[string]int{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1].(int)
		}
		return out
	}
	rows := []row{
		{method: "GET", pattern: "/v1/subjects/{id}", path: "/v1/subjects/li", subject: true, def: 403, want: readers},
		{method: "GET", pattern: "/v1/subjects/{id}/records", path: "/v1/subjects/li/records", subject: true, def: 403,
			// The profile holds sensitive data: abroad, only the contract's
			// scope passes, and without one the read is refused.
			want: with(readers, "app-abroad", 403)},
		{method: "PUT", pattern: "/v1/subjects/{id}/records/{kind}/{recordID}", path: "/v1/subjects/li/records/message/m2", subject: true,
			body: `{"body":"hi"}`, contentType: "application/json", def: 403, want: writers},
		{method: "GET", pattern: "/v1/subjects/{id}/records/{kind}/{recordID}", path: "/v1/subjects/li/records/profile/main", subject: true, def: 403,
			want: with(readers, "app-abroad", 403)},
		{method: "DELETE", pattern: "/v1/subjects/{id}/records/{kind}/{recordID}", subject: true, def: 403, fresh: freshRecord,
			want: map[string]int{"app-home": 204, "app-abroad": 204, "app-abroad-mech": 204, "subject": 204}},
		{method: "GET", pattern: "/v1/subjects/{id}/objects", path: "/v1/subjects/li/objects", subject: true, def: 403,
			// support does not read files; a read of files from abroad needs a mechanism covering them.
			want: with(readers, "app-abroad-mech", 403)},
		{method: "PUT", pattern: "/v1/subjects/{id}/objects/{name}", path: "/v1/subjects/li/objects/new.txt", subject: true,
			body: "hello", contentType: "text/plain", def: 403, want: writers},
		{method: "GET", pattern: "/v1/subjects/{id}/objects/{name}", path: "/v1/subjects/li/objects/photo.txt", subject: true, def: 403,
			want: with(readers, "app-abroad-mech", 403)},
		{method: "DELETE", pattern: "/v1/subjects/{id}/objects/{name}", subject: true, def: 403, fresh: freshObject,
			want: map[string]int{"app-home": 204, "app-abroad": 204, "app-abroad-mech": 204, "subject": 204}},
		{method: "GET", pattern: "/v1/subjects/{id}/events", path: "/v1/subjects/li/events", subject: true, def: 403,
			want: map[string]int{"auditor": 200, "subject": 200}},
		{method: "GET", pattern: "/v1/subjects/{id}/statement", path: "/v1/subjects/li/statement", subject: true, def: 403,
			want: map[string]int{"app-home": 200, "app-abroad": 200, "subject": 200}},
		{method: "GET", pattern: "/v1/subjects/{id}/consents", path: "/v1/subjects/li/consents", subject: true, def: 403,
			want: map[string]int{"app-home": 200, "app-abroad": 200, "app-abroad-mech": 200, "subject": 200}},
		{method: "PUT", pattern: "/v1/subjects/{id}/consents/{ckind}", path: "/v1/subjects/li/consents/marketing", subject: true,
			body: `{"text_version":"v1","granted":true}`, contentType: "application/json", def: 403,
			want: map[string]int{"app-home": 200, "app-abroad": 200, "app-abroad-mech": 200, "subject": 200}},
		// A link to the privacy page: the app only (a subject token that
		// made links would outlive its own expiry); every attempt is in
		// the trail.
		{method: "POST", pattern: "/v1/subjects/{id}/privacy-link", path: "/v1/subjects/li/privacy-link", subject: true, def: 403,
			want: map[string]int{"app-home": 201, "app-abroad": 201, "app-abroad-mech": 201}},
		{method: "POST", pattern: "/v1/subjects/{id}/requests", path: "/v1/subjects/li/requests", subject: true,
			body: `{"kind":"correction","record":{"kind":"profile","id":"main"},"changes":{"name":"李伟"}}`, contentType: "application/json", def: 403,
			want: map[string]int{"app-home": 201, "app-abroad": 201, "app-abroad-mech": 201, "subject": 201}},
		// Reading requests from abroad passes the gate: a request is
		// personal (not sensitive) data, which the small-volume exemption
		// lets a read from abroad reach.
		{method: "GET", pattern: "/v1/subjects/{id}/requests", path: "/v1/subjects/li/requests", subject: true, def: 403,
			want: map[string]int{"app-home": 200, "app-abroad": 200, "app-abroad-mech": 200, "subject": 200}},
		{method: "GET", pattern: "/v1/subjects/{id}/requests/{rid}", path: "/v1/subjects/li/requests/" + corr.ID, subject: true, def: 403,
			want: map[string]int{"app-home": 200, "app-abroad": 200, "app-abroad-mech": 200, "subject": 200}},
		// The app moves requests on; the subject files and reads them.
		{method: "PATCH", pattern: "/v1/subjects/{id}/requests/{rid}", path: "/v1/subjects/li/requests/" + corr.ID, subject: true,
			body: `{"state":"in-progress"}`, contentType: "application/json", def: 403,
			want: map[string]int{"app-home": 200, "app-abroad": 200, "app-abroad-mech": 200}},
		// A copy from abroad is whole or not made: the contract of
		// app-abroad-mech does not cover the profile's id number.
		{method: "GET", pattern: "/v1/subjects/{id}/requests/{rid}/bundle", path: "/v1/subjects/li/requests/" + cpy.ID + "/bundle", subject: true, def: 403,
			want: map[string]int{"app-home": 200, "subject": 200}},
		// Erasure is tried on a fresh subject per actor (see below).
		{method: "DELETE", pattern: "/v1/subjects/{id}", subject: true},

		// Routes that reach no one subject's data.
		{method: "GET", pattern: "/healthz", path: "/healthz", def: 200},
		{method: "GET", pattern: "/readyz", path: "/readyz", def: 200},
		{method: "GET", pattern: "/metrics", path: "/metrics", def: 200},
		{method: "GET", pattern: "/v1/openapi.json", path: "/v1/openapi.json", def: 200},
		{method: "GET", pattern: "/v1/cells", path: "/v1/cells", def: 200},
		// A receipt names no one and needs no token: its id is the capability.
		{method: "GET", pattern: "/v1/receipts/{rcpid}", path: "/v1/receipts/" + receipt.ID, def: 200},
		{method: "POST", pattern: "/v1/tokens", path: "/v1/tokens", body: `{"role":"auditor","jurisdiction":"DE"}`, contentType: "application/json", def: 403,
			want: map[string]int{"admin": 201}},
		{method: "GET", pattern: "/v1/tokens", path: "/v1/tokens?active=true", def: 403, want: map[string]int{"admin": 200}},
		{method: "DELETE", pattern: "/v1/tokens/{id}", def: 403, fresh: freshToken(""), want: map[string]int{"admin": 200}},
		{method: "POST", pattern: "/v1/tokens/{id}/rotate", def: 403, fresh: freshToken("/rotate"), want: map[string]int{"admin": 201}},
		{method: "GET", pattern: "/v1/control/log", path: "/v1/control/log", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "POST", pattern: "/v1/subjects", path: "/v1/subjects", body: `{"id":"new-%s","jurisdiction":"CN"}`, contentType: "application/json", def: 403,
			want: map[string]int{"app-home": 201, "app-abroad": 201, "app-abroad-mech": 201}},
		{method: "GET", pattern: "/privacy/", path: "/privacy/", def: 200},
		{method: "GET", pattern: "/privacy/{asset}", path: "/privacy/verify.js", def: 200},
		{method: "GET", pattern: "/console/", path: "/console/", def: 200},
		{method: "GET", pattern: "/v1/census", path: "/v1/census", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "GET", pattern: "/v1/requests/open", path: "/v1/requests/open", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "GET", pattern: "/log/{cell}/checkpoint", path: "/log/cn-gz1/checkpoint", def: 200},
		{method: "GET", pattern: "/log/{cell}/tile/{path}", path: "/log/cn-gz1/tile/0/000.p/1", def: 200},
		{method: "GET", pattern: "/v1/cells/{cell}/consistency", path: "/v1/cells/cn-gz1/consistency?from=1&to=2", def: 403, want: map[string]int{"auditor": 200}},
		{method: "POST", pattern: "/v1/assess", path: "/v1/assess", body: `{"facts":{}}`, contentType: "application/json", def: 0},
		{method: "GET", pattern: "/v1/cells/{cell}/keys", path: "/v1/cells/cn-gz1/keys", def: 403, want: map[string]int{"admin": 200}},
		{method: "POST", pattern: "/v1/cells/{cell}/keys/rotate", path: "/v1/cells/cn-gz1/keys/rotate", def: 403, want: map[string]int{"admin": 200}},
		{method: "POST", pattern: "/v1/cells/{cell}/backup", path: "/v1/cells/cn-gz1/backup", def: 403, want: map[string]int{"admin": 201}},
		{method: "POST", pattern: "/v1/cells/{cell}/keys/retire", path: "/v1/cells/cn-gz1/keys/retire", def: 403, want: map[string]int{"admin": 200}},
		{method: "POST", pattern: "/witness/{cell}/add-checkpoint", path: "/witness/cn-gz1/add-checkpoint", body: "garbage", contentType: "text/plain", def: 0},
		{method: "GET", pattern: "/v1/transparency", path: "/v1/transparency", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "GET", pattern: "/v1/cells/{cell}/transparency", path: "/v1/cells/cn-gz1/transparency", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "GET", pattern: "/v1/cells/{cell}/census", path: "/v1/cells/cn-gz1/census", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "GET", pattern: "/v1/cells/{cell}/requests/pending", path: "/v1/cells/cn-gz1/requests/pending", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "GET", pattern: "/v1/cells/{cell}/subjects", path: "/v1/cells/cn-gz1/subjects", def: 403, want: map[string]int{"admin": 200}},
		// The cell-to-cell migration routes hear cell tokens only, which no
		// actor of the table holds.
		{method: "GET", pattern: "/v1/cells/{cell}/migration/key", path: "/v1/cells/cn-gz1/migration/key", def: 403},
		{method: "POST", pattern: "/v1/cells/{cell}/migration/in", path: "/v1/cells/cn-gz1/migration/in", body: `{}`, contentType: "application/json", def: 403},
		{method: "POST", pattern: "/v1/cells/{cell}/migration/discard", path: "/v1/cells/cn-gz1/migration/discard", body: `{}`, contentType: "application/json", def: 403},
		// A migration plan's sizes, which the router asks of each cell: admin only.
		{method: "POST", pattern: "/v1/cells/{cell}/migration/sizes", path: "/v1/cells/cn-gz1/migration/sizes", body: `{"refs":[]}`, contentType: "application/json", def: 403, want: map[string]int{"admin": 200}},
		{method: "GET", pattern: "/v1/cells/{cell}/notices/plans/{pid}", path: "/v1/cells/cn-gz1/notices/plans/p-none", def: 403, want: map[string]int{"admin": 404}},
		{method: "POST", pattern: "/v1/cells/{cell}/notices/plans/{pid}/send", path: "/v1/cells/cn-gz1/notices/plans/p-none/send", body: `{}`, contentType: "application/json", def: 403, want: map[string]int{"admin": 404}},
		{method: "POST", pattern: "/v1/authority/requests", path: "/v1/authority/requests", body: `{}`, contentType: "application/json", def: 0},
		{method: "GET", pattern: "/v1/authority/requests", path: "/v1/authority/requests", def: 0},
		{method: "GET", pattern: "/v1/authority/requests/{rid}", path: "/v1/authority/requests/ar-none", def: 0},
		{method: "POST", pattern: "/v1/authority/requests/{rid}/review", path: "/v1/authority/requests/ar-none/review", body: `{}`, contentType: "application/json", def: 0},
		{method: "POST", pattern: "/v1/authority/requests/{rid}/outcome", path: "/v1/authority/requests/ar-none/outcome", body: `{}`, contentType: "application/json", def: 0},
		{method: "POST", pattern: "/v1/authority/requests/{rid}/disclosure", path: "/v1/authority/requests/ar-none/disclosure", def: 0},
		{method: "POST", pattern: "/v1/notices/plans", path: "/v1/notices/plans", body: `{}`, contentType: "application/json", def: 0},
		{method: "GET", pattern: "/v1/notices/plans/{pid}", path: "/v1/notices/plans/np-none", def: 0},
		{method: "POST", pattern: "/v1/notices/plans/{pid}/send", path: "/v1/notices/plans/np-none/send", def: 0},
		{method: "POST", pattern: "/v1/notices/{nid}/ack", path: "/v1/notices/nt-none/ack", def: 0},
		{method: "POST", pattern: "/v1/migrations", path: "/v1/migrations", body: `{}`, contentType: "application/json", def: 403, want: map[string]int{"admin": 400}},
		{method: "GET", pattern: "/v1/migrations/key", path: "/v1/migrations/key", def: 200},
		{method: "GET", pattern: "/v1/migrations/{pid}", path: "/v1/migrations/m-0000000000000000", def: 403, want: map[string]int{"admin": 404, "auditor": 404}},
		{method: "POST", pattern: "/v1/migrations/{pid}/run", path: "/v1/migrations/m-0000000000000000/run", body: `{}`, contentType: "application/json", def: 403, want: map[string]int{"admin": 404}},
		{method: "GET", pattern: "/v1/migrations/{pid}/report", path: "/v1/migrations/m-0000000000000000/report", def: 403, want: map[string]int{"admin": 404, "auditor": 404}},
		{method: "GET", pattern: "/v1/mechanisms", path: "/v1/mechanisms", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "PUT", pattern: "/v1/mechanisms/{mid}", path: "/v1/mechanisms/bad", body: `{}`, contentType: "application/json", def: 403, want: map[string]int{"admin": 400}},
		{method: "GET", pattern: "/v1/mechanisms/{mid}", path: "/v1/mechanisms/sc-support", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "POST", pattern: "/v1/transfers", path: "/v1/transfers", body: `{}`, contentType: "application/json", def: 0},
		{method: "POST", pattern: "/v1/transfers/import", path: "/v1/transfers/import", body: "", contentType: "text/csv", def: 0},
		{method: "GET", pattern: "/v1/transfers/ledger", path: "/v1/transfers/ledger", def: 403, want: map[string]int{"admin": 200, "auditor": 200}},
		{method: "GET", pattern: "/v1/transfers/evidence", path: "/v1/transfers/evidence", def: 0},
		{method: "GET", pattern: "/v1/transfers/assessment", path: "/v1/transfers/assessment", def: 0},
	}

	// Every route of the OpenAPI document has a row.
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range rows {
		have[r.method+" "+r.pattern] = true
	}
	var missing []string
	for p, ops := range doc.Paths {
		for m := range ops {
			m = strings.ToUpper(m)
			if !slices.Contains([]string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"}, m) {
				continue
			}
			if !have[m+" "+p] {
				missing = append(missing, m+" "+p)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("routes of the OpenAPI document without a row in the access table: %v", missing)
	}

	var got strings.Builder
	for _, r := range rows {
		if r.method == "DELETE" && r.pattern == "/v1/subjects/{id}" {
			continue
		}
		for _, a := range tableActors {
			path := r.path
			if r.fresh != nil {
				path = r.fresh(t, a.name)
				trail() // the preparation's own events
			}
			hdr := map[string]string{}
			if a.purpose != "" {
				hdr["Domicile-Purpose"] = a.purpose
			}
			if a.justify != "" {
				hdr["Domicile-Justification"] = a.justify
			}
			if r.contentType != "" {
				hdr["Content-Type"] = r.contentType
			}
			var body io.Reader
			if r.body != "" || r.contentType != "" {
				b := r.body
				if strings.Contains(b, "%s") {
					b = fmt.Sprintf(b, a.name)
				}
				body = strings.NewReader(b)
			}
			if r.method == "PUT" && r.pattern == "/v1/subjects/{id}/records/{kind}/{recordID}" {
				hdr["If-Match"] = "*"
				delete(hdr, "If-Match")
			}
			st, _, resp := s.do(r.method, path, tokens[a.name], hdr, body)
			want := r.def
			if w, ok := r.want[a.name]; ok {
				want = w
			}
			evs := trail()
			fmt.Fprintf(&got, "%-7s %-50s %-18s %d events=%d\n", r.method, r.pattern, a.name, st, len(evs))
			if want != 0 && st != want {
				t.Errorf("%s %s as %s: status %d, want %d: %s", r.method, path, a.name, st, want, firstLine(resp))
			}
			if want == 0 && st < 400 && a.role != "admin" && a.role != "auditor" {
				// Rows with def 0 are workflow routes whose bodies here
				// are placeholders: any refusal will do, but they must
				// not succeed for actors without the role.
				if !workflowRole(r.pattern, a.role) {
					t.Errorf("%s %s as %s: status %d, want a refusal", r.method, path, a.name, st)
				}
			}
			switch {
			case r.subject && len(evs) != 1:
				t.Errorf("%s %s as %s (status %d): %d events in the subject's trail, want exactly 1: %v", r.method, path, a.name, st, len(evs), evs)
			case !r.subject && len(evs) != 0:
				t.Errorf("%s %s as %s: %d events in li's trail, want none: %v", r.method, path, a.name, len(evs), evs)
			}
		}
	}

	// Erasure: each actor tries to erase a subject of its own; the app and
	// the subject itself succeed, every refusal is one event in the
	// subject's trail.
	for _, a := range tableActors {
		id := "erase-" + a.name
		if _, err := home.CreateSubject(ctx, id, "CN", ""); err != nil {
			t.Fatal(err)
		}
		tok := tokens[a.name]
		if a.role == "subject" {
			tok = s.token("subject", "CN", id)
		}
		hdr := map[string]string{}
		if a.purpose != "" {
			hdr["Domicile-Purpose"] = a.purpose
		}
		if a.justify != "" {
			hdr["Domicile-Justification"] = a.justify
		}
		st, _, resp := s.do("DELETE", "/v1/subjects/"+id, tok, hdr, nil)
		fmt.Fprintf(&got, "DELETE  /v1/subjects/{id}  %-18s %d\n", a.name, st)
		allowed := a.role == "app" || a.role == "subject"
		if allowed && st != 200 || !allowed && st != 403 {
			t.Errorf("erase as %s: %d %s", a.name, st, firstLine(resp))
		}
		if allowed {
			continue
		}
		_, _, body := s.do("GET", "/v1/subjects/"+id+"/events", s.token("subject", "CN", id), nil, nil)
		var p httpapi.EventPage
		json.Unmarshal(body, &p)
		n := 0
		for _, e := range p.Events {
			var ev map[string]any
			json.Unmarshal(e.Event, &ev)
			if ev["action"] == "erase" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("erase as %s: %d erase events in the subject's trail, want 1", a.name, n)
		}
	}
	if os.Getenv("DOMICILE_ACCESS_TABLE") != "" {
		os.WriteFile(filepath.Join(os.Getenv("DOMICILE_ACCESS_TABLE")), []byte(got.String()), 0o644)
	}
}

// workflowRole reports whether role may succeed on a workflow route whose
// placeholder body the table sends (assessments are open to every
// authenticated token; authority requests to admins; transfers to apps).
func workflowRole(pattern, role string) bool {
	switch {
	case pattern == "/v1/assess":
		return true
	case strings.HasPrefix(pattern, "/witness/"):
		return false
	}
	return false
}

// tokOf returns a client's bearer token.
func tokOf(c *httpapi.Client) string { return c.Token }

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// trailOf returns the access events of subject id (key unwraps aside) as
// the subject's own token reads them, without that reading's own event.
func trailOf(t *testing.T, s *server, tok, id string) []domicile.Event {
	t.Helper()
	page, _ := events(t, s, tok, id)
	var out []domicile.Event
	for _, e := range page.Events {
		var ev domicile.Event
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Action != domicile.ActKeyUnwrap && !(ev.Role == domicile.RoleSubject && ev.Resource == "events") {
			out = append(out, ev)
		}
	}
	return out
}

// ledgerPI returns the ledger's year-to-date count of people whose
// personal information left CN.
func ledgerPI(t *testing.T, s *server) int64 {
	t.Helper()
	v, err := s.client(s.Admin, "", "").Ledger(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range v.Counts {
		if c.Class == domicile.ClassPI && c.Dim == domicile.DimTotal {
			n += c.N
		}
	}
	return n
}

// TestAccessPathHoles reproduces, through the real binary, each hole the
// access-path issue found, and checks that each attempt is now refused or
// minimised, and visible in the subject's trail.
func TestAccessPathHoles(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	home := s.client(s.token("app", "CN", ""), "service", "")
	if _, err := home.CreateSubject(ctx, "li", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := home.PutRecord(ctx, "li", "profile", "main", map[string]string{"name": "李伟", "email": "li@example.cn", "id_number": "110101199001011234"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := home.PutRecord(ctx, "li", "message", "m1", map[string]string{"from": "li", "body": "明天见"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := home.PutObject(ctx, "li", "photo.txt", "text/plain", strings.NewReader("12345"), 5); err != nil {
		t.Fatal(err)
	}
	liTok := s.token("subject", "CN", "li")
	trailOf(t, s, liTok, "li")
	seen := func() []domicile.Event {
		t.Helper()
		all := trailOf(t, s, liTok, "li")
		return all
	}
	count := len(seen())
	newEvents := func() []domicile.Event {
		t.Helper()
		all := seen()
		out := all[count:]
		count = len(all)
		return out
	}
	us := s.client(s.token("app", "US", ""), "service", "")

	t.Run("metadata from abroad passes the gate", func(t *testing.T) {
		// Without li's consent to provision abroad (PIPL Art. 39), the
		// object list, the subject row and the statement are refused...
		if _, err := us.GetSubject(ctx, "li"); !isStatus(err, 403) {
			t.Fatalf("US app reading the subject row without consent: %v, want 403", err)
		}
		if st, _, body := s.do("GET", "/v1/subjects/li/objects", tokOf(us), map[string]string{"Domicile-Purpose": "service"}, nil); st != 403 {
			t.Fatalf("US app listing objects without consent: %d %s", st, body)
		}
		if _, err := us.Statement(ctx, "li", "en"); !isStatus(err, 403) {
			t.Fatalf("US app reading the statement without consent: %v, want 403", err)
		}
		evs := newEvents()
		if len(evs) != 3 || evs[0].Outcome != domicile.Denied || evs[1].Outcome != domicile.Denied || evs[2].Outcome != domicile.Denied {
			t.Fatalf("refusals in the trail: %+v, want 3 denied", evs)
		}
		// ...and with it, they are transfers: allowed, counted once, and
		// each read says so in the trail.
		if _, err := home.SetConsent(ctx, "li", "cross-border", "v1", true); err != nil {
			t.Fatal(err)
		}
		newEvents()
		before := ledgerPI(t, s)
		if _, err := us.GetSubject(ctx, "li"); err != nil {
			t.Fatal(err)
		}
		if st, _, body := s.do("GET", "/v1/subjects/li/objects", tokOf(us), map[string]string{"Domicile-Purpose": "service"}, nil); st != 200 {
			t.Fatalf("US app listing objects with consent: %d %s", st, body)
		}
		if got := ledgerPI(t, s); got != before+1 {
			t.Fatalf("ledger counts %d people after reads from abroad, want %d", got, before+1)
		}
		for _, e := range newEvents() {
			if !e.IsRemoteRead() || !strings.Contains(e.Detail, "from US") {
				t.Errorf("a read from abroad logged as %q, want it marked as a remote read", e.Detail)
			}
		}
	})

	t.Run("every attempt leaves a trace", func(t *testing.T) {
		op := s.client(s.token("operator", "CN", ""), "", "support T-9")
		if _, err := op.GetRecord(ctx, "li", "message", "does-not-exist"); !isStatus(err, 404) {
			t.Fatalf("operator reading a missing record: %v", err)
		}
		if st, _, _ := s.do("GET", "/v1/subjects/li/objects/nothing.jpg", tokOf(op), map[string]string{"Domicile-Justification": "support T-9"}, nil); st != 404 {
			t.Fatalf("operator reading a missing object: %d", st)
		}
		if err := home.DeleteRecord(ctx, "li", "message", "does-not-exist", ""); !isStatus(err, 404) && !isStatus(err, 400) {
			t.Fatalf("deleting a missing record: %v", err)
		}
		st, h, _ := s.do("GET", "/v1/subjects/li/objects/photo.txt", tokOf(home), map[string]string{"Domicile-Purpose": "service", "Range": "bytes=100-"}, nil)
		if st != 416 || h.Get("Content-Range") != "bytes */5" {
			t.Fatalf("range past the end: %d %q", st, h.Get("Content-Range"))
		}
		// A refused actor learns nothing, not even the size, and is in the trail too.
		st, h, body := s.do("GET", "/v1/subjects/li/objects/photo.txt", s.Admin, map[string]string{"Range": "bytes=100-"}, nil)
		if st != 403 || h.Get("Content-Range") != "" || strings.Contains(string(body), "5 bytes") {
			t.Fatalf("admin asking a range: %d %q %s", st, h.Get("Content-Range"), body)
		}
		evs := newEvents()
		var details []string
		for _, e := range evs {
			details = append(details, string(e.Role)+":"+e.Resource+":"+string(e.Outcome)+":"+e.Detail)
		}
		want := []string{
			"operator:record/message/does-not-exist:denied:not-found",
			"operator:object/nothing.jpg:denied:not-found",
			"app:record/message/does-not-exist:denied:not-found",
			"app:object/photo.txt:denied:range-not-satisfiable",
			"admin:object/photo.txt:denied:forbidden",
		}
		if len(evs) != 5 || !slices.Equal(details, want) {
			t.Fatalf("trail of the attempts:\n%s\nwant\n%s", strings.Join(details, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("reads from abroad return only the mechanism's scope", func(t *testing.T) {
		today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
		sc := transfer.Mechanism{ID: "sc-support", Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-2026-009", Signed: today,
			Filed: today, FilingReference: "粤网信备-009", Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"},
				Recipients: []string{"remote:app"}, Purposes: []string{"support"}, Categories: []domicile.Category{domicile.Personal}}}
		if _, err := s.client(s.Admin, "", "").PutMechanism(ctx, sc); err != nil {
			t.Fatal(err)
		}
		if _, err := home.SetConsent(ctx, "li", "sensitive", "v1", true); err != nil {
			t.Fatal(err)
		}
		newEvents()
		support := s.client(tokOf(us), "support", "")
		for i := range 3 {
			st, h, body := s.do("GET", "/v1/subjects/li/records/profile/main", tokOf(support), map[string]string{"Domicile-Purpose": "support"}, nil)
			if st != 200 {
				t.Fatalf("read %d from abroad under the contract: %d %s", i, st, body)
			}
			var rec domicile.Record
			json.Unmarshal(body, &rec)
			if strings.Contains(string(rec.Data), "110101") || !slices.Equal(rec.Withheld, []string{"id_number"}) || h.Get("Domicile-Withheld") != "id_number" {
				t.Fatalf("read from abroad returned %s (withheld %v, header %q); want id_number withheld", rec.Data, rec.Withheld, h.Get("Domicile-Withheld"))
			}
		}
		evs := newEvents()
		if len(evs) != 3 {
			t.Fatalf("%d events for 3 reads from abroad", len(evs))
		}
		for _, e := range evs {
			if !e.IsRemoteRead() || !strings.Contains(e.Detail, "sc-support") || !strings.Contains(e.Detail, "withheld id_number") {
				t.Errorf("remote read logged as %q", e.Detail)
			}
		}
		stmt, err := s.client(liTok, "", "").Statement(ctx, "li", "en")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range stmt.RemoteReads {
			if strings.Contains(e.Event.Detail, "sc-support") {
				n++
			}
		}
		if n != 3 {
			t.Fatalf("the statement lists %d of the 3 reads under the contract (%d remote reads in all)", n, len(stmt.RemoteReads))
		}
		tr, err := s.client(s.Admin, "", "").Transparency(ctx, client.DocOptions{Lang: "en"})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Totals.RemoteReads < 5 {
			t.Fatalf("the transparency report counts %d reads from abroad, want at least the 5 made", tr.Totals.RemoteReads)
		}
		newEvents()
	})

	t.Run("purpose limitation", func(t *testing.T) {
		mk := s.client(tokOf(home), "marketing", "")
		if _, err := mk.GetRecord(ctx, "li", "message", "m1"); !isStatus(err, 403) || !strings.Contains(err.Error(), "purposes.marketing") {
			t.Fatalf("marketing reading a message: %v, want 403 naming purposes.marketing", err)
		}
		if _, err := mk.GetRecord(ctx, "li", "profile", "main"); !isStatus(err, 403) || !strings.Contains(err.Error(), "consent") {
			t.Fatalf("marketing reading the profile without consent: %v, want 403 naming the consent", err)
		}
		if _, err := home.SetConsent(ctx, "li", "marketing", "v1", true); err != nil {
			t.Fatal(err)
		}
		rec, err := mk.GetRecord(ctx, "li", "profile", "main")
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		json.Unmarshal(rec.Data, &fields)
		if len(fields) != 2 || fields["name"] == nil || fields["email"] == nil || !slices.Equal(rec.Withheld, []string{"id_number"}) {
			t.Fatalf("marketing read %s, withheld %v; want name and email only", rec.Data, rec.Withheld)
		}
		if _, err := s.client(liTok, "", "").SetConsent(ctx, "li", "marketing", "v1", false); err != nil {
			t.Fatal(err)
		}
		if _, err := mk.GetRecord(ctx, "li", "profile", "main"); !isStatus(err, 403) {
			t.Fatalf("marketing reading after the consent was withdrawn: %v, want 403 at once", err)
		}
		an := s.client(tokOf(home), "analytics", "")
		if _, err := an.GetRecord(ctx, "li", "profile", "main"); !isStatus(err, 403) {
			t.Fatalf("analytics reading a profile: %v, want 403", err)
		}
		evs := newEvents()
		var outcomes []string
		for _, e := range evs {
			if e.Action == domicile.ActRead {
				outcomes = append(outcomes, string(e.Outcome))
			}
		}
		if !slices.Equal(outcomes, []string{"denied", "denied", "allowed", "denied", "denied"}) {
			t.Fatalf("purpose reads in the trail: %v", outcomes)
		}
	})

	t.Run("erasure unlinks", func(t *testing.T) {
		before := subjectRef(t, s.Data, "li")
		if _, err := home.EraseSubject(ctx, "li"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.client(liTok, "", "").GetSubject(ctx, "li"); !isStatus(err, 401) {
			t.Fatalf("the erased subject's token: %v, want 401", err)
		}
		if _, err := home.CreateSubject(ctx, "li", "CN", ""); err != nil {
			t.Fatal(err)
		}
		after := subjectRef(t, s.Data, "li")
		if after == before {
			t.Fatal("the re-registered id got its former reference")
		}
		if _, err := s.client(liTok, "", "").GetRecord(ctx, "li", "message", "m1"); !isStatus(err, 401) {
			t.Fatalf("the old token on the new registration: %v, want 401", err)
		}
		// The new registration's trail holds only its own events.
		for _, e := range trailOf(t, s, s.token("subject", "CN", "li"), "li") {
			if e.Subject == before {
				t.Fatalf("the new registration's trail shows an event of the old one: %+v", e)
			}
		}
		// Nothing stored names the old reference: no file of the cell's
		// store (on Pebble, the default: its database with its manifest,
		// tiles and blobs; TestErasureUnlinks has SQLite), not the
		// directory.
		s.Stop()
		old, err := hex.DecodeString(before)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(s.Data, "cn-gz1", "pebble")); err != nil {
			t.Fatalf("cn-gz1 is not on Pebble, the default: %v", err)
		}
		files := []string{filepath.Join("control", "control.db")}
		filepath.WalkDir(filepath.Join(s.Data, "cn-gz1"), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path[len(s.Data)+1:])
			}
			return err
		})
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(s.Data, f))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, old) || bytes.Contains(b, []byte(before)) {
				t.Errorf("%s still holds the erased registration's reference", f)
			}
		}
	})
}
