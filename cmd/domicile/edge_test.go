package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile/deploy"
)

// TestEdgeHTTP checks the headers and the HTTP semantics of the edge
// through the real binary: nosniff everywhere, objects as sandboxed
// attachments unless the deployment allows their type inline, ranges and
// conditional reads per RFC 9110, and ids in NFC.
func TestEdgeHTTP(t *testing.T) {
	dep := filepath.Join(t.TempDir(), "deployment.yaml")
	yaml := string(deploy.DefaultYAML()) + "\nobjects:\n  inline_types: [image/png]\n"
	if err := os.WriteFile(dep, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", "--deployment", dep)
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	if _, err := c.CreateSubject(ctx, "jos\u00e9", "CN", ""); err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Domicile-Purpose": app}
	with := func(kv ...string) map[string]string {
		out := map[string]string{"Domicile-Purpose": app}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	subj := "/v1/subjects/" + url.PathEscape("jose\u0301") // decomposed: the same subject
	put := func(name, ctype, body string) {
		t.Helper()
		st, _, b := s.do("PUT", subj+"/objects/"+name, tok, with("Content-Type", ctype), strings.NewReader(body))
		if st != 201 && st != 200 {
			t.Fatalf("put %s: %d %s", name, st, b)
		}
	}
	put("page.html", "text/html", "<script>alert(1)</script>")
	put("pic.png", "image/png", "\x89PNG....")
	put("empty.bin", "application/octet-stream", "")
	put("five.txt", "text/plain", "12345")

	t.Run("nosniff on every response", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/v1/cells", "/v1/nothing", subj + "/objects/five.txt", "/metrics"} {
			_, hdr, _ := s.do("GET", p, tok, h, nil)
			if hdr.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q", p, hdr.Get("X-Content-Type-Options"))
			}
		}
	})

	t.Run("downloads", func(t *testing.T) {
		for name, want := range map[string]string{"page.html": `attachment; filename="page.html"`, "pic.png": `inline; filename="pic.png"`, "five.txt": `attachment; filename="five.txt"`} {
			st, hdr, _ := s.do("GET", subj+"/objects/"+name, tok, h, nil)
			if st != 200 || hdr.Get("Content-Disposition") != want || !strings.Contains(hdr.Get("Content-Security-Policy"), "sandbox") {
				t.Errorf("GET %s: %d, Content-Disposition %q, CSP %q; want %s and a sandbox", name, st, hdr.Get("Content-Disposition"), hdr.Get("Content-Security-Policy"), want)
			}
		}
	})

	t.Run("ranges", func(t *testing.T) {
		tests := []struct {
			name, obj, rng string
			status         int
			body, cr       string
		}{
			{"suffix of an empty object", "empty.bin", "bytes=-5", 200, "", ""},
			{"suffix longer than the object", "five.txt", "bytes=-500", 206, "12345", "bytes 0-4/5"},
			{"last byte past int64", "five.txt", "bytes=1-99999999999999999999999", 206, "2345", "bytes 1-4/5"},
			{"suffix past int64", "five.txt", "bytes=-99999999999999999999999", 206, "12345", "bytes 0-4/5"},
			{"several ranges, served whole", "five.txt", "bytes=0-0,2-2", 200, "12345", ""},
			{"another unit", "five.txt", "items=0-1", 200, "12345", ""},
		}
		for _, tt := range tests {
			st, hdr, b := s.do("GET", subj+"/objects/"+tt.obj, tok, with("Range", tt.rng), nil)
			if st != tt.status || string(b) != tt.body || hdr.Get("Content-Range") != tt.cr || hdr.Get("Content-Length") != fmt.Sprint(len(tt.body)) {
				t.Errorf("%s: %d %q, Content-Range %q, Content-Length %q; want %d %q %q", tt.name, st, b, hdr.Get("Content-Range"), hdr.Get("Content-Length"), tt.status, tt.body, tt.cr)
			}
		}
		st, hdr, _ := s.do("GET", subj+"/objects/empty.bin", tok, with("Range", "bytes=0-"), nil)
		if st != 416 || hdr.Get("Content-Range") != "bytes */0" {
			t.Errorf("bytes=0- of an empty object: %d %q, want 416 bytes */0", st, hdr.Get("Content-Range"))
		}
	})

	t.Run("conditional reads", func(t *testing.T) {
		_, hdr, _ := s.do("GET", subj+"/objects/five.txt", tok, h, nil)
		etag := hdr.Get("ETag")
		if st, _, b := s.do("GET", subj+"/objects/five.txt", tok, with("If-None-Match", etag), nil); st != 304 || len(b) != 0 {
			t.Errorf("If-None-Match the current tag: %d %q, want 304 and no body", st, b)
		}
		if st, _, b := s.do("GET", subj+"/objects/five.txt", tok, with("Range", "bytes=0-1", "If-Range", `"v0-0000000000000000"`), nil); st != 200 || string(b) != "12345" {
			t.Errorf("If-Range a stale tag: %d %q, want the whole object", st, b)
		}
		if st, _, b := s.do("GET", subj+"/objects/five.txt", tok, with("Range", "bytes=0-1", "If-Range", etag), nil); st != 206 || string(b) != "12" {
			t.Errorf("If-Range the current tag: %d %q, want 206 12", st, b)
		}
		if st, _, _ := s.do("GET", subj+"/objects/five.txt", tok, with("If-Match", `"stale"`), nil); st != 412 {
			t.Errorf("If-Match stale on a read: %d, want 412", st)
		}
		if st, _, _ := s.do("HEAD", subj+"/objects/five.txt", tok, h, nil); st != 200 {
			t.Errorf("HEAD: %d", st)
		}
	})

	t.Run("records by their NFC id", func(t *testing.T) {
		nfd, nfc := url.PathEscape("cafe\u0301"), url.PathEscape("caf\u00e9")
		st, _, b := s.do("PUT", subj+"/records/message/"+nfd, tok, with("Content-Type", "application/json"), strings.NewReader(`{"body":"one"}`))
		if st != 201 {
			t.Fatalf("put by the decomposed id: %d %s", st, b)
		}
		st, _, b = s.do("PUT", subj+"/records/message/"+nfc, tok, with("Content-Type", "application/json", "If-None-Match", "*"), strings.NewReader(`{"body":"two"}`))
		if st != 412 {
			t.Fatalf("create-only put by the composed id: %d %s; want 412 (it is the same record)", st, b)
		}
		r, err := c.GetRecord(ctx, "jos\u00e9", "message", "caf\u00e9")
		if err != nil || r.ID != "caf\u00e9" || !strings.Contains(string(r.Data), "one") {
			t.Fatalf("read by the composed id: %+v, %v", r, err)
		}
		page, err := c.ListRecords(ctx, "jose\u0301", "", 0, "")
		if err != nil || len(page.Records) != 1 {
			t.Fatalf("records of the subject: %+v, %v; want one", page, err)
		}
	})

	t.Run("If-None-Match * after a delete", func(t *testing.T) {
		if _, err := c.PutRecord(ctx, "jos\u00e9", "message", "gone", map[string]string{"body": "x"}, ""); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteRecord(ctx, "jos\u00e9", "message", "gone", `"v1"`); err != nil {
			t.Fatal(err)
		}
		st, hdr, b := s.do("PUT", subj+"/records/message/gone", tok, with("Content-Type", "application/json", "If-None-Match", "*"), strings.NewReader(`{"body":"back"}`))
		if st != 200 || hdr.Get("ETag") != `"v3"` {
			t.Fatalf("If-None-Match * on a deleted record: %d %s %s; want 200 and version 3 (versions never repeat)", st, hdr.Get("ETag"), b)
		}
	})
}

