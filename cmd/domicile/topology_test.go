package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"domicile/client"
	"domicile/httpapi"
	"domicile/internal/browsertest"
)

// startProcess starts the binary with args (serve with --addr or a cell
// url) and waits until it listens. Its stdout and stderr are kept.
func startProcess(t *testing.T, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	outBuf := &syncBuffer{}
	errBuf, errFile := newProcLog(t)
	cmd.Stderr = errFile
	err = cmd.Start()
	errFile.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, out: errBuf, stdout: outBuf}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			outBuf.Write([]byte(sc.Text() + "\n"))
			if u, ok := strings.CutPrefix(sc.Text(), "domicile: listening on "); ok {
				urlc <- u
			}
		}
	}()
	select {
	case s.URL = <-urlc:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%v did not start; stderr:\n%s", args, errBuf.String())
	}
	t.Cleanup(s.Stop)
	return s
}

// topo is a deployment of cell processes on loopback: a router and one
// process per cell, each with its own data directory.
type topo struct {
	t       *testing.T
	depFile string
	router  *server
	cells   map[string]*server
	dirs    map[string]string // cell or "router" -> data directory
	// dbs, for cells on PostgreSQL, is each one's connection string.
	dbs map[string]string
}

// countStored returns how many files of the data directory of d (a cell
// or "router"), and tables of its database if it has one, contain s.
func (tp *topo) countStored(d, s string) int {
	tp.t.Helper()
	n := countIn(tp.t, tp.dirs[d], s)
	if dsn, ok := tp.dbs[d]; ok {
		n += countInDB(tp.t, dsn, s)
	}
	return n
}

// startTopology writes examples/topology/local.yaml with free ports in
// place of 8700-8703 and starts its router and its three cells.
func startTopology(t *testing.T) *topo {
	t.Helper()
	return startTopologyWith(t, "")
}

// startTopologyWith is startTopology with extra appended to the
// deployment file.
func startTopologyWith(t *testing.T, extra string) *topo {
	t.Helper()
	return startTopologyEdited(t, extra, nil)
}

// startTopologyEdited is startTopologyWith with the example's text
// changed by edit, if not nil, before the ports are.
func startTopologyEdited(t *testing.T, extra string, edit func([]byte) []byte) *topo {
	t.Helper()
	return startTopologyOwn(t, extra, edit, false)
}

