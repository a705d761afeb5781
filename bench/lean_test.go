package bench

import (
	"bufio"
	"bytes"
	"context"
	"domicile/client"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"domicile/bench/baseline"
	"domicile/httpapi"
	"domicile/sqlite"
)

// outcomes runs n operations of mix one after another on one worker
// seeded with seed, through the lean client if lean is set and through c
// otherwise, and counts them: "ok" and the error kinds. The same seed
// sends the same requests through either client.
func outcomes(t *testing.T, c *httpapi.Client, lean *LeanClient, mix *Mix, p *Plan, n int, seed uint64) map[string]int {
	t.Helper()
	w := &Worker{Plan: p, Rand: newRand(seed)}
	if lean != nil {
		w.Lean = lean.Conn()
		defer w.Lean.Close()
	}
	total := 0
	for _, op := range mix.Ops {
		total += op.Weight
	}
	// A client that waits for what never comes fails, not hangs.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out := map[string]int{}
	for range n {
		op := mix.Ops[pick(mix.Ops, total, w.Rand)]
		if _, err := op.Do(ctx, c, w); err != nil {
			out[ErrorKind(err)]++
		} else {
			out["ok"]++
		}
	}
	return out
}

// compareClients runs each record mix through both clients and wants the
// same counts, and at least wantErrors errors in the read mix.
func compareClients(t *testing.T, c *httpapi.Client, p *Plan, n, wantErrors int) {
	t.Helper()
	lean, err := NewLeanClient(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"write", "read", "80/20"} {
		mix := Mixes[name]
		want := outcomes(t, c, nil, mix, p, n, 7)
		got := outcomes(t, c, lean, mix, p, n, 7)
		if !maps.Equal(got, want) {
			t.Errorf("mix %s: lean client %v, net/http client %v", name, got, want)
		}
		if name == "read" && n-want["ok"] < wantErrors {
			t.Errorf("mix %s: %v, want at least %d errors", name, want, wantErrors)
		}
	}
}

// TestLeanMatchesNetHTTPBaseline: against the raw baseline on a real
// store, the lean client and the net/http client see the same answers
// for the same requests, errors included (a subject never written reads
// as 404).
func TestLeanMatchesNetHTTPBaseline(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(baseline.New(st, nil))
	t.Cleanup(func() { srv.Close(); st.Close() })
	c := &httpapi.Client{Client: client.Client{BaseURL: srv.URL, HTTP: NewHTTPClient(4)}}
	p := &Plan{Subjects: []string{"s0", "s1", "s2"}, Record: RecordBody(256), Concurrency: 4}
	if err := prepareRecords(t.Context(), c, p); err != nil {
		t.Fatal(err)
	}
	p.Subjects = append(p.Subjects, "never written")
	compareClients(t, c, p, 120, 5)
}

// TestLeanMatchesNetHTTPDomicile: the same through domicile's own handler
// stack (httpapi, router, cells, stores), with a subject that is not
// registered; then a whole run through the lean client.
func TestLeanMatchesNetHTTPDomicile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the service")
	}
	c, subjects := newHTTPService(t)
	p := &Plan{Subjects: append(subjects[:4:4], "not-registered"), Record: RecordBody(1024), Concurrency: 4}
	compareClients(t, c, p, 100, 5)

	lean, err := NewLeanClient(c)
	if err != nil {
		t.Fatal(err)
	}
	p = &Plan{Subjects: subjects, Record: RecordBody(1024), Concurrency: 8}
	res, err := Run(t.Context(), Config{Target: "domicile", Client: c, Lean: lean, Mix: Mixes["80/20"], Workers: 4,
		Duration: 300 * time.Millisecond, Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	if res.Client != ClientLean || res.Ops == 0 || len(res.Errors) != 0 {
		t.Errorf("lean run: client %q, %d ops, errors %v", res.Client, res.Ops, res.Errors)
	}
	for _, op := range res.PerOp {
		if op.Ops == 0 || op.BytesPerSecond == 0 {
			t.Errorf("lean run: %s: %d ops, %.0f B/s", op.Name, op.Ops, op.BytesPerSecond)
		}
	}
}

// recordServer answers record requests as the baseline does, from
// memory, in ways chosen per subject:
//
//	"chunked": the answer in chunks, with a trailer
//	"busy":    503 with a problem document
//	"broken":  500 with a plain-text body
//	"drop":    the connection closed without an answer
//	"slow":    no answer until the client gives up (or 5 s)
//
// and every closeAfter-th answer on a connection closes it: with
// Connection: close, or if abrupt, by hanging up after the answer.
type recordServer struct {
	closeAfter int
	abrupt     bool
	conns      atomic.Int64
	slow       chan struct{} // receives when a slow request arrives
}

type connCount struct{ n int }

type connKey struct{}

func (s *recordServer) start(t *testing.T) *httpapi.Client {
	t.Helper()
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connCount{})
	}
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &httpapi.Client{Client: client.Client{BaseURL: srv.URL, Token: "t0ken", Purpose: "service", HTTP: NewHTTPClient(4)}}
}