// blobFiles returns the object blobs of a cell and the files left in its
// blob staging directory.
func blobFiles(t *testing.T, data, cell string) (blobs, staged []string) {
	t.Helper()
	root := filepath.Join(data, cell, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, "tmp"+string(filepath.Separator)) {
			staged = append(staged, rel)
		} else {
			blobs = append(blobs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blobs, staged
}

// rawRequest opens a connection to the server and writes a request head
// declaring a body of n bytes.
func rawRequest(t *testing.T, s *server, method, path, token string, hdr map[string]string, n int) net.Conn {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, u.Host, n)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// trickle writes a byte every 200 ms to conn until it fails or stop is
// closed.
func trickle(conn net.Conn, stop <-chan struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

// cutOff reads conn until the server ends it and returns the status it
// answered, if any. The test fails if the server has not ended the
// connection within limit: far longer than the body deadline, and far
// shorter than a trickling client would hold it.
func cutOff(t *testing.T, conn net.Conn, limit time.Duration) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(limit))
	br := bufio.NewReader(conn)
	status := 0
	if resp, err := http.ReadResponse(br, nil); err == nil {
		status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
	}
	_, err := io.Copy(io.Discard, br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held the connection after %s", limit)
	}
	return status
}

// TestSlowBody checks the per-request body deadline: a client that
// declares a body and trickles it is cut off, authenticated or not, and
// its upload leaves nothing behind.
func TestSlowBody(t *testing.T) {
	s := startServer(t, "", "--body-timeout", "1s", "--min-rate", "4096")
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	if _, err := c.CreateSubject(ctx, "slow", "CN", ""); err != nil {
		t.Fatal(err)
	}
	blobsBefore, _ := blobFiles(t, s.Data, "cn-gz1")

	t.Run("unauthenticated", func(t *testing.T) {
		conn := rawRequest(t, s, "POST", "/v1/subjects", "", map[string]string{"Content-Type": "application/json"}, 100_000)
		defer conn.Close()
		io.WriteString(conn, `{"id":"slow-two","jur`)
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, stop)
		if st := cutOff(t, conn, 40*time.Second); st != 401 && st != 0 {
			t.Errorf("the unauthenticated slow client was answered %d", st)
		}
	})

	t.Run("an upload", func(t *testing.T) {
		conn := rawRequest(t, s, "PUT", "/v1/subjects/slow/objects/big.bin", tok, map[string]string{"Content-Type": "application/octet-stream", "Domicile-Purpose": app}, 1<<20)
		defer conn.Close()
		conn.Write(bytes.Repeat([]byte("a"), 10<<10))
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, stop)
		if st := cutOff(t, conn, 40*time.Second); st != 408 && st != 0 {
			t.Errorf("the slow upload was answered %d, want 408 or a closed connection", st)
		}
		if _, err := c.GetObject(ctx, "slow", "big.bin", ""); !isStatus(err, 404) {
			t.Errorf("the cut-off upload left an object: %v", err)
		}
		eventually(t, 10*time.Second, "no blob left behind", func() bool {
			blobs, staged := blobFiles(t, s.Data, "cn-gz1")
			return len(blobs) == len(blobsBefore) && len(staged) == 0
		})
	})

	t.Run("a body at a good rate is not cut off", func(t *testing.T) {
		payload := bytes.Repeat([]byte("b"), 3<<20)
		if _, err := c.PutObject(ctx, "slow", "ok.bin", "application/octet-stream", bytes.NewReader(payload), int64(len(payload))); err != nil {
			t.Fatal(err)
		}
	})
	s.Stop() // the log is whole
	if l := s.Log(); strings.Contains(l, "status=5") || !strings.Contains(l, "status=408") {
		t.Errorf("the slow clients' access lines: want a 408 and no 5xx:\n%s", l)
	}
}