// startTopologyOwn is startTopologyEdited; with ownControl, each cell's
// --control directory is its own, holding only copies of the router's
// directory key and webhook secret, as a cell on another machine has.
func startTopologyOwn(t *testing.T, extra string, edit func([]byte) []byte, ownControl bool) *topo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "topology", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, extra...)
	if edit != nil {
		b = edit(b)
	}
	ports := map[string]string{}
	for _, p := range []string{"8701", "8702", "8703"} {
		ports[p] = freePort(t)
		b = bytes.ReplaceAll(b, []byte("127.0.0.1:"+p), []byte(ports[p]))
	}
	dir := t.TempDir()
	tp := &topo{t: t, depFile: filepath.Join(dir, "deployment.yaml"), cells: map[string]*server{}, dirs: map[string]string{}}
	if err := os.WriteFile(tp.depFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tp.dirs["router"] = filepath.Join(dir, "router")
	tp.router = startProcess(t, "serve", "--router", "--deployment", tp.depFile, "--data", tp.dirs["router"], "--addr", "127.0.0.1:0")
	admin, err := os.ReadFile(filepath.Join(tp.dirs["router"], "admin.token"))
	if err != nil {
		t.Fatalf("router admin token: %v", err)
	}
	tp.router.Admin = strings.TrimSpace(string(admin))
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		tp.dirs[c] = filepath.Join(dir, c)
		if ownControl {
			// As on a machine of its own: copies of the router's directory
			// key and webhook secret, and nothing else of its directory.
			own := filepath.Join(dir, c+"-control")
			for _, f := range []string{"directory.key", filepath.Join("control", "webhook.secret")} {
				b, err := os.ReadFile(filepath.Join(tp.dirs["router"], f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Dir(filepath.Join(own, f)), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(own, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			tp.dirs[c+"-control"] = own
		}
		tp.startCell(c)
	}
	return tp
}

// startCell starts (or starts again) the process of cell c, on its url.
func (tp *topo) startCell(c string) {
	tp.t.Helper()
	control := tp.dirs["router"]
	if d, ok := tp.dirs[c+"-control"]; ok {
		control = d // the cell's machine's own copy of what it needs
	}
	tp.cells[c] = startProcess(tp.t, "serve", "--cell", c, "--deployment", tp.depFile, "--data", tp.dirs[c], "--control", control)
}

// TestTopologyEndToEnd runs the README's walk-through through the router
// of three cell processes, each on its own SQLite store: register, write
// and read a record, upload and download an object, the statement,
// erasure. A CN subject's marker strings (in its id, a record id, an
// object name and a body) are found only in the CN cell's data
// directory, never in another cell's, the router's, or the router's
// output. A router made to place a CN subject in the US cell is refused
// by that cell. A cell killed mid-run is one cell down: its subjects get
// 503 with Retry-After, the others are served, and once it is back every
// write it acknowledged is there.
func TestTopologyEndToEnd(t *testing.T) { topologyEndToEnd(t, startTopology(t)) }

// topologyEndToEnd is TestTopologyEndToEnd on the started topology tp.
func topologyEndToEnd(t *testing.T, tp *topo) {
	r := tp.router
	ctx := context.Background()
	marker := fmt.Sprintf("Mk%x", time.Now().UnixNano())
	id, rid, name, body := "li.wei."+marker+"i", "r"+marker, "o"+marker+".jpg", "明天见 b"+marker

	appCN := r.client(r.token("app", "CN", ""), app, "")
	sub, err := appCN.CreateSubject(ctx, id, "CN", "")
	if err != nil || sub.Cell != "cn-gz1" {
		t.Fatalf("register the CN subject through the router: %+v, %v", sub, err)
	}
	if _, err := appCN.PutRecord(ctx, id, "message", rid, map[string]string{"from": id, "to": "zhang.san", "body": body}, ""); err != nil {
		t.Fatal(err)
	}
	got, err := appCN.GetRecord(ctx, id, "message", rid)
	if err != nil || !strings.Contains(string(got.Data), body) {
		t.Fatalf("read back through the router: %+v, %v", got, err)
	}
	photo := bytes.Repeat([]byte("photo "+marker+"\n"), 40000) // over 1 MiB: streamed both ways
	if o, err := appCN.PutObject(ctx, id, name, "image/jpeg", bytes.NewReader(photo), int64(len(photo))); err != nil || o.Size != int64(len(photo)) {
		t.Fatalf("upload through the router: %+v, %v", o, err)
	}
	resp, err := appCN.GetObject(ctx, id, name, "")
	if err != nil {
		t.Fatal(err)
	}
	down, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(down, photo) {
		t.Fatalf("download through the router: %d bytes, want the %d uploaded", len(down), len(photo))
	}
	resp, err = appCN.GetObject(ctx, id, name, "bytes=65530-65545")
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, photo[65530:65546]) {
		t.Fatalf("range through the router: %d, %d bytes", resp.StatusCode, len(part))
	}
	subject := r.client(r.token("subject", "CN", id), "", "")
	st, err := subject.Statement(ctx, id, "en")
	if err != nil || len(st.Accesses) == 0 || len(st.Holdings) == 0 {
		t.Fatalf("statement through the router: %v", err)
	}
	// Subjects of the other cells, on their own stores.
	for _, s := range []struct{ id, j, cell string }{{"anna." + marker[:4], "DE", "eu-fra1"}, {"bob." + marker[:4], "US", "us-east1"}} {
		c := r.client(r.token("app", s.j, ""), app, "")
		if got, err := c.CreateSubject(ctx, s.id, s.j, ""); err != nil || got.Cell != s.cell {
			t.Fatalf("register a %s subject: %+v, %v", s.j, got, err)
		}
		if _, err := c.PutRecord(ctx, s.id, "profile", "main", map[string]string{"name": s.id}, ""); err != nil {
			t.Fatal(err)
		}
	}

	// The CN cell's own process answers its subject; another cell's
	// process refuses it (421) and holds nothing of it.
	direct := &httpapi.Client{Client: client.Client{BaseURL: tp.cells["cn-gz1"].URL, Token: appCN.Token, Purpose: app}}
	if _, err := direct.GetSubject(ctx, id); err != nil {
		t.Fatalf("the CN cell's process: %v", err)
	}
	for _, c := range []string{"eu-fra1", "us-east1"} {
		other := &httpapi.Client{Client: client.Client{BaseURL: tp.cells[c].URL, Token: appCN.Token, Purpose: app}}
		if _, err := other.GetRecord(ctx, id, "message", rid); !isStatus(err, http.StatusMisdirectedRequest) {
			t.Errorf("%s's process reading the CN subject: %v, want 421", c, err)
		}
	}

	// Where the markers are, while the subject's data exists: the record
	// id and object name in the CN cell's storage (so the scan below can
	// see them); none of the markers anywhere else.
	if n := tp.countStored("cn-gz1", rid); n == 0 {
		t.Errorf("record id marker not found in the CN cell's data directory: the scan cannot see stored names")
	}
	if n := tp.countStored("cn-gz1", name); n == 0 {
		t.Errorf("object name marker not found in the CN cell's data directory")
	}
	tp.checkMarker(marker)

	// A router made to forward a CN subject's registration to the US
	// cell: its deployment file places CN subjects there. The US cell
	// refuses, logs it, and nothing is registered.
	rogueDep := strings.Replace(readFile(t, tp.depFile), "  CN: [cn-gz1]", "  CN: [us-east1]", 1)
	if rogueDep == readFile(t, tp.depFile) {
		t.Fatal("the example's policy line for CN changed; update the test")
	}
	rogueFile := filepath.Join(t.TempDir(), "rogue.yaml")
	if err := os.WriteFile(rogueFile, []byte(rogueDep), 0o600); err != nil {
		t.Fatal(err)
	}
	rogueDir := t.TempDir()
	rogue := startProcess(t, "serve", "--router", "--deployment", rogueFile, "--data", rogueDir, "--addr", "127.0.0.1:0")
	usLog := func() int64 { return checkpointSize(t, tp.cells["us-east1"].URL+"/log/us-east1/checkpoint") }
	before := usLog()
	viaRogue := &httpapi.Client{Client: client.Client{BaseURL: rogue.URL, Token: appCN.Token, Purpose: app}}
	_, err = viaRogue.CreateSubject(ctx, "zhang.san."+marker[:4], "CN", "")
	var pe *client.ProblemError
	if !errors.As(err, &pe) || pe.Status != http.StatusForbidden || pe.Code != "residency-forbidden" {
		t.Fatalf("CN registration forwarded to the US cell: %v, want 403 residency-forbidden from the cell", err)
	}
	if _, err := appCN.GetSubject(ctx, "zhang.san."+marker[:4]); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("the refused subject exists: %v", err)
	}
	waitFor(t, 10*time.Second, "the US cell's log to record its refusal", func() bool { return usLog() > before })
	rogue.Stop()

	// Erasure through the router; its receipt, kept by the CN cell, is
	// found through the router without saying where to look.
	rec, err := appCN.EraseSubject(ctx, id)
	if err != nil {
		t.Fatalf("erase through the router: %v", err)
	}
	if _, err := appCN.GetSubject(ctx, id); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("erased subject: %v, want 404", err)
	}
	if got, err := r.client("", "", "").Receipt(ctx, rec.ID); err != nil || got.ID != rec.ID {
		t.Fatalf("the erasure receipt through the router: %+v, %v", got, err)
	}
	if _, err := r.client("", "", "").Receipt(ctx, "rcp_"+strings.Repeat("0", 32)); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("an unknown receipt through the router: %v, want 404", err)
	}

	tp.killOneCell(ctx)

	for _, s := range tp.cells {
		s.Stop()
	}
	r.Stop()
	tp.checkMarker(marker)
	// Each cell's data directory is checked offline on its own.
	out, err := runBin(t, nil, "check", "--data", tp.dirs["cn-gz1"], "--deployment", tp.depFile, "--cell", "cn-gz1")
	if err != nil || !strings.HasPrefix(out, "cn-gz1: ok") || strings.Contains(out, "eu-fra1") {
		t.Errorf("check --cell cn-gz1: %v\n%s", err, out)
	}
	for _, out := range []string{r.stdout.String(), r.out.String(), rogue.stdout.String(), rogue.out.String()} {
		if strings.Contains(out, marker) {
			t.Errorf("the router's output names the CN subject's data:\n%s", grepLines(out, marker))
		}
	}
	if n := countIn(t, rogueDir, marker); n > 0 {
		t.Errorf("marker in the rogue router's data directory")
	}
}

