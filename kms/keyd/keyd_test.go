package keyd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile/kms"
	"domicile/kms/filekms"
	"domicile/kms/kmstest"
)

// pki is shared by the tests of this package: a CA with a server certificate
// for 127.0.0.1, client certificates per cell, and a second, foreign CA.
type pki struct {
	ca, other             *CA
	serverCert, serverKey []byte
}

var (
	pkiOnce sync.Once
	testPKI pki
	pkiErr  error
)

func MustPKI(tb testing.TB) *pki {
	tb.Helper()
	pkiOnce.Do(func() {
		now := time.Now()
		if testPKI.ca, pkiErr = NewCA("test custodian CA", now, time.Hour); pkiErr != nil {
			return
		}
		if testPKI.other, pkiErr = NewCA("someone else's CA", now, time.Hour); pkiErr != nil {
			return
		}
		testPKI.serverCert, testPKI.serverKey, pkiErr = testPKI.ca.IssueServer([]string{"127.0.0.1", "localhost"}, now, time.Hour)
	})
	if pkiErr != nil {
		tb.Fatal(pkiErr)
	}
	return &testPKI
}

// clientTLS returns a client TLS config for cell, issued by issuer.
func (p *pki) clientTLS(tb testing.TB, issuer *CA, cell string) *tls.Config {
	tb.Helper()
	cert, key, err := issuer.IssueClient(cell, time.Now(), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := ClientTLSConfig(cert, key, p.ca.CertPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

type custodian struct {
	url    string
	server *Server
	log    string
}

// startCustodian runs a real custodian on a loopback port. wrap, if not nil,
// wraps its handler (to inject delay).
func startCustodian(t *testing.T, policy string, wrap func(http.Handler) http.Handler) *custodian {
	t.Helper()
	p := MustPKI(t)
	dir := t.TempDir()
	kek, err := filekms.Open(context.Background(), filekms.Config{Path: filepath.Join(dir, "keyring.json"), ID: "custodian/kek"})
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "decisions.jsonl")
	srv, err := NewServer(ServerConfig{KEK: kek, Policy: MustParsePolicy(t, policy), DecisionLog: logPath})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ServerTLSConfig(p.serverCert, p.serverKey, p.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer(tlsCfg)
	if wrap != nil {
		hs.Handler = wrap(srv)
	}
	hs.ErrorLog = nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		srv.Close()
	})
	return &custodian{url: "https://" + ln.Addr().String(), server: srv, log: logPath}
}

func (c *custodian) entries(t *testing.T) []LogEntry {
	t.Helper()
	f, err := os.Open(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	es, err := ReadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func MustClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const conformancePolicy = `
key_admin: [rotate, retire]
clauses:
  - name: conformance
    effect: allow
    roles: [app]
    reasons: ["service:conformance"]
    cells: [test-cell]
`

func TestConformance(t *testing.T) {
	p := MustPKI(t)
	kmstest.Run(t, func(t *testing.T) kms.KEK {
		c := startCustodian(t, conformancePolicy, nil)
		return MustClient(t, ClientConfig{URL: c.url, TLS: p.clientTLS(t, p.ca, kmstest.Access.Cell)})
	})
}

const operatorPolicy = `
clauses:
  - name: app
    effect: allow
    roles: [app]
  - name: no-operators
    effect: deny
    roles: [operator]
`

func TestDecisionsLoggedAndReturned(t *testing.T) {
	ctx := context.Background()
	p := MustPKI(t)
	c := startCustodian(t, operatorPolicy, nil)
	var mu sync.Mutex
	var got []kms.Decision
	cl := MustClient(t, ClientConfig{URL: c.url, TLS: p.clientTLS(t, p.ca, "cn-gz1"), OnDecision: func(d kms.Decision) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	}})
	pt := []byte("0123456789abcdef0123456789abcdef")
	v, ct := kmstest.MustWrap(t, cl, pt, []byte("aad"))

	out, err := cl.Unwrap(ctx, appAccess, v, ct, []byte("aad"))
	if err != nil || !bytes.Equal(out, pt) {
		t.Fatalf("allowed Unwrap = %x, %v; want %x", out, err, pt)
	}
	_, err = cl.Unwrap(ctx, opAccess, v, ct, []byte("aad"))
	var de *kms.DeniedError
	if !errors.As(err, &de) || de.Clause != "no-operators" {
		t.Fatalf("operator Unwrap = %v, want *kms.DeniedError by clause no-operators", err)
	}
	if errors.Is(err, kms.ErrUnavailable) {
		t.Errorf("denial %v also reads as unavailable", err)
	}

	if len(got) != 2 || !got[0].Allowed || got[0].Clause != "app" || got[1].Allowed || got[1].Clause != "no-operators" || got[1].Access != opAccess {
		t.Fatalf("OnDecision got %+v; want allow by app, then deny by no-operators", got)
	}
	es := c.entries(t)
	if len(es) != 2 {
		t.Fatalf("decision log has %d entries, want 2: %+v", len(es), es)
	}
	for i, want := range []struct {
		allowed bool
		result  string
	}{{true, "ok"}, {false, "denied"}} {
		e := es[i]
		if e.Allowed != want.allowed || e.Result != want.result || e.Op != "unwrap" || e.Client != "cn-gz1" || e.KEK != "custodian/kek" || !e.Time.Equal(got[i].Time) || e.Access != got[i].Access {
			t.Errorf("log entry %d = %+v; want allowed=%v result=%s matching decision %+v", i, e, want.allowed, want.result, got[i])
		}
	}
	b, _ := os.ReadFile(c.log)
	if bytes.Contains(b, pt) || bytes.Contains(b, ct) {
		t.Errorf("decision log holds key material")
	}
	if st, _ := os.Stat(c.log); st.Mode().Perm() != 0o600 {
		t.Errorf("decision log mode = %04o, want 0600", st.Mode().Perm())
	}
}

func TestCellMustMatchCertificate(t *testing.T) {
	p := MustPKI(t)
	c := startCustodian(t, operatorPolicy, nil)
	cl := MustClient(t, ClientConfig{URL: c.url, TLS: p.clientTLS(t, p.ca, "cn-gz1")})
	v, ct := kmstest.MustWrap(t, cl, []byte("k"), nil)
	other := with(appAccess, func(a *kms.Access) { a.Cell = "cn-sh1" })
	_, err := cl.Unwrap(context.Background(), other, v, ct, nil)
	var de *kms.DeniedError
	if !errors.As(err, &de) || !strings.Contains(de.Reason, "cn-gz1") {
		t.Fatalf("Unwrap claiming another cell = %v, want *kms.DeniedError naming the certificate's cell", err)
	}
	if es := c.entries(t); len(es) != 1 || es[0].Allowed || es[0].Client != "cn-gz1" || es[0].Access.Cell != "cn-sh1" {
		t.Errorf("decision log = %+v, want one denial recording both cells", es)
	}
}

func TestKeyAdminNeedsPolicy(t *testing.T) {
	p := MustPKI(t)
	c := startCustodian(t, operatorPolicy, nil)
	cl := MustClient(t, ClientConfig{URL: c.url, TLS: p.clientTLS(t, p.ca, "cn-gz1")})
	var de *kms.DeniedError
	if _, err := cl.Rotate(context.Background()); !errors.As(err, &de) {
		t.Errorf("Rotate without key_admin = %v, want *kms.DeniedError", err)
	}
	if err := cl.Retire(context.Background(), 1); !errors.As(err, &de) {
		t.Errorf("Retire without key_admin = %v, want *kms.DeniedError", err)
	}
	if cur, all, err := cl.Versions(context.Background()); err != nil || cur != 1 || len(all) != 1 {
		t.Errorf("Versions() = %d, %v, %v; want 1, [1]", cur, all, err)
	}
	es := c.entries(t)
	if len(es) != 2 || es[0].Op != "rotate" || es[1].Op != "retire" || es[0].Allowed || es[1].Allowed {
		t.Errorf("decision log = %+v, want denied rotate and retire", es)
	}
}

func TestMutualTLSRefuses(t *testing.T) {
	ctx := context.Background()
	p := MustPKI(t)
	c := startCustodian(t, operatorPolicy, nil)
	t.Run("client certificate from another CA", func(t *testing.T) {
		cl := MustClient(t, ClientConfig{URL: c.url, TLS: p.clientTLS(t, p.other, "cn-gz1")})
		if _, _, err := cl.Wrap(ctx, []byte("k"), nil); err == nil || errors.Is(err, kms.ErrUnavailable) {
			t.Fatalf("Wrap with a foreign client certificate = %v, want a TLS authentication error", err)
		}
		if _, err := cl.Unwrap(ctx, appAccess, 1, make([]byte, 60), nil); err == nil {
			t.Fatal("Unwrap with a foreign client certificate succeeded")
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.clientTLS(t, p.ca, "x").RootCAs, MinVersion: tls.VersionTLS13}}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(c.url + "/v1/versions")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET without a client certificate = %s, want a TLS failure", resp.Status)
		}
		if _, err := NewClient(ClientConfig{URL: c.url, TLS: &tls.Config{RootCAs: p.clientTLS(t, p.ca, "x").RootCAs}}); err == nil {
			t.Error("NewClient without a client certificate = nil error")
		}
	})
	t.Run("custodian certificate from another CA", func(t *testing.T) {
		cfg := p.clientTLS(t, p.ca, "cn-gz1")
		cfg.RootCAs, _ = certPool(p.other.CertPEM)
		cl := MustClient(t, ClientConfig{URL: c.url, TLS: cfg})
		if _, _, err := cl.Wrap(ctx, []byte("k"), nil); err == nil || errors.Is(err, kms.ErrUnavailable) {
			t.Fatalf("Wrap to an untrusted custodian = %v, want a TLS authentication error", err)
		}
	})
	if es := c.entries(t); len(es) != 0 {
		t.Errorf("decision log holds %d entries from unauthenticated clients", len(es))
	}
}