// TestAbortedUpload checks that a client that goes away in the middle of
// an upload gets no 500 in the server log and leaves no blob behind.
func TestAbortedUpload(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	if _, err := c.CreateSubject(ctx, "quitter", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "quitter", "kept.bin", "application/octet-stream", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
	blobsBefore, _ := blobFiles(t, s.Data, "cn-gz1")
	// Gone after the head, after a byte, within the first chunk, past
	// it; and a chunked upload cut in a chunk.
	sent := []int{0, 1, 60 << 10, 300 << 10}
	for i, n := range sent {
		conn := rawRequest(t, s, "PUT", fmt.Sprintf("/v1/subjects/quitter/objects/gone%d.bin", i), tok,
			map[string]string{"Content-Type": "application/octet-stream", "Domicile-Purpose": app}, 4<<20)
		conn.Write(bytes.Repeat([]byte("z"), n))
		time.Sleep(100 * time.Millisecond) // let the server start reading; not a timing assertion
		conn.Close()
	}
	u, _ := url.Parse(s.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /v1/subjects/quitter/objects/gone%d.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nDomicile-Purpose: %s\r\n"+
		"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s", len(sent), u.Host, tok, app, 100<<10, bytes.Repeat([]byte("c"), 50<<10))
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	uploads := len(sent) + 1
	eventually(t, 20*time.Second, "the aborted uploads in the access log", func() bool {
		return strings.Count(s.Log(), `route="PUT /v1/subjects/{id}/objects/{name}"`) >= uploads+1
	})
	log := s.Log()
	if strings.Contains(log, "status=5") || strings.Contains(log, "internal error") || strings.Contains(log, "level=ERROR") {
		t.Errorf("an aborted upload was logged as a server error:\n%s", log)
	}
	eventually(t, 10*time.Second, "no blob left behind", func() bool {
		blobs, staged := blobFiles(t, s.Data, "cn-gz1")
		return len(blobs) == len(blobsBefore) && len(staged) == 0
	})
	for i := range uploads {
		if _, err := c.GetObject(ctx, "quitter", fmt.Sprintf("gone%d.bin", i), ""); !isStatus(err, 404) {
			t.Errorf("aborted upload %d left an object: %v", i, err)
		}
	}
}

// testPKI is a CA made for one test, with a server and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                               string
	caFile, certFile, keyFile         string
	clientCertFile, clientKeyFile     string
	pool                              *x509.CertPool
	client                            tls.Certificate
	strangerCertFile, strangerKeyFile string
	// issueClient makes a client certificate of the CA for name (its
	// common name), and returns its files.
	issueClient func(name string) (certFile, keyFile string)
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir}
	writePEM := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey, key *ecdsa.PrivateKey) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	keyPEM := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(name, "PRIVATE KEY", der)
	}
	caKey := newKey()
	ca := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "domicile test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil, caKey)
	p.caFile = writePEM("ca.pem", "CERTIFICATE", ca.Raw)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)

	srvKey := newKey()
	srv := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey, srvKey)
	p.certFile, p.keyFile = writePEM("server.pem", "CERTIFICATE", srv.Raw), keyPEM("server.key", srvKey)

	p.issueClient = func(name string) (string, string) {
		k := newKey()
		c := issue(&x509.Certificate{Subject: pkix.Name{CommonName: name},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey, k)
		return writePEM(name+".pem", "CERTIFICATE", c.Raw), keyPEM(name+".key", k)
	}
	p.clientCertFile, p.clientKeyFile = p.issueClient("client")
	var err error
	if p.client, err = tls.LoadX509KeyPair(p.clientCertFile, p.clientKeyFile); err != nil {
		t.Fatal(err)
	}
	// A client certificate from a CA the server does not trust.
	otherKey := newKey()
	other := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "another CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil, otherKey)
	strKey := newKey()
	str := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "a stranger"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, other, otherKey, strKey)
	p.strangerCertFile, p.strangerKeyFile = writePEM("stranger.pem", "CERTIFICATE", str.Raw), keyPEM("stranger.key", strKey)
	return p
}