// killOneCell kills the CN cell's process in the middle of a stream of
// writes to a CN and an EU subject through the router: the CN subject's
// requests get 503 with Retry-After while the EU subject's all succeed,
// the deployment-wide routes go to another cell, and once the CN cell is
// back every write it acknowledged is there.
func (tp *topo) killOneCell(ctx context.Context) {
	t, r := tp.t, tp.router
	appCN := r.client(r.token("app", "CN", ""), app, "")
	appEU := r.client(r.token("app", "DE", ""), app, "")
	admin := r.client(r.Admin, "", "")
	if _, err := appCN.CreateSubject(ctx, "wang.fang", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := appEU.CreateSubject(ctx, "klara", "DE", ""); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		acked    []string
		refused  int
		euFailed []error
		euAfter  int // EU writes made after the CN writes saw the cell down
		killed   = make(chan struct{})
		cnDone   = make(chan struct{})
	)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(cnDone)
		for i := 0; ; i++ {
			rid := "w" + strconv.Itoa(i)
			_, err := appCN.PutRecord(ctx, "wang.fang", "message", rid, map[string]string{"body": rid}, "")
			mu.Lock()
			switch {
			case err == nil:
				acked = append(acked, rid)
			case isStatus(err, http.StatusServiceUnavailable):
				refused++
			default:
				t.Errorf("CN write %s: %v, want success or 503", rid, err)
			}
			n := refused
			mu.Unlock()
			if n >= 3 {
				return
			}
			if i == 20 {
				close(killed)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; euAfter < 20; i++ {
			if _, err := appEU.PutRecord(ctx, "klara", "message", "k"+strconv.Itoa(i), map[string]string{"body": "x"}, ""); err != nil {
				mu.Lock()
				euFailed = append(euFailed, err)
				mu.Unlock()
			}
			select {
			case <-cnDone:
				euAfter++
			default:
			}
		}
	}()
	<-killed
	tp.cells["cn-gz1"].Kill()
	wg.Wait()
	if len(euFailed) > 0 {
		t.Fatalf("EU writes failed while the CN cell was down: %v", euFailed[0])
	}
	status, hdr, b := r.do("GET", "/v1/subjects/wang.fang", appCN.Token, map[string]string{"Domicile-Purpose": app}, nil)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("a down cell's subject: %d (Retry-After %q) %s, want 503 with Retry-After", status, hdr.Get("Retry-After"), b)
	}
	if p := mustProblem(t, b); !strings.Contains(p.Detail, "cn-gz1") {
		t.Errorf("503 detail %q does not name the cell", p.Detail)
	}
	if _, err := appEU.GetRecord(ctx, "klara", "message", "k0"); err != nil {
		t.Fatalf("EU subject while the CN cell is down: %v", err)
	}
	// Deployment-wide routes go to a cell that is up.
	waitFor(t, 10*time.Second, "mechanisms served by another cell", func() bool {
		_, err := admin.Mechanisms(ctx)
		return err == nil
	})
	if _, err := r.client("", "", "").Cells(ctx); err != nil {
		t.Fatalf("GET /v1/cells with a cell down: %v", err)
	}
	// A receipt no live cell has may be in the down one: 503, not 404.
	if _, err := r.client("", "", "").Receipt(ctx, "rcp_"+strings.Repeat("0", 32)); !isStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("an unknown receipt with a cell down: %v, want 503", err)
	}

	tp.startCell("cn-gz1")
	waitFor(t, 10*time.Second, "the CN cell serving again through the router", func() bool {
		_, err := appCN.GetSubject(ctx, "wang.fang")
		return err == nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 20 {
		t.Fatalf("only %d CN writes acknowledged before the kill", len(acked))
	}
	for _, rid := range acked {
		if _, err := appCN.GetRecord(ctx, "wang.fang", "message", rid); err != nil {
			t.Fatalf("acknowledged write %s lost: %v", rid, err)
		}
	}
	t.Logf("%d CN writes acknowledged before the kill, all present after restart; %d refused with 503", len(acked), refused)
}

// checkMarker fails if marker is in any file of the router's or the EU
// and US cells' data directories.
func (tp *topo) checkMarker(marker string) {
	tp.t.Helper()
	for _, d := range []string{"router", "eu-fra1", "us-east1"} {
		if n := tp.countStored(d, marker); n > 0 {
			tp.t.Errorf("the CN subject's marker is in %d file(s) or table(s) of %s's data directory or database", n, d)
		}
	}
}

// countIn returns how many files under dir contain s.
func countIn(t *testing.T, dir, s string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked (a temporary blob)
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkpointSize reads the tree size of the signed checkpoint at url.
func checkpointSize(t *testing.T, url string) int64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lines := strings.Split(string(b), "\n")
	if resp.StatusCode != http.StatusOK || len(lines) < 2 {
		t.Fatalf("checkpoint %s: %d %s", url, resp.StatusCode, b)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("checkpoint %s: %s", url, b)
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTopologyFlags: serve refuses a topology it cannot run, naming the
// flag or the deployment file's field.
func TestTopologyFlags(t *testing.T) {
	dir := t.TempDir()
	withURLs := filepath.Join("..", "..", "examples", "topology", "local.yaml")
	noURLs := filepath.Join(dir, "nourl.yaml")
	b := readFile(t, withURLs)
	var kept []string
	for _, l := range strings.Split(b, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "url:") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(noURLs, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	// A cell process refused for its TLS to the other cells makes
	// nothing under its --data (checked below).
	pki := newTestPKI(t)
	cellData := filepath.Join(dir, "cell-data")
	cellTLS := func(flags ...string) []string {
		return append([]string{"--cell", "cn-gz1", "--deployment", withURLs, "--control", dir, "--data", cellData, "--addr", "127.0.0.1:0"}, flags...)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"router and cell", []string{"--router", "--cell", "cn-gz1", "--deployment", withURLs}, "either the router or one cell"},
		{"router without a file", []string{"--router"}, "need --deployment"},
		{"router without urls", []string{"--router", "--deployment", noURLs}, "cells[0] (cn-gz1): no url"},
		{"unknown cell", []string{"--cell", "mars-1", "--deployment", withURLs, "--control", dir}, `"mars-1" is not a cell`},
		{"cell without control", []string{"--cell", "cn-gz1", "--deployment", withURLs}, "--cell needs --control"},
		{"control without cell", []string{"--control", dir}, "--control is for --cell"},
		{"cell TLS on the embedded runtime", []string{"--cell-ca", pki.caFile}, "are for --router and --cell"},
		{"client certificate without its key", []string{"--router", "--deployment", withURLs, "--cell-cert", "c.pem"}, "--cell-cert and --cell-key go together"},
		{"a cell's client key without its certificate", []string{"--cell", "cn-gz1", "--deployment", withURLs, "--control", dir, "--cell-key", pki.clientKeyFile}, "--cell-cert and --cell-key go together"},
		{"cell CA that is not PEM", []string{"--router", "--deployment", withURLs, "--data", filepath.Join(dir, "r"), "--addr", "127.0.0.1:0", "--cell-ca", withURLs}, "holds no PEM certificate"},
		{"a cell's CA file missing", cellTLS("--cell-ca", filepath.Join(dir, "absent.pem")), "--cell-ca: open"},
		{"a cell's CA that is not PEM", cellTLS("--cell-ca", withURLs), "--cell-ca: " + withURLs + " holds no PEM certificate"},
		{"a cell's client certificate missing", cellTLS("--cell-cert", filepath.Join(dir, "absent.pem"), "--cell-key", pki.clientKeyFile), "--cell-cert: open"},
		{"a cell's client key missing", cellTLS("--cell-cert", pki.clientCertFile, "--cell-key", filepath.Join(dir, "absent.key")), "--cell-key: open"},
		{"a cell's client certificate that is a key", cellTLS("--cell-cert", pki.clientKeyFile, "--cell-key", pki.clientKeyFile), "--cell-cert: " + pki.clientKeyFile + " holds no PEM certificate"},
		{"a cell's client key that is a certificate", cellTLS("--cell-cert", pki.clientCertFile, "--cell-key", pki.clientCertFile), "--cell-key: " + pki.clientCertFile + " holds no PEM private key"},
		{"a cell's client certificate with another key", cellTLS("--cell-cert", pki.clientCertFile, "--cell-key", pki.keyFile), "--cell-cert " + pki.clientCertFile + " and --cell-key " + pki.keyFile + " are not a pair"},
		{"a cell's client certificate for servers only", cellTLS("--cell-cert", pki.certFile, "--cell-key", pki.keyFile), "is not a client certificate"},
		{"the router's client certificate with another key", []string{"--router", "--deployment", withURLs, "--data", filepath.Join(dir, "r"), "--addr", "127.0.0.1:0", "--cell-cert", pki.clientCertFile, "--cell-key", pki.keyFile}, "are not a pair"},
		{"cell data with the router's", []string{"--cell", "cn-gz1", "--deployment", withURLs, "--control", dir, "--data", dir}, "same directory"},
		{"cell before its router", []string{"--cell", "cn-gz1", "--deployment", withURLs, "--control", filepath.Join(dir, "nothing"), "--data", filepath.Join(dir, "cn"), "--addr", "127.0.0.1:0"}, "start the router first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := &cmdEnv{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := Main(ctx, env, append([]string{"serve"}, tt.args...))
			if code == 0 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("serve %v = %d, stderr %q; want failure naming %q", tt.args, code, stderr.String(), tt.want)
			}
			if _, err := os.Stat(cellData); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("serve %v made its --data (%v)", tt.args, err)
			}
		})
	}
}

