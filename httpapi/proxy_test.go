package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"domicile"
	"domicile/deploy"
)

// TestPlacement routes registrations as the policy places them.
func TestPlacement(t *testing.T) {
	dep := deploy.Default()
	tests := []struct {
		name, body, want string
	}{
		{"CN to its cell", `{"id":"a","jurisdiction":"CN"}`, "cn-gz1"},
		{"a member state to the EU cell", `{"id":"a","jurisdiction":"DE"}`, "eu-fra1"},
		{"anyone else to the catch-all", `{"id":"a","jurisdiction":"HK"}`, "us-east1"},
		{"the cell asked for, permitted", `{"id":"a","jurisdiction":"CN","cell":"cn-gz1"}`, "cn-gz1"},
		{"the cell asked for, forbidden: it refuses", `{"id":"a","jurisdiction":"CN","cell":"us-east1"}`, "us-east1"},
		{"an unknown cell: any cell answers", `{"id":"a","jurisdiction":"CN","cell":"mars-1"}`, ""},
		{"an unknown jurisdiction", `{"id":"a","jurisdiction":"ZZ"}`, ""},
		{"malformed", `{"id":`, ""},
		{"not an object", `[1]`, ""},
		{"field names match as the cell's decoder does", `{"ID":"a","Jurisdiction":"CN"}`, "cn-gz1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := placement(dep, []byte(tt.body)); got != tt.want {
				t.Errorf("placement(%s) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

// FuzzPlacement: whatever the body, the router picks a cell of the
// deployment or none, and the cell it picks is the policy's placement of
// the jurisdiction the body names, or the cell the body asks for.
func FuzzPlacement(f *testing.F) {
	dep := deploy.Default()
	for _, s := range []string{`{"id":"a","jurisdiction":"CN"}`, `{"jurisdiction":"CN","cell":"us-east1"}`, `{"jurisdiction":"EU"}`, `{`, `null`, `{"jurisdiction":"cn"}`} {
		f.Add([]byte(s))
	}
	var cells []string
	for _, c := range dep.Cells {
		cells = append(cells, c.ID)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := placement(dep, body)
		if got == "" {
			return
		}
		if !slices.Contains(cells, got) {
			t.Fatalf("placement(%q) = %q, not a cell of the deployment", body, got)
		}
		var req struct{ Jurisdiction, Cell string }
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("placement(%q) = %q from a body that does not parse", body, got)
		}
		j, err := domicile.ParseJurisdiction(req.Jurisdiction)
		if err != nil {
			t.Fatalf("placement(%q) = %q for an unknown jurisdiction", body, got)
		}
		if got != req.Cell && !slices.Contains(dep.PermittedCells(j), got) {
			t.Fatalf("placement(%q) = %q: neither asked for nor permitted", body, got)
		}
	})
}

// FuzzSubjectsOf: the subjects a body names, bounded, or none.
func FuzzSubjectsOf(f *testing.F) {
	for _, s := range []string{`{"subjects":["a","b"]}`, `{"subjects":[]}`, `{"subjects":"a"}`, `{}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, ok := subjectsOf(body)
		if !ok && ids != nil {
			t.Fatalf("subjectsOf(%q) = %v with ok false", body, ids)
		}
		if ok && !json.Valid(body) {
			t.Fatalf("subjectsOf(%q) accepted a body that is not JSON", body)
		}
	})
}

// dirMap is a directory of a few subjects, for the proxy's own tests.
type dirMap map[string]string

func (d dirMap) Home(_ context.Context, id string) (domicile.Home, error) {
	if c, ok := d[id]; ok {
		return domicile.Home{Cell: c}, nil
	}
	return domicile.Home{}, domicile.Errorf(domicile.ENotFound, "no such subject")
}

func (dirMap) PersonKey(id string) domicile.SubjectRef { return sha256.Sum256([]byte(id)) }

// echoCell answers every request with what it received: its name, the
// method, the escaped path, the query, the headers that matter, and the
// number of body bytes; GET /big answers n bytes.
func echoCell(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/big") {
			w.Write(bytes.Repeat([]byte("x"), 5<<20))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"cell": name, "method": r.Method, "path": r.URL.EscapedPath(), "query": r.URL.RawQuery,
			"auth": r.Header.Get("Authorization"), "xff": r.Header.Get("X-Forwarded-For"), "fwd": r.Header.Get("Forwarded"), "host": r.Host, "body": n})
	}))
	t.Cleanup(s.Close)
	return s
}

// TestProxyForwardsAsSent: the router forwards to the subject's cell the
// escaped path, the query, the body (streamed, both ways) and the
// caller's Authorization, adds no Forwarded or X-Forwarded-For, logs
// route patterns and never the path; a cell that cannot be reached is
// answered 503 with Retry-After and the deployment-wide routes go to the
// next cell.
func TestProxyForwardsAsSent(t *testing.T) {
	dep := deploy.Default()
	cn, eu := echoCell(t, "cn-gz1"), echoCell(t, "eu-fra1")
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there now
	for i, u := range []string{cn.URL, eu.URL, deadURL} {
		dep.Cells[i].URL = u
	}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logBuf}, nil))
	p, err := NewProxy(ProxyConfig{Deployment: func() *domicile.Deployment { return dep }, Own: http.NotFoundHandler(),
		Directory: dirMap{"li/wei": "cn-gz1", "anna": "eu-fra1", "bob": "us-east1"}, Logger: log, Probe: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	router := httptest.NewServer(p)
	defer router.Close()

	do := func(method, path string, body io.Reader, hdr ...string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, router.URL+path, body)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]any
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &got)
		return resp, got
	}
	_, got := do("PUT", "/v1/subjects/li%2Fwei/objects/a%20b.jpg?x=1", bytes.NewReader(make([]byte, 3<<20)),
		"Authorization", "Bearer dmc_secret", "X-Forwarded-For", "203.0.113.7", "Forwarded", "for=203.0.113.7")
	want := map[string]any{"cell": "cn-gz1", "method": "PUT", "path": "/v1/subjects/li%2Fwei/objects/a%20b.jpg", "query": "x=1",
		"auth": "Bearer dmc_secret", "xff": "", "fwd": "", "body": float64(3 << 20)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("the cell received %s = %v, want %v", k, got[k], v)
		}
	}
	if h, _ := got["host"].(string); !strings.HasPrefix(cn.URL, "http://"+h) {
		t.Errorf("the cell received Host %q, want its own", h)
	}
	resp, err := http.Get(router.URL + "/v1/subjects/anna/big")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != 5<<20 {
		t.Errorf("download through the router: %d bytes, want %d", n, 5<<20)
	}
	resp, _ = do("GET", "/v1/subjects/bob", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("a subject of a cell that is down: %d, Retry-After %q; want 503, 5", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Marked down, us-east1 is not chosen for the deployment-wide routes;
	// cn-gz1, first and up, is.
	if _, got := do("GET", "/v1/mechanisms", nil); got["cell"] != "cn-gz1" {
		t.Errorf("deployment-wide route went to %v, want cn-gz1", got["cell"])
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, s := range []string{"li/wei", "li%2Fwei", "anna", "bob", "a%20b", "a b", "x=1", "dmc_secret", "203.0.113.7"} {
		if strings.Contains(logBuf.String(), s) {
			t.Errorf("the router's log holds %q:\n%s", s, logBuf.String())
		}
	}
	if !strings.Contains(logBuf.String(), "route=/v1/subjects/{id}/objects/{name}") {
		t.Errorf("the router's log lacks the route pattern:\n%s", logBuf.String())
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