// httpClient returns a client trusting the test CA, with cert as its
// client certificate (none if nil).
func (p *testPKI) httpClient(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestHTTPS is the walk-through over mutual TLS, with a CA made in the
// test: the service serves HTTPS, refuses clients without a certificate
// from the CA, and the CLI reaches it with --cacert, --cert and --key.
func TestHTTPS(t *testing.T) {
	pki := newTestPKI(t)
	s := startServer(t, "", "--tls-cert", pki.certFile, "--tls-key", pki.keyFile, "--tls-client-ca", pki.caFile)
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("serve with --tls-cert listens on %s", s.URL)
	}
	s.HTTP = pki.httpClient(&pki.client)
	ctx := context.Background()

	c := s.client(s.token("app", "CN", ""), app, "")
	if _, err := c.CreateSubject(ctx, "li.wei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, "li.wei", "message", "m1", map[string]string{"body": "明天见"}, ""); err != nil {
		t.Fatal(err)
	}
	photo := bytes.Repeat([]byte{0xff, 0xd8}, 100<<10)
	if _, err := c.PutObject(ctx, "li.wei", "photo1.jpg", "image/jpeg", bytes.NewReader(photo), int64(len(photo))); err != nil {
		t.Fatal(err)
	}
	resp, err := c.GetObject(ctx, "li.wei", "photo1.jpg", "")
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(back, photo) || resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Fatalf("the photo over TLS: %d bytes, TLS %v, %s; want it whole, over HTTP/2", len(back), resp.TLS != nil, resp.Proto)
	}
	r, err := c.GetRecord(ctx, "li.wei", "message", "m1")
	if err != nil || !strings.Contains(string(r.Data), "明天见") {
		t.Fatalf("the message over TLS: %+v, %v", r, err)
	}

	// Without a client certificate, or with one from another CA, or in
	// plain HTTP: no answer from the API.
	stranger, err := tls.LoadX509KeyPair(pki.strangerCertFile, pki.strangerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, hc := range map[string]*http.Client{"no client certificate": pki.httpClient(nil), "a stranger's certificate": pki.httpClient(&stranger)} {
		req, _ := http.NewRequest("GET", s.URL+"/v1/cells", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s: answered %d, want the handshake refused", name, resp.StatusCode)
		}
	}
	if resp, err := http.Get(strings.Replace(s.URL, "https://", "http://", 1) + "/v1/cells"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP to the TLS port answered 200: %s", b)
		}
	}

	// The CLI, with the CA and the client certificate.
	cmd := exec.Command(binary, "record", "get", "--server", s.URL, "--token", c.Token, "--purpose", app,
		"--cacert", pki.caFile, "--cert", pki.clientCertFile, "--key", pki.clientKeyFile, "--subject", "li.wei", "--kind", "message", "--id", "m1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "明天见") {
		t.Fatalf("record get over mutual TLS: %v\n%s", err, out)
	}
	cmd = exec.Command(binary, "record", "get", "--server", s.URL, "--token", c.Token, "--purpose", app,
		"--cacert", pki.caFile, "--subject", "li.wei", "--kind", "message", "--id", "m1")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("record get without a client certificate succeeded:\n%s", out)
	}
}