// TestProxyRoutes drives the router's routing rules that the walk-through
// does not: the deployment-wide routes, the refused reports, and requests
// for subjects in several cells.
func TestProxyRoutes(t *testing.T) {
	tp := startTopology(t)
	r := tp.router
	ctx := context.Background()
	appCN := r.client(r.token("app", "CN", ""), app, "")
	appUS := r.client(r.token("app", "US", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "cn.one", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := appUS.CreateSubject(ctx, "us.one", "US", ""); err != nil {
		t.Fatal(err)
	}
	admin := r.Admin
	tests := []struct {
		name, method, path, token string
		hdr                       map[string]string
		body                      string
		status                    int
		code                      string
	}{
		{"transparency from every cell", "GET", "/v1/transparency", admin, nil, "", 200, ""},
		{"transparency for an app: refused", "GET", "/v1/transparency", appCN.Token, map[string]string{"Domicile-Purpose": "service"}, "", 403, "forbidden"},
		{"a cell's part", "GET", "/v1/cells/us-east1/transparency", admin, nil, "", 200, ""},
		{"notice plan of no deployment: the router's answer", "POST", "/v1/notices/plans", admin, map[string]string{"Content-Type": "application/json"}, "{}", 400, "invalid"},
		{"unknown plan", "GET", "/v1/notices/plans/p-0000", admin, nil, "", 404, "not-found"},
		{"unknown notice's acknowledgement", "POST", "/v1/notices/n-0000/ack", appCN.Token, map[string]string{"Domicile-Purpose": app}, "", 404, "not-found"},
		{"a cell's subjects for a plan", "GET", "/v1/cells/cn-gz1/subjects", admin, nil, "", 200, ""},
		{"a cell's subjects for an app: refused", "GET", "/v1/cells/cn-gz1/subjects", appCN.Token, map[string]string{"Domicile-Purpose": app}, "", 403, "forbidden"},
		{"a cell's subjects after a malformed reference", "GET", "/v1/cells/cn-gz1/subjects?after=zz", admin, nil, "", 400, "invalid"},
		{"census from every cell", "GET", "/v1/census", admin, nil, "", 200, ""},
		{"census for an app: refused by the cells", "GET", "/v1/census", appCN.Token, map[string]string{"Domicile-Purpose": app}, "", 403, "forbidden"},
		{"open requests from every cell", "GET", "/v1/requests/open", admin, nil, "", 200, ""},
		{"a cell's census", "GET", "/v1/cells/eu-fra1/census", admin, nil, "", 200, ""},
		{"a cell's pending requests, limit too large", "GET", "/v1/cells/eu-fra1/requests/pending?limit=100000", admin, nil, "", 400, "invalid"},
		{"the console", "GET", "/console/", "", nil, "", 200, ""},
		{"unknown route", "GET", "/v2/nothing", "", nil, "", 404, "not-found"},
		{"unknown cell's log", "GET", "/log/mars-1/checkpoint", "", nil, "", 404, "not-found"},
		{"a cell's log", "GET", "/log/us-east1/checkpoint", "", nil, "", 200, ""},
		{"a cell's keys", "GET", "/v1/cells/eu-fra1/keys", admin, nil, "", 200, ""},
		{"mechanisms from any cell", "GET", "/v1/mechanisms", admin, nil, "", 200, ""},
		{"ledger from any cell", "GET", "/v1/transfers/ledger", admin, nil, "", 200, ""},
		{"tokens by the router", "POST", "/v1/tokens", admin, map[string]string{"Content-Type": "application/json"}, `{"role":"auditor","jurisdiction":"CN"}`, 201, ""},
		{"a subject token for a subject of a cell", "POST", "/v1/tokens", admin, map[string]string{"Content-Type": "application/json"}, `{"role":"subject","jurisdiction":"US","subject":"us.one"}`, 201, ""},
		{"assessment by the router", "POST", "/v1/assess", admin, map[string]string{"Content-Type": "application/json"}, `{}`, 200, ""},
		{"unknown subject: the cell's answer", "GET", "/v1/subjects/nobody", appCN.Token, map[string]string{"Domicile-Purpose": app}, "", 404, "not-found"},
		{"unknown subject for an admin: refused as by one process", "GET", "/v1/subjects/nobody", admin, nil, "", 403, "forbidden"},
		{"malformed registration: the cell's answer", "POST", "/v1/subjects", appCN.Token, map[string]string{"Domicile-Purpose": app, "Content-Type": "application/json"}, `{"id": "x", "jurisdiction": "CN", "colour": 1}`, 400, "invalid"},
		{"unknown jurisdiction: the cell's answer", "POST", "/v1/subjects", appCN.Token, map[string]string{"Domicile-Purpose": app, "Content-Type": "application/json"}, `{"id": "x", "jurisdiction": "ZZ"}`, 400, "invalid"},
		{"no token: the cell's answer", "POST", "/v1/subjects", "", map[string]string{"Content-Type": "application/json"}, `{"id": "x", "jurisdiction": "CN"}`, 401, "unauthorized"},
		{"a transfer of subjects of two cells", "POST", "/v1/transfers", appUS.Token, map[string]string{"Domicile-Purpose": app, "Content-Type": "application/json"}, `{"destination":"US","recipient":"Acme","subjects":["cn.one","us.one"],"fields":{"message":["body"]},"plain":true}`, 400, "invalid"},
		{"an authority request for subjects of two cells", "POST", "/v1/authority/requests", admin, map[string]string{"Content-Type": "application/json"}, `{"authority":"A","jurisdiction":"CN","kind":"criminal","legal_basis":"x","reference":"R-1","subjects":["cn.one","us.one"]}`, 400, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			status, _, b := r.do(tt.method, tt.path, tt.token, tt.hdr, body)
			if status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, status, b, tt.status)
			}
			if tt.code != "" {
				if p := mustProblem(t, b); p.Code != tt.code {
					t.Fatalf("%s %s: problem %+v, want code %s", tt.method, tt.path, p, tt.code)
				}
			}
		})
	}
	// A cell process asked directly for a deployment-wide report refuses
	// rather than count one cell.
	direct := tp.cells["cn-gz1"]
	if status, _, b := direct.do("GET", "/v1/transparency", admin, nil, nil); status != http.StatusMisdirectedRequest {
		t.Errorf("a cell's own transparency report: %d %s, want 421", status, b)
	}
	// GET /v1/cells: every cell with the log keys it publishes itself.
	raw, err := r.client("", "", "").Cells(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cells struct {
		Cells []struct {
			ID  string           `json:"id"`
			Log *httpapi.LogInfo `json:"log"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(raw, &cells); err != nil || len(cells.Cells) != 3 {
		t.Fatalf("GET /v1/cells: %s", raw)
	}
	for _, c := range cells.Cells {
		if c.Log == nil || !strings.HasSuffix(c.Log.Origin, "/"+c.ID) {
			t.Errorf("cell %s: log %+v", c.ID, c.Log)
		}
	}
	// The privacy page, served by the router, pins every cell's log key as
	// the cell publishes it; the link is made by the subject's cell.
	status, _, page := r.do("GET", "/privacy/", "", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /privacy/ through the router: %d %s", status, page)
	}
	for _, c := range cells.Cells {
		if c.Log != nil && !bytes.Contains(page, []byte(c.Log.VerifierKey)) {
			t.Errorf("the router's privacy page does not pin %s's log key", c.ID)
		}
	}
	status, _, b := r.do("POST", "/v1/subjects/cn.one/privacy-link", appCN.Token, map[string]string{"Domicile-Purpose": app}, nil)
	var link client.PrivacyLink
	if status/100 != 2 || json.Unmarshal(b, &link) != nil || !strings.HasPrefix(link.URL, "/privacy/") {
		t.Fatalf("privacy link through the router: %d %s", status, b)
	}
}

// TestSystemdUnits: the flags in the shipped units' ExecStart lines are
// flags of the binary (a flag error would exit 2 naming the flag). Every
// path is moved into a temporary directory, and the files the units read
// (the deployment, the witness's logs) are absent: each run fails only
// there.
func TestSystemdUnits(t *testing.T) {
	units, err := filepath.Glob(filepath.Join("..", "..", "deploy", "systemd", "*.service"))
	if err != nil || len(units) < 3 {
		t.Fatalf("deploy/systemd units: %v, %v", units, err)
	}
	for _, u := range units {
		t.Run(filepath.Base(u), func(t *testing.T) {
			var args []string
			for _, l := range strings.Split(readFile(t, u), "\n") {
				if rest, ok := strings.CutPrefix(l, "ExecStart="); ok {
					args = strings.Fields(strings.ReplaceAll(rest, "%i", "cn-gz1"))[1:]
				}
			}
			if len(args) == 0 {
				t.Fatal("no ExecStart line")
			}
			if _, ok := findCommand(args[0]); !ok {
				t.Skipf("the unit runs `domicile %s`, which this build does not have", args[0])
			}
			tmp := t.TempDir()
			for i, a := range args {
				switch {
				case i > 0 && (args[i-1] == "--deployment" || args[i-1] == "--logs"):
					args[i] = filepath.Join(tmp, "absent-"+filepath.Base(a))
				case filepath.IsAbs(a):
					args[i] = filepath.Join(tmp, strings.TrimPrefix(a, "/"))
				}
			}
			var stdout, stderr bytes.Buffer
			env := &cmdEnv{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := Main(ctx, env, args)
			if code != 1 || !strings.Contains(stderr.String(), "absent-") {
				t.Fatalf("domicile %v = %d, stderr %q; want 1 for the missing file only", args, code, stderr.String())
			}
		})
	}
}

// TestPrivacyPageThroughRouter opens a CN subject's privacy page through
// the router of cell processes: the router serves the page with the CN
// cell's log key pinned, the page's reads go to the CN cell, and every
// access it shows verifies against that cell's signed log.
func TestPrivacyPageThroughRouter(t *testing.T) {
	b := browsertest.New(t, 3*time.Minute, 1200, 900)
	tp := startTopology(t)
	r := tp.router
	ctx := context.Background()
	appCN := r.client(r.token("app", "CN", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "li", "CN", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := appCN.PutRecord(ctx, "li", "message", "m"+strconv.Itoa(i), map[string]string{"body": "明天见"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	link, err := appCN.PrivacyLink(ctx, "li", "en", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(r.URL+link.URL), chromedp.WaitReady("#events")); err != nil {
		t.Fatal(err)
	}
	rows := waitRows(t, b, 6)
	for _, row := range rows {
		if row.Proof != "verified" {
			t.Errorf("access %d through the router: %s: %s", row.Index, row.Proof, row.Text)
		}
	}
}

// TestTopologyReload: a new operator for eu-fra1, reloaded (SIGHUP) by
// the router and every cell process, is recorded once, by eu-fra1's own
// process, and the EU subject's statement shows it once; the router
// forwards to a cell's new url without a restart.
func TestTopologyReload(t *testing.T) {
	tp := startTopology(t)
	r := tp.router
	ctx := context.Background()
	appEU := r.client(r.token("app", "DE", ""), app, "")
	if _, err := appEU.CreateSubject(ctx, "klara", "DE", ""); err != nil {
		t.Fatal(err)
	}
	dep := readFile(t, tp.depFile)
	next := strings.Replace(dep, `operator: "Demo Cloud Europe GmbH"`, `operator: "Neue Betreiber GmbH"`, 1)
	if next == dep {
		t.Fatal("the example's eu-fra1 operator changed; update the test")
	}
	// The US cell moves to another port: the router follows the file.
	oldUS := tp.cells["us-east1"].URL
	tp.cells["us-east1"].Stop()
	newUS := freePort(t)
	next = strings.Replace(next, strings.TrimPrefix(oldUS, "http://"), newUS, 1)
	if err := os.WriteFile(tp.depFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	tp.startCell("us-east1")
	for _, s := range []*server{r, tp.cells["cn-gz1"], tp.cells["eu-fra1"]} {
		s.cmd.Process.Signal(syscall.SIGHUP)
	}
	for _, s := range []*server{r, tp.cells["cn-gz1"], tp.cells["eu-fra1"]} {
		waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Contains(s.out.String(), "deployment reloaded") })
	}
	st, err := r.client(r.token("subject", "DE", "klara"), "", "").Statement(ctx, "klara", "en")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range st.Changes {
		if c.Cell == "eu-fra1" && c.After == "Neue Betreiber GmbH" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the EU subject's statement shows the new operator %d times, want once: %+v", n, st.Changes)
	}
	appUS := r.client(r.token("app", "US", ""), app, "")
	if _, err := appUS.CreateSubject(ctx, "bob", "US", ""); err != nil {
		t.Fatalf("the US cell at its new url, through the reloaded router: %v", err)
	}
}

// TestSplitEmbeddedDeployment: a deployment that ran embedded splits into
// cell processes by moving directories, as doc/deploy.md says: the
// subject, its record and its trail are there through the router, and the
// cell's log continues under its key.
func TestSplitEmbeddedDeployment(t *testing.T) {
	dir := t.TempDir()
	b := readFile(t, filepath.Join("..", "..", "examples", "topology", "local.yaml"))
	for _, p := range []string{"8701", "8702", "8703"} {
		b = strings.ReplaceAll(b, "127.0.0.1:"+p, freePort(t))
	}
	depFile := filepath.Join(dir, "deployment.yaml")
	if err := os.WriteFile(depFile, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	embedded := filepath.Join(dir, "embedded")
	s := startServer(t, embedded, "--deployment", depFile)
	ctx := context.Background()
	appCN := s.client(s.token("app", "CN", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "li.wei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := appCN.PutRecord(ctx, "li.wei", "message", "m1", map[string]string{"body": "明天见"}, ""); err != nil {
		t.Fatal(err)
	}
	before := checkpointSize(t, s.URL+"/log/cn-gz1/checkpoint")
	s.Stop()

	tp := &topo{t: t, depFile: depFile, cells: map[string]*server{}, dirs: map[string]string{"router": filepath.Join(dir, "router")}}
	move := func(from, to string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"admin.token", "directory.key", "control"} {
		move(filepath.Join(embedded, f), filepath.Join(tp.dirs["router"], f))
	}
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		tp.dirs[c] = filepath.Join(dir, c)
		move(filepath.Join(embedded, c), filepath.Join(tp.dirs[c], c))
		move(filepath.Join(embedded, "custody", c), filepath.Join(tp.dirs[c], "custody", c))
	}
	tp.router = startProcess(t, "serve", "--router", "--deployment", depFile, "--data", tp.dirs["router"], "--addr", "127.0.0.1:0")
	tp.router.Admin = s.Admin
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		tp.startCell(c)
	}
	r := tp.router
	got, err := r.client(appCN.Token, app, "").GetRecord(ctx, "li.wei", "message", "m1")
	if err != nil || !strings.Contains(string(got.Data), "明天见") {
		t.Fatalf("the record after the split: %+v, %v", got, err)
	}
	waitFor(t, 10*time.Second, "the CN log to continue", func() bool {
		return checkpointSize(t, tp.cells["cn-gz1"].URL+"/log/cn-gz1/checkpoint") > before
	})
	evs := trailOf(t, r, r.token("subject", "CN", "li.wei"), "li.wei")
	if len(evs) < 3 {
		t.Fatalf("the trail after the split has %d events", len(evs))
	}
}

// TestTopologyStandaloneWitness: cell processes submit their checkpoints
// to the deployment's stand-alone witness; through the router, a CN
// subject's trail verifies under a checkpoint that witness cosigned
// (domicile verify --witnesses 1), and the router's privacy page pins the
// witness's key.
func TestTopologyStandaloneWitness(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "w.key")
	out, err := runBin(t, nil, "witness", "key", "--key", keyFile, "--name", "w.test")
	if err != nil {
		t.Fatalf("witness key: %v\n%s", err, out)
	}
	wkey := strings.TrimSpace(out)
	waddr := freePort(t)
	tp := startTopologyWith(t, fmt.Sprintf("witness_wait: 1s\nwitnesses:\n  - name: w\n    url: http://%s/\n    key: %s\n    required: true\n", waddr, wkey))
	r := tp.router
	ctx := context.Background()
	raw, err := r.client("", "", "").Cells(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cells struct {
		Cells []struct {
			ID  string           `json:"id"`
			Log *httpapi.LogInfo `json:"log"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(raw, &cells); err != nil {
		t.Fatal(err)
	}
	var logs string
	info := map[string]httpapi.LogInfo{}
	for _, c := range cells.Cells {
		if c.Log == nil {
			t.Fatalf("cell %s has no log keys through the router: %s", c.ID, raw)
		}
		info[c.ID] = *c.Log
		logs += c.Log.VerifierKey + "\n"
	}
	logsFile := filepath.Join(dir, "logs.txt")
	if err := os.WriteFile(logsFile, []byte(logs), 0o600); err != nil {
		t.Fatal(err)
	}
	startWitnessProc(t, "--key", keyFile, "--data", filepath.Join(dir, "w"), "--logs", logsFile, "--addr", waddr)

	appCN := r.client(r.token("app", "CN", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "wen", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := appCN.PutRecord(ctx, "wen", "message", "m1", map[string]string{"body": "one"}, ""); err != nil {
		t.Fatal(err)
	}
	subTok := r.token("subject", "CN", "wen")
	page, trail := events(t, r, subTok, "wen")
	var want int64
	for _, e := range page.Events {
		want = max(want, e.LeafIndex+1)
	}
	waitFor(t, 30*time.Second, "a CN checkpoint through the router, cosigned by the witness", func() bool {
		b, cp, ok := servedCheckpoint(r, "cn-gz1")
		return ok && cp.Size >= want && bytes.Contains(b, []byte("\n— w.test "))
	})
	out, err = verify(t, r, info["cn-gz1"], filepath.Join(dir, "verify.state"), "--witness-key", wkey, "--witnesses", "1", "--events", trail)
	if err != nil || !strings.Contains(out, "1 of the 1 listed witnesses cosigned; 1 required") {
		t.Fatalf("verify --witnesses 1 through the router: %v\n%s", err, out)
	}
	if st, _, b := r.do("GET", "/privacy/", "", nil, nil); st != http.StatusOK || !bytes.Contains(b, []byte(wkey)) {
		t.Errorf("the router's privacy page: %d; want the required witness's key pinned", st)
	}
}

// TestTopologyMutualTLS: the cells serve HTTPS and require a client
// certificate from the deployment's CA (serve's --tls-* flags); the router
// reaches them with its own (--cell-ca, --cell-cert, --cell-key). Through
// the router the walk-through works; a client without a certificate
// cannot reach a cell, and a router without one gets 503 for its cells.
func TestTopologyMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	b := readFile(t, filepath.Join("..", "..", "examples", "topology", "local.yaml"))
	for _, p := range []string{"8701", "8702", "8703"} {
		b = strings.ReplaceAll(b, "http://127.0.0.1:"+p, "https://"+freePort(t))
	}
	dir := t.TempDir()
	depFile := filepath.Join(dir, "deployment.yaml")
	if err := os.WriteFile(depFile, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	routerDir := filepath.Join(dir, "router")
	r := startProcess(t, "serve", "--router", "--deployment", depFile, "--data", routerDir, "--addr", "127.0.0.1:0",
		"--cell-ca", pki.caFile, "--cell-cert", pki.clientCertFile, "--cell-key", pki.clientKeyFile)
	admin, err := os.ReadFile(filepath.Join(routerDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	r.Admin = strings.TrimSpace(string(admin))
	cells := map[string]*server{}
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		cells[c] = startProcess(t, "serve", "--cell", c, "--deployment", depFile, "--data", filepath.Join(dir, c), "--control", routerDir,
			"--tls-cert", pki.certFile, "--tls-key", pki.keyFile, "--tls-client-ca", pki.caFile)
		if !strings.HasPrefix(cells[c].URL, "https://") {
			t.Fatalf("cell %s listens on %s, want https", c, cells[c].URL)
		}
	}
	ctx := context.Background()
	appCN := r.client(r.token("app", "CN", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "li.wei", "CN", ""); err != nil {
		t.Fatalf("register through the router over mutual TLS: %v", err)
	}
	if _, err := appCN.PutRecord(ctx, "li.wei", "message", "m1", map[string]string{"body": "明天见"}, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := appCN.GetRecord(ctx, "li.wei", "message", "m1"); err != nil || !strings.Contains(string(got.Data), "明天见") {
		t.Fatalf("read through the router over mutual TLS: %+v, %v", got, err)
	}
	// A client that trusts the CA but has no certificate cannot reach a
	// cell directly.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool}}}
	if resp, err := noCert.Get(cells["cn-gz1"].URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate reached the cell: %d", resp.StatusCode)
	}
	// A router without the client certificate is refused by the cells:
	// its requests are 503, its own routes still answer.
	bare := startProcess(t, "serve", "--router", "--deployment", depFile, "--data", filepath.Join(dir, "bare"), "--addr", "127.0.0.1:0",
		"--cell-ca", pki.caFile)
	status, hdr, body := bare.do("GET", "/v1/subjects/li.wei", appCN.Token, map[string]string{"Domicile-Purpose": app}, nil)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("a router without a client certificate: %d %s, want 503", status, body)
	}
	if status, _, _ := bare.do("GET", "/healthz", "", nil, nil); status != http.StatusOK {
		t.Fatalf("the bare router's own /healthz: %d", status)
	}
}

// TestCellTLSRefusal: the errors of calls over the cell transport that
// only a change of the processes' TLS cures are told apart from the
// others, each naming the flag to set: a cell requiring a client
// certificate this process does not present (or one of another CA), and
// a cell certificate this process does not trust. A cell that is down,
// or that answers, is no refusal.
func TestCellTLSRefusal(t *testing.T) {
	pki := newTestPKI(t)
	cert, err := tls.LoadX509KeyPair(pki.certFile, pki.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	down := "https://" + freePort(t)
	tests := []struct {
		name string
		top  topology
		url  string
		want string // in the refusal; "" for none
	}{
		{"no client certificate", topology{cellCA: pki.caFile}, srv.URL, "--cell-cert and --cell-key"},
		{"a client certificate of another CA", topology{cellCA: pki.caFile, cellCert: pki.strangerCertFile, cellKey: pki.strangerKeyFile}, srv.URL, "--cell-cert and --cell-key"},
		{"the cell's CA not trusted", topology{cellCert: pki.clientCertFile, cellKey: pki.clientKeyFile}, srv.URL, "--cell-ca"},
		{"the cell answers", topology{cellCA: pki.caFile, cellCert: pki.clientCertFile, cellKey: pki.clientKeyFile}, srv.URL, ""},
		{"the cell is down", topology{cellCA: pki.caFile, cellCert: pki.clientCertFile, cellKey: pki.clientKeyFile}, down, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := tt.top.cellTransport(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(tt.url + "/v1/cells")
			if err == nil {
				resp.Body.Close()
			}
			r := cellTLSRefusal(err)
			switch {
			case tt.want == "" && r != nil:
				t.Fatalf("cellTLSRefusal(%v) = %v, want none", err, r)
			case tt.want != "" && (r == nil || !strings.Contains(r.Error(), tt.want)):
				t.Fatalf("cellTLSRefusal(%v) = %v, want one naming %s", err, r, tt.want)
			case tt.name == "the cell answers" && (err != nil || resp.StatusCode != http.StatusForbidden):
				t.Fatalf("a call with the certificate: %v", err)
			case tt.name == "the cell is down" && err == nil:
				t.Fatal("a call to a closed port succeeded")
			}
		})
	}
}