func (s *recordServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/subjects/"), "/")
	if len(parts) != 4 || parts[1] != "records" || r.Header.Get("Authorization") != "Bearer t0ken" || r.Header.Get("Domicile-Purpose") != "service" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	subject, kind, id := parts[0], parts[2], parts[3]
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method == http.MethodPut && (len(body) == 0 || r.Header.Get("Content-Type") != "application/json") {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	switch subject {
	case "busy":
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":503,"code":"unavailable","detail":"try later"}`)
		return
	case "broken":
		http.Error(w, "it broke", http.StatusInternalServerError)
		return
	case "drop":
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case "slow":
		select {
		case s.slow <- struct{}{}:
		default:
		}
		// Until the client gives up; a client that would wait for ever
		// gets an answer after a while, and its test fails.
		select {
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Second):
		}
		return
	}
	data := `{"from":"a","to":"b","body":"` + strings.Repeat("x", 300) + `"}`
	if r.Method == http.MethodPut {
		data = ""
	}
	answer := `{"subject":"` + subject + `","kind":"` + kind + `","id":"` + id + `","version":1`
	if data != "" {
		answer += `,"data":` + data
	}
	answer += `,"updated":"2026-01-02T03:04:05Z"}` + "\n"
	cc := r.Context().Value(connKey{}).(*connCount)
	cc.n++
	last := s.closeAfter > 0 && cc.n%s.closeAfter == 0
	switch {
	case last && s.abrupt:
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
		bw.Flush()
		conn.Close()
		return
	case last:
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "application/json")
	if subject == "chunked" {
		w.Header().Set("Trailer", "X-Checked")
		for i := 0; i < len(answer); i += 50 {
			io.WriteString(w, answer[i:min(i+50, len(answer))])
			http.NewResponseController(w).Flush()
		}
		w.Header().Set("X-Checked", "yes")
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	io.WriteString(w, answer)
}

// TestLeanAnswers: chunked answers, error statuses and dropped
// connections count the same through both clients, by kind.
func TestLeanAnswers(t *testing.T) {
	s := &recordServer{}
	c := s.start(t)
	p := &Plan{Subjects: []string{"plain", "chunked", "busy", "broken", "drop"}, Record: RecordBody(200)}
	compareClients(t, c, p, 100, 40)

	lean, err := NewLeanClient(c)
	if err != nil {
		t.Fatal(err)
	}
	got := outcomes(t, c, lean, Mixes["read"], p, 100, 3)
	for _, kind := range []string{"ok", "status 503 unavailable", "status 500 http", "transport: unexpected EOF"} {
		if got[kind] == 0 {
			t.Errorf("no %q among %v", kind, got)
		}
	}
	// A chunked answer's data is read whole: the bytes counted are the
	// net/http client's.
	conn := lean.Conn()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n, err := conn.GetRecord(ctx, "chunked", RecordKind, "r0")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Mixes["read"].Ops[0].Do(t.Context(), c, &Worker{Plan: &Plan{Subjects: []string{"chunked"}}, Rand: newRand(1)})
	if err != nil || n != want {
		t.Errorf("chunked answer: lean counts %d bytes, net/http %d (%v)", n, want, err)
	}
}

// TestLeanServerCloses: a server that closes each connection after 3
// answers, saying so or abruptly, costs the lean client no request: it
// dials again, and sends a request that met a connection closed under it
// once more. (net/http does so only for reads when the close is abrupt,
// so only the read mix is compared then.)
func TestLeanServerCloses(t *testing.T) {
	for _, abrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("abrupt=%v", abrupt), func(t *testing.T) {
			s := &recordServer{closeAfter: 3, abrupt: abrupt}
			c := s.start(t)
			p := &Plan{Subjects: []string{"a", "b"}, Record: RecordBody(100)}
			lean, err := NewLeanClient(c)
			if err != nil {
				t.Fatal(err)
			}
			if abrupt {
				want := outcomes(t, c, nil, Mixes["read"], p, 30, 7)
				if got := outcomes(t, c, lean, Mixes["read"], p, 30, 7); !maps.Equal(got, want) {
					t.Errorf("read mix: lean client %v, net/http client %v", got, want)
				}
			} else {
				compareClients(t, c, p, 30, 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			before := s.conns.Load()
			got := outcomes(t, c, lean, Mixes["80/20"], p, 30, 5)
			if got["ok"] != 30 {
				t.Errorf("lean client: %v, want 30 ok", got)
			}
			if dials := s.conns.Load() - before; dials != 10 {
				t.Errorf("lean client opened %d connections for 30 requests, 3 a connection; want 10", dials)
			}
		})
	}
}

// TestLeanDeadline: a server that does not answer before the request's
// deadline is a timeout for both clients, and the lean connection serves
// the next request; cancelling the context ends a request under way.
func TestLeanDeadline(t *testing.T) {
	s := &recordServer{slow: make(chan struct{}, 4)}
	c := s.start(t)
	lean, err := NewLeanClient(c)
	if err != nil {
		t.Fatal(err)
	}
	conn := lean.Conn()
	defer conn.Close()
	w := &Worker{Plan: &Plan{Subjects: []string{"slow"}, Record: RecordBody(100)}, Rand: newRand(1)}
	for _, op := range []Op{getRecord(1), putRecord(1)} {
		for _, wl := range []*LeanConn{nil, conn} {
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			w.Lean = wl
			_, err := op.Do(ctx, c, w)
			cancel()
			if kind := ErrorKind(err); kind != "transport: timeout" {
				t.Errorf("%s (lean %v) past its deadline: %v (%s), want a timeout", op.Name, wl != nil, err, kind)
			}
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := conn.GetRecord(ctx, "quick", RecordKind, "r0"); err != nil {
		t.Errorf("after a timeout: %v", err)
	}

	for len(s.slow) > 0 {
		<-s.slow
	}
	cctx, ccancel := context.WithCancel(ctx)
	go func() { <-s.slow; ccancel() }()
	if _, err := conn.GetRecord(cctx, "slow", RecordKind, "r0"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v, want context.Canceled", err)
	}
}

// rawServer serves each connection the bytes answer returns for the
// request it reads.
func rawServer(t *testing.T, answer func(req *http.Request) string) *LeanClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(nc, answer(req)); err != nil {
						return
					}
				}
			}()
		}
	}()
	lean, err := NewLeanClient(&httpapi.Client{Client: client.Client{BaseURL: "http://" + ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	return lean
}

// TestLeanLimits: answers over the client's limits are errors, not hangs
// or unbounded reads; answers that are not the record asked for are
// errors too.
func TestLeanLimits(t *testing.T) {
	record := `{"subject":"s","kind":"message","id":"r0","version":1,"data":{"a":1},"updated":"2026-01-02T03:04:05Z"}`
	tests := []struct {
		name, answer string
		want         error
	}{
		{"huge header", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 5) + "Content-Length: 2\r\n\r\n{}", errHeaderTooLarge},
		{"huge line", "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("p", 3*leanLineBytes) + "\r\n\r\n", errLineTooLong},
		{"declared huge body", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n", errBodyTooLarge},
		{"chunked huge body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("400\r\n"+strings.Repeat("x", 1024)+"\r\n", 8), errBodyTooLarge},
		{"endless body", "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("x", 8000), errBodyTooLarge},
		{"bad status line", "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", errMalformed},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", errMalformed},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", errTransferCoding},
		{"another record", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(record)) + "\r\n\r\n" + strings.Replace(record, `"r0"`, `"r1"`, 1), errNotRecord},
		{"no data", "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"id\":\"r0\",\"x\":1}", errNotRecord},
		{"the record", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(record)) + "\r\n\r\n" + record, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lean := rawServer(t, func(*http.Request) string { return tt.answer })
			lean.MaxHeaderBytes, lean.MaxBodyBytes = 4096, 4096
			conn := lean.Conn()
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := conn.GetRecord(ctx, "s", RecordKind, "r0")
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewLeanClient(t *testing.T) {
	for _, tt := range []struct {
		base, token string
		ok          bool
	}{
		{"http://127.0.0.1:8700", "t", true},
		{"http://example.org/prefix/", "t", true},
		{"https://example.org", "t", false},
		{"http://", "t", false},
		{"http://example.org?x=1", "t", false},
		{"http://example.org", "t\r\nX-Evil: 1", false},
	} {
		_, err := NewLeanClient(&httpapi.Client{Client: client.Client{BaseURL: tt.base, Token: tt.token}})
		if (err == nil) != tt.ok {
			t.Errorf("NewLeanClient(%q, %q) = %v, want ok %v", tt.base, tt.token, err, tt.ok)
		}
	}
	if _, err := NewLeanClient(&httpapi.Client{Client: client.Client{BaseURL: "https://example.org"}}); !errors.Is(err, ErrLeanScheme) {
		t.Errorf("https: %v, want ErrLeanScheme", err)
	}
}

// TestLeanPathPrefix: a base URL's path prefixes every request.
func TestLeanPathPrefix(t *testing.T) {
	var path atomic.Value
	lean := rawServer(t, func(r *http.Request) string {
		path.Store(r.URL.RawPath + "|" + r.URL.Path)
		return "HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{\"id\":\"w1\"}"
	})
	lean, err := NewLeanClient(&httpapi.Client{Client: client.Client{BaseURL: "http://" + lean.addr + "/api/"}})
	if err != nil {
		t.Fatal(err)
	}
	conn := lean.Conn()
	defer conn.Close()
	if _, err := conn.PutRecord(t.Context(), "a b/c", RecordKind, "w1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := path.Load(), "/api/v1/subjects/a%20b%2Fc/records/message/w1|/api/v1/subjects/a b/c/records/message/w1"; got != want {
		t.Errorf("request path %q, want %q", got, want)
	}
}

// cannedServer answers every request on its connections (requests
// without a body, each ending in an empty line) with answer; it does as
// little as a server can, so that a benchmark against it measures the
// client.
func cannedServer(b *testing.B, answer string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				buf := make([]byte, 64<<10)
				var out []byte
				n := 0
				for {
					m, err := nc.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					out = out[:0]
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						out = append(out, answer...)
						n = copy(buf, buf[i+4:n])
					}
					if _, err := nc.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// BenchmarkClientGetRecord measures a record read through each client
// against a server that only writes a canned answer: the difference is
// the clients' own cost.
//
//	go test -run '^$' -bench ClientGetRecord -benchmem ./bench/
func BenchmarkClientGetRecord(b *testing.B) {
	record := `{"subject":"s","kind":"message","id":"r0","version":1,"data":` + string(RecordBody(1024)) + `,"updated":"2026-01-02T03:04:05.123456789Z"}` + "\n"
	answer := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nEtag: \"v1\"\r\nDate: Fri, 02 Jan 2026 03:04:05 GMT\r\nContent-Length: " +
		strconv.Itoa(len(record)) + "\r\n\r\n" + record
	c := &httpapi.Client{Client: client.Client{BaseURL: cannedServer(b, answer), Token: "t0ken", Purpose: "service", HTTP: NewHTTPClient(64)}}
	lean, err := NewLeanClient(c)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{ClientLean, ClientNetHTTP} {
		b.Run(strings.ReplaceAll(name, "/", "_"), func(b *testing.B) {
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				conn := lean.Conn()
				defer conn.Close()
				for pb.Next() {
					var err error
					if name == ClientLean {
						_, err = conn.GetRecord(ctx, "s", RecordKind, "r0")
					} else {
						_, err = c.GetRecord(ctx, "s", RecordKind, "r0")
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
