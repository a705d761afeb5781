package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"domicile"
	"domicile/deploy"
)

// movingDir is a directory whose entries a test changes, as erasures,
// registrations and moves between cells do, counting its reads.
type movingDir struct {
	mu    sync.Mutex
	homes map[string]string
	reads int
}

func (d *movingDir) Home(_ context.Context, id string) (domicile.Home, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	if c, ok := d.homes[id]; ok {
		return domicile.Home{Cell: c}, nil
	}
	return domicile.Home{}, domicile.Errorf(domicile.ENotFound, "no such subject")
}

func (d *movingDir) PersonKey(id string) domicile.SubjectRef { return sha256.Sum256([]byte(id)) }

func (d *movingDir) set(id, cell string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cell == "" {
		delete(d.homes, id)
	} else {
		d.homes[id] = cell
	}
}

func (d *movingDir) readCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads
}

// holdingCell is a cell process as far as the router can tell: it reads
// the directory itself, answers 421 for a subject whose home is another
// cell and 404 for one the directory does not know, and otherwise echoes
// its name and the body it read. It reads every body before answering,
// as a cell may.
func holdingCell(t *testing.T, name string, dir *movingDir, hits *sync.Map) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, _ := hits.LoadOrStore(name, new(int))
		dir.mu.Lock()
		*n.(*int)++
		home, ok := dir.homes[r.PathValue("id")]
		dir.mu.Unlock()
		switch {
		case r.PathValue("id") == "misdirected":
			w.WriteHeader(http.StatusMisdirectedRequest)
		case !ok:
			w.WriteHeader(http.StatusNotFound)
		case home != name:
			w.WriteHeader(http.StatusMisdirectedRequest)
		default:
			json.NewEncoder(w).Encode(map[string]any{"cell": name, "body": string(body)})
		}
	}))
	mux := http.NewServeMux()
	mux.Handle("/v1/subjects/{id}/{rest...}", s.Config.Handler)
	s.Config.Handler = mux
	t.Cleanup(s.Close)
	return s
}

// TestProxyHomeCache: the router reads the directory once per subject,
// and a cached home that went stale (the subject moved, or was erased and
// registered again elsewhere) costs one 421 from the old cell and one
// more directory read, never a wrong answer: the request, body and all,
// reaches the cell that holds the subject. A body too large to keep is
// answered 503 with nothing done, and the same request sent again goes
// to the right cell.
func TestProxyHomeCache(t *testing.T) {
	dep := deploy.Default()
	dir := &movingDir{homes: map[string]string{"li": "cn-gz1"}}
	var hits sync.Map
	for i, c := range dep.Cells {
		dep.Cells[i].URL = holdingCell(t, c.ID, dir, &hits).URL
	}
	p, err := NewProxy(ProxyConfig{Deployment: func() *domicile.Deployment { return dep }, Own: http.NotFoundHandler(), Directory: dir, Probe: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	router := httptest.NewServer(p)
	defer router.Close()
	hitsOf := func(cell string) int {
		n, ok := hits.Load(cell)
		if !ok {
			return 0
		}
		return *n.(*int)
	}
	do := func(method, path string, body []byte) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, router.URL+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Cell, Body string }
		json.NewDecoder(resp.Body).Decode(&got)
		return resp.StatusCode, got.Cell, got.Body
	}

	for range 5 {
		if code, cell, _ := do("GET", "/v1/subjects/li/records/profile/p", nil); code != 200 || cell != "cn-gz1" {
			t.Fatalf("GET = %d from %q, want 200 from cn-gz1", code, cell)
		}
	}
	if n := dir.readCount(); n != 1 {
		t.Errorf("five requests read the directory %d times, want 1", n)
	}

	dir.set("li", "eu-fra1") // moved
	if code, cell, body := do("PUT", "/v1/subjects/li/records/profile/p", []byte(`{"name":"Li"}`)); code != 200 || cell != "eu-fra1" || body != `{"name":"Li"}` {
		t.Errorf("PUT after a move = %d from %q with body %q, want 200 from eu-fra1 with the body sent", code, cell, body)
	}
	if n := hitsOf("cn-gz1"); n != 6 {
		t.Errorf("the old cell was asked %d times, want 6 (5 + the one 421)", n)
	}
	if code, cell, _ := do("GET", "/v1/subjects/li", nil); code != 200 || cell != "eu-fra1" {
		t.Errorf("GET after the move = %d from %q, want 200 from eu-fra1", code, cell)
	}
	if n := dir.readCount(); n != 2 {
		t.Errorf("directory reads after the move: %d, want 2", n)
	}

	dir.set("li", "us-east1") // erased, and registered again elsewhere
	big := bytes.Repeat([]byte("x"), maxReplay+1)
	if code, _, _ := do("PUT", "/v1/subjects/li/objects/o", big); code != http.StatusServiceUnavailable {
		t.Errorf("a large upload to a stale home = %d, want 503", code)
	}
	if code, cell, body := do("PUT", "/v1/subjects/li/objects/o", big); code != 200 || cell != "us-east1" || len(body) != len(big) {
		t.Errorf("the same upload again = %d from %q with %d bytes, want 200 from us-east1 with %d", code, cell, len(body), len(big))
	}

	dir.set("li", "") // erased
	if code, _, _ := do("GET", "/v1/subjects/li", nil); code != http.StatusNotFound {
		t.Errorf("GET after the erasure = %d, want 404 (the cell reads the directory itself)", code)
	}
	// A 421 from the home the directory names now is the cell's answer,
	// relayed as it is: the request is sent once more, never twice.
	dir.set("misdirected", "cn-gz1")
	do("GET", "/v1/subjects/misdirected", nil) // cached
	before := hitsOf("cn-gz1")
	if code, _, _ := do("GET", "/v1/subjects/misdirected", nil); code != http.StatusMisdirectedRequest {
		t.Errorf("GET of a subject its cell refuses = %d, want 421", code)
	}
	if n := hitsOf("cn-gz1") - before; n != 2 {
		t.Errorf("the cell was asked %d times, want 2 (the cached home, then the directory's)", n)
	}
}

// TestHomeCacheBounded: the cache never holds more than its bound.
func TestHomeCacheBounded(t *testing.T) {
	c := newHomeCache(10)
	for i := range 100 {
		c.put(sha256.Sum256([]byte{byte(i)}), "cn-gz1")
	}
	if n := c.len(); n != 10 {
		t.Errorf("len = %d after 100 puts, want 10", n)
	}
	k := sha256.Sum256([]byte("k"))
	c.put(k, "cn-gz1")
	c.drop(k, "eu-fra1")
	if c.get(k) != "cn-gz1" {
		t.Error("drop removed an entry naming another cell")
	}
	c.drop(k, "cn-gz1")
	if c.get(k) != "" {
		t.Error("drop kept the entry")
	}
}