func TestCustodianDown(t *testing.T) {
	p := MustPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cl := MustClient(t, ClientConfig{URL: "https://" + addr, TLS: p.clientTLS(t, p.ca, "cn-gz1")})
	start := time.Now()
	_, err = cl.Unwrap(context.Background(), appAccess, 1, make([]byte, 60), nil)
	if !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("Unwrap with the custodian down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Unwrap with the custodian down took %v, want well under the 2 s timeout", d)
	}
	if _, _, err := cl.Wrap(context.Background(), []byte("k"), nil); !errors.Is(err, kms.ErrUnavailable) {
		t.Errorf("Wrap with the custodian down = %v, want ErrUnavailable", err)
	}
}

func TestCustodianSlow(t *testing.T) {
	p := MustPKI(t)
	release := make(chan struct{})
	c := startCustodian(t, operatorPolicy, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			h.ServeHTTP(w, r)
		})
	})
	defer close(release)
	cl := MustClient(t, ClientConfig{URL: c.url, TLS: p.clientTLS(t, p.ca, "cn-gz1"), Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := cl.Unwrap(context.Background(), appAccess, 1, make([]byte, 60), nil)
	if !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("Unwrap from a slow custodian = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("Unwrap from a slow custodian returned after %v, want about the 200 ms timeout", d)
	}
	// A caller's own cancellation is not reported as the custodian's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cl.Unwrap(ctx, appAccess, 1, make([]byte, 60), nil); !errors.Is(err, context.Canceled) || errors.Is(err, kms.ErrUnavailable) {
		t.Errorf("Unwrap with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestDecisionLogFailureFailsClosed(t *testing.T) {
	p := MustPKI(t)
	c := startCustodian(t, operatorPolicy, nil)
	cl := MustClient(t, ClientConfig{URL: c.url, TLS: p.clientTLS(t, p.ca, "cn-gz1")})
	v, ct := kmstest.MustWrap(t, cl, []byte("secret-data-key"), nil)
	c.server.Close() // the log can no longer be written
	pt, err := cl.Unwrap(context.Background(), appAccess, v, ct, nil)
	if !errors.Is(err, kms.ErrUnavailable) || pt != nil {
		t.Fatalf("Unwrap with an unwritable decision log = %x, %v; want nil, ErrUnavailable", pt, err)
	}
}

func TestRequestValidation(t *testing.T) {
	p := MustPKI(t)
	c := startCustodian(t, operatorPolicy, nil)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: p.clientTLS(t, p.ca, "cn-gz1")}}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"unknown field", "/v1/wrap", `{"plaintext":"AAAA","extra":1}`, 400},
		{"trailing data", "/v1/wrap", `{"plaintext":"AAAA"}{}`, 400},
		{"not json", "/v1/unwrap", `hello`, 400},
		{"oversized", "/v1/wrap", `{"plaintext":"` + strings.Repeat("A", MaxRequestBytes) + `"}`, 400},
		{"invalid access", "/v1/unwrap", `{"access":{"cell":"cn-gz1","role":"root","jurisdiction":"CN","reason":"x"},"version":1,"ciphertext":"AAAA"}`, 400},
		{"wrong method", "/v1/versions", `{}`, 405},
		{"ok", "/v1/wrap", `{"plaintext":"AAAA"}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.Post(c.url+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("POST %s %s = %d, want %d", tc.path, tc.name, resp.StatusCode, tc.status)
			}
		})
	}
	if es := c.entries(t); len(es) != 0 {
		t.Errorf("malformed requests were logged as decisions: %+v", es)
	}
}

func TestParseCA(t *testing.T) {
	p := MustPKI(t)
	kp, err := p.ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ParseCA(p.ca.CertPEM, kp)
	if err != nil {
		t.Fatalf("ParseCA = %v", err)
	}
	if !ca.Cert.Equal(p.ca.Cert) {
		t.Error("ParseCA returned another certificate")
	}
	otherKey, _ := p.other.KeyPEM()
	if _, err := ParseCA(p.ca.CertPEM, otherKey); err == nil {
		t.Error("ParseCA with a mismatched key = nil error")
	}
}
