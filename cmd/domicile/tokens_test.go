package main

import (
	"bytes"
	"context"
	"domicile/client"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile"
	"domicile/httpapi"
	"domicile/sqlite"
)

// eventually polls cond every 50 ms until it holds or limit passes; it
// asserts no timing, only that the condition comes to hold.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cliAgainst runs the binary with args and the server's URL, and returns its
// standard output and standard error.
func cliAgainst(t *testing.T, s *server, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "DOMICILE_SERVER="+s.URL)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestTokenLifecycle mints, uses, lets expire, revokes and rotates tokens
// through the real binary, and reads the control log with its chain
// verified.
func TestTokenLifecycle(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	admin := s.client(s.Admin, "", "")
	probe := func(tok string) error {
		_, err := s.client(tok, app, "").CreateSubject(ctx, "probe", "XX", "")
		if isStatus(err, 400) {
			return nil // authenticated; the body was refused
		}
		return err
	}

	t.Run("a ttl of 2s expires", func(t *testing.T) {
		r, err := admin.CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: "CN", TTL: "2s", Note: "short-lived"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Expires.IsZero() || time.Until(r.Expires) > 3*time.Second {
			t.Fatalf("a 2s token expires at %v", r.Expires)
		}
		if err := probe(r.Token); err != nil {
			t.Fatalf("the fresh token: %v", err)
		}
		eventually(t, 30*time.Second, "the 2s token refused", func() bool {
			err := probe(r.Token)
			return isStatus(err, 401) && strings.Contains(err.Error(), "expired")
		})
	})

	t.Run("default lifetimes", func(t *testing.T) {
		if _, err := s.client(s.token("app", "CN", ""), app, "").CreateSubject(ctx, "li", "CN", ""); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			req  client.TokenRequest
			want time.Duration
		}{
			{client.TokenRequest{Role: "subject", Jurisdiction: "CN", Subject: "li"}, httpapi.DefaultSubjectTokenTTL},
			{client.TokenRequest{Role: "operator", Jurisdiction: "CN"}, httpapi.DefaultTokenTTL},
		} {
			r, err := admin.CreateToken(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Until(r.Expires); d > tc.want || d < tc.want-time.Minute {
				t.Errorf("a %s token without ttl expires in %s, want %s", tc.req.Role, d, tc.want)
			}
		}
	})

	t.Run("a revoked token is refused by the next request", func(t *testing.T) {
		r, err := admin.CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: "CN"})
		if err != nil {
			t.Fatal(err)
		}
		if err := probe(r.Token); err != nil {
			t.Fatal(err)
		}
		got, err := admin.RevokeToken(ctx, r.ID)
		if err != nil || got.Revoked.IsZero() || got.ID != r.ID {
			t.Fatalf("RevokeToken = %+v, %v", got, err)
		}
		if err := probe(r.Token); !isStatus(err, 401) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("the revoked token's next request: %v, want 401 token revoked", err)
		}
		if again, err := admin.RevokeToken(ctx, r.ID); err != nil || !again.Revoked.Equal(got.Revoked) {
			t.Fatalf("revoking again = %+v, %v; want the first revocation unchanged", again, err)
		}
		if _, err := admin.RevokeToken(ctx, "tok_000000000000"); !isStatus(err, 404) {
			t.Fatalf("revoking an unknown token: %v, want 404", err)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		old, err := admin.CreateToken(ctx, client.TokenRequest{Role: "app", Jurisdiction: "CN", TTL: "1h", Note: "checkout"})
		if err != nil {
			t.Fatal(err)
		}
		nw, err := admin.RotateToken(ctx, old.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if nw.Replaces != old.ID || nw.ID == old.ID || nw.Role != "app" || nw.Jurisdiction != "CN" || nw.Note != "checkout" || time.Until(nw.Expires) > time.Hour {
			t.Fatalf("rotation = %+v; want an app token of CN for checkout, for an hour, replacing %s", nw, old.ID)
		}
		if err := probe(old.Token); !isStatus(err, 401) {
			t.Fatalf("the rotated-out token: %v, want 401", err)
		}
		if err := probe(nw.Token); err != nil {
			t.Fatalf("the new token: %v", err)
		}
		if _, err := admin.RotateToken(ctx, old.ID, ""); !isStatus(err, 409) {
			t.Fatalf("rotating a revoked token: %v, want 409", err)
		}
		if _, err := admin.RotateToken(ctx, nw.ID, "0s"); !isStatus(err, 400) {
			t.Fatalf("rotating with ttl 0s: %v, want 400", err)
		}
	})

	t.Run("listing never shows a secret", func(t *testing.T) {
		var all []domicile.Token
		cursor := ""
		for {
			p, err := admin.ListTokens(ctx, client.TokenListOptions{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Tokens...)
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if len(all) < 8 {
			t.Fatalf("listed %d tokens, want every one minted", len(all))
		}
		b, _ := json.Marshal(all)
		if strings.Contains(string(b), "dmc_") {
			t.Fatal("the token list holds a secret")
		}
		active, err := admin.ListTokens(ctx, client.TokenListOptions{Active: true, Role: "admin"})
		if err != nil || len(active.Tokens) != 1 || active.Tokens[0].Note != domicile.AdminFileNote {
			t.Fatalf("active admin tokens: %+v, %v; want the admin token file's", active, err)
		}
		if _, err := s.client(s.token("auditor", "DE", ""), "", "").ListTokens(ctx, client.TokenListOptions{}); !isStatus(err, 403) {
			t.Fatalf("an auditor listing tokens: %v, want 403", err)
		}
	})

	t.Run("the control log", func(t *testing.T) {
		auditor := s.client(s.token("auditor", "DE", ""), "", "")
		p, err := auditor.ControlLog(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := domicile.VerifyControlLog(p.Events, 0, domicile.ZeroControlHash); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, e := range p.Events {
			count[e.Action]++
		}
		if count[domicile.ControlMint] < 8 || count[domicile.ControlRevoke] != 1 || count[domicile.ControlRotate] != 1 {
			t.Errorf("control log actions: %v; want the mintings, one revocation, one rotation", count)
		}
		if p.Events[0].Actor != actorServe || p.Events[0].Role != domicile.RoleAdmin {
			t.Errorf("the first event = %+v, want the admin token minted by serve", p.Events[0])
		}
		b, _ := json.Marshal(p)
		if strings.Contains(string(b), "checkout") || strings.Contains(string(b), "short-lived") {
			t.Error("the control log holds a token's note")
		}
		out, errOut, err := cliAgainst(t, s, "token", "log", "--verify", "--token", tokOf(auditor))
		if err != nil || !strings.Contains(out, "hash chain verified") {
			t.Fatalf("token log --verify: %v\n%s%s", err, out, errOut)
		}
	})

	t.Run("the CLI", func(t *testing.T) {
		out, errOut, err := cliAgainst(t, s, "token", "create", "--data", s.Data, "--role", "operator", "--jurisdiction", "CN", "--ttl", "90m", "--note", "on call")
		if err != nil {
			t.Fatalf("token create: %v\n%s", err, errOut)
		}
		var r client.TokenResponse
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Token == "" || time.Until(r.Expires) > 90*time.Minute {
			t.Fatalf("token create printed %s", out)
		}
		out, errOut, err = cliAgainst(t, s, "token", "list", "--data", s.Data, "--role", "operator", "--active")
		if err != nil || !strings.Contains(out, r.ID) || strings.Contains(out, r.Token) {
			t.Fatalf("token list: %v\n%s%s", err, out, errOut)
		}
		out, errOut, err = cliAgainst(t, s, "token", "rotate", "--data", s.Data, "--id", r.ID)
		var rot client.TokenResponse
		if err != nil || json.Unmarshal([]byte(out), &rot) != nil || rot.Replaces != r.ID {
			t.Fatalf("token rotate: %v\n%s%s", err, out, errOut)
		}
		if _, errOut, err = cliAgainst(t, s, "token", "revoke", "--data", s.Data, "--id", rot.ID); err != nil {
			t.Fatalf("token revoke: %v\n%s", err, errOut)
		}
		if err := probe(rot.Token); !isStatus(err, 401) {
			t.Fatalf("the token revoked by the CLI: %v", err)
		}
		_, errOut, err = cliAgainst(t, s, "token", "create", "--data", s.Data, "--role", "app", "--jurisdiction", "CN", "--ttl", "forever")
		if err == nil || !strings.Contains(errOut, "ttl") {
			t.Fatalf("a bad --ttl: %v\n%s", err, errOut)
		}
		_, errOut, err = cliAgainst(t, s, "token", "revoke", "--data", s.Data)
		if err == nil || !strings.Contains(errOut, "--id is required") {
			t.Fatalf("revoke without --id: %v\n%s", err, errOut)
		}
	})
}

// serveFails runs serve on data and returns its standard error; it
// fails the test if the server starts.
func serveFails(t *testing.T, data string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0", "--data", data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err == nil || strings.Contains(out.String(), "listening on") {
		t.Fatalf("serve started:\n%s%s", out.String(), errb.String())
	}
	return errb.String()
}

// TestAdminTokenFile checks that serve never mints a second admin: a
// missing, junk or revoked admin.token stops it with a message naming
// `domicile admin rotate`, which replaces the file and revokes the old
// token, also under a running server.
func TestAdminTokenFile(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	first := s.Admin
	s.Stop()
	path := filepath.Join(data, "admin.token")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if msg := serveFails(t, data); !strings.Contains(msg, "domicile admin rotate") || !strings.Contains(msg, "missing") {
		t.Fatalf("serve without admin.token said:\n%s", msg)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("serve wrote a new admin.token: a second admin")
	}
	for name, junk := range map[string]string{
		"junk":        "hello\n",
		"two tokens":  first + "\n" + first + "\n",
		"cut short":   first[:20] + "\n",
		"empty":       "",
		"not base64":  "dmc_" + strings.Repeat("!", 43) + "\n",
		"unknown one": "dmc_" + strings.Repeat("A", 43) + "\n",
	} {
		if err := os.WriteFile(path, []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		if msg := serveFails(t, data); !strings.Contains(msg, "domicile admin rotate") {
			t.Fatalf("serve with %s in admin.token said:\n%s", name, msg)
		}
	}

	// admin rotate with the file unreadable: a new admin token, and every
	// valid token made for the file revoked.
	rot := exec.Command(binary, "admin", "rotate", "--data", data)
	out, err := rot.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revoked") {
		t.Fatalf("admin rotate: %v\n%s", err, out)
	}
	s = startServer(t, data)
	if s.Admin == first {
		t.Fatal("admin rotate kept the old token")
	}
	ctx := context.Background()
	if _, err := s.client(first, "", "").ListTokens(ctx, client.TokenListOptions{}); !isStatus(err, 401) {
		t.Fatalf("the old admin token after admin rotate: %v, want 401", err)
	}
	page, err := s.client(s.Admin, "", "").ListTokens(ctx, client.TokenListOptions{Role: "admin", Active: true})
	if err != nil || len(page.Tokens) != 1 {
		t.Fatalf("valid admin tokens after rotation: %+v, %v; want exactly one", page, err)
	}

	// admin rotate under the running server: the file's old token is
	// refused within the server's revocation check, the new one works.
	second := s.Admin
	out, err = exec.Command(binary, "admin", "rotate", "--data", data).CombinedOutput()
	if err != nil {
		t.Fatalf("admin rotate while serving: %v\n%s", err, out)
	}
	third, err := readAdminToken(path)
	if err != nil || third == second {
		t.Fatalf("admin.token after the second rotation: %q, %v", third, err)
	}
	eventually(t, 30*time.Second, "the rotated-out admin token refused by the running server", func() bool {
		_, err := s.client(second, "", "").ListTokens(ctx, client.TokenListOptions{})
		return isStatus(err, 401)
	})
	if _, err := s.client(third, "", "").ListTokens(ctx, client.TokenListOptions{}); err != nil {
		t.Fatalf("the new admin token: %v", err)
	}
	log, err := s.client(third, "", "").ControlLog(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := domicile.VerifyControlLog(log.Events, 0, domicile.ZeroControlHash); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range log.Events {
		if e.Actor == actorAdminRotate {
			n++
		}
	}
	if n != 3 { // the first rotation's mint and revoke, the second's rotate
		t.Errorf("%d control log events by admin rotate, want 3: %+v", n, log.Events)
	}
}

// testClock is a clock a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestTokenCache drives two API servers that share one control store, as
// two processes of a deployment do, on a clock the test moves: expiry is
// exact, a revocation made by one server is honoured by the other once
// its recheck interval has passed (and not before it reads the store),
// and the cache stays within its bound.
func TestTokenCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	rt, err := openRuntime(ctx, dir, mustDefault(), time.Now, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	other, err := sqlite.OpenControl(ctx, filepath.Join(dir, "control"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	clock := &testClock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	newAPI := func(ctl domicile.ControlStore) *httpapi.Server {
		return httpapi.New(httpapi.Config{Router: rt.router, Control: ctl, Logger: quiet, Now: clock.Now, TokenRecheck: 2 * time.Second, TokenCacheSize: 3})
	}
	a, b := newAPI(rt.control), newAPI(other)
	call := func(srv *httpapi.Server, tok string) int {
		r := httptest.NewRequest("GET", "/v1/tokens?limit=1", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w.Code
	}
	mint := func(ttl time.Duration) (string, *domicile.Token) {
		secret, tok, err := httpapi.IssueToken(ctx, rt.control, domicile.Token{Role: domicile.RoleAdmin, Jurisdiction: "CN", Created: clock.Now(), Expires: clock.Now().Add(ttl)}, "test")
		if err != nil {
			t.Fatal(err)
		}
		return secret, tok
	}

	short, _ := mint(time.Hour)
	if st := call(a, short); st != 200 {
		t.Fatalf("a fresh token: %d", st)
	}
	clock.Add(time.Hour - time.Nanosecond)
	if st := call(a, short); st != 200 {
		t.Fatalf("a token a nanosecond before it expires: %d", st)
	}
	clock.Add(time.Nanosecond)
	if st := call(a, short); st != 401 {
		t.Fatalf("a token at its expiry: %d, want 401", st)
	}

	secret, tok := mint(24 * time.Hour)
	if call(a, secret) != 200 || call(b, secret) != 200 {
		t.Fatal("a valid token refused")
	}
	// Revoked through b: b refuses at once; a, which cached it, refuses
	// once its recheck interval has passed on its clock.
	r := httptest.NewRequest("DELETE", "/v1/tokens/"+tok.ID, nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("revoke through b: %d %s", w.Code, w.Body)
	}
	if st := call(b, secret); st != 401 {
		t.Fatalf("b after its own revocation: %d, want 401", st)
	}
	if st := call(a, secret); st != 200 {
		t.Fatalf("a within its recheck interval: %d; want its cached answer, 200 (the bound, not sooner)", st)
	}
	clock.Add(2 * time.Second)
	if st := call(a, secret); st != 401 {
		t.Fatalf("a after its recheck interval: %d, want 401", st)
	}

	// The cache holds at most its size.
	for range 10 {
		s, _ := mint(time.Hour)
		if st := call(a, s); st != 200 {
			t.Fatalf("token: %d", st)
		}
	}
	mr := httptest.NewRequest("GET", "/metrics", nil)
	mw := httptest.NewRecorder()
	a.ServeHTTP(mw, mr)
	if !regexp.MustCompile(`(?m)^domicile_token_cache_entries [0-3]$`).MatchString(mw.Body.String()) {
		t.Errorf("the token cache outgrew its size 3:\n%s", grepLines(mw.Body.String(), "token_cache"))
	}
}