// TestServerLog runs the server with a JSON log and checks that each
// request is one access line with its route template, status, duration,
// role and cell, and that no line holds an id, a query or a body.
func TestServerLog(t *testing.T) {
	s := startServer(t, "", "--log-format", "json")
	ctx := context.Background()
	tok := s.token("app", "CN", "")
	c := s.client(tok, app, "")
	const subject, record, secret = "subject-id-7f3a", "record-id-91c2", "body-text-5e0d"
	if _, err := c.CreateSubject(ctx, subject, "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, subject, "message", record, map[string]string{"body": secret}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListRecords(ctx, subject, "message", 1, "Y3Vyc29yLXZhbHVl"); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
	if _, err := c.GetRecord(ctx, "nobody-"+subject, "message", record); err == nil {
		t.Fatal("an unknown subject was found")
	}
	s.Stop()
	type line struct {
		Msg      string  `json:"msg"`
		Level    string  `json:"level"`
		Method   string  `json:"method"`
		Route    string  `json:"route"`
		Status   int     `json:"status"`
		Duration float64 `json:"duration"`
		Role     string  `json:"role"`
		Cell     string  `json:"cell"`
	}
	var access []line
	for _, l := range strings.Split(strings.TrimSpace(s.Log()), "\n") {
		var ln line
		if err := json.Unmarshal([]byte(l), &ln); err != nil {
			t.Fatalf("a log line is not JSON: %q", l)
		}
		for _, leak := range []string{subject, record, secret, "Y3Vyc29y", "cursor=", "dmc_"} {
			if strings.Contains(l, leak) {
				t.Errorf("a log line holds %q: %s", leak, l)
			}
		}
		if ln.Msg == "request" {
			access = append(access, ln)
		}
	}
	want := map[string]line{
		"POST /v1/subjects":                          {Method: "POST", Status: 201, Role: "app", Cell: "cn-gz1"},
		"PUT /v1/subjects/{id}/records/{kind}/{rid}": {Method: "PUT", Status: 201, Role: "app", Cell: "cn-gz1"},
		"GET /v1/subjects/{id}/records":              {Method: "GET", Status: 400, Role: "app"},
		"GET /v1/subjects/{id}/records/{kind}/{rid}": {Method: "GET", Status: 404, Role: "app"},
		"POST /v1/tokens":                            {Method: "POST", Status: 201, Role: "admin"},
	}
	for route, w := range want {
		found := false
		for _, a := range access {
			if a.Route == route && a.Method == w.Method && a.Status == w.Status && a.Role == w.Role && a.Cell == w.Cell && a.Duration > 0 && a.Level == "INFO" {
				found = true
			}
		}
		if !found {
			t.Errorf("no access line %s %d role %s cell %q in:\n%+v", route, w.Status, w.Role, w.Cell, access)
		}
	}
}

// TestLogWrittenBeforeListening checks that what the server logs while it
// starts is written before it prints its "listening" line: whoever waits
// for that line (a supervisor, a script, these tests) can read the start's
// log at once, though the log is otherwise written every 200 ms.
func TestLogWrittenBeforeListening(t *testing.T) {
	s := startServer(t, "")
	if n := strings.Count(s.Log(), `msg="cell log integrity checked"`); n != 3 {
		t.Fatalf("when the server said it listens, its stderr held %d of its 3 cells' start lines:\n%s", n, s.Log())
	}
}
