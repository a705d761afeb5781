package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"domicile/client"
	"domicile/notice"
)

// pgTestDSN returns the test server's connection string, or skips.
func pgTestDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("DOMICILE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("set DOMICILE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable to run the PostgreSQL topology test (bash .ci/run does)")
	}
	return dsn
}

// newTestDatabase creates a database of its own on the server at admin,
// dropped when the test ends, and returns its connection string.
func newTestDatabase(t *testing.T, admin, name string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	db := fmt.Sprintf("domicile_t%d_%s", time.Now().UnixNano()%1e9, strings.ReplaceAll(name, "-", "_"))
	if _, err := c.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", db, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

// countInDB returns how many tables of the database at dsn (every
// schema but the server's own) hold a row whose text contains s, as
// text or as the hex of a BYTEA.
func countInDB(t *testing.T, dsn, s string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []pgx.Identifier
	for rows.Next() {
		var schema, table string
		if err := rows.Scan(&schema, &table); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, pgx.Identifier{schema, table})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatalf("no tables in %s: the scan sees nothing", dsn)
	}
	n := 0
	for _, tb := range tables {
		var found bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+tb.Sanitize()+` t WHERE strpos(t::text, $1) > 0 OR strpos(t::text, $2) > 0)`,
			s, hex.EncodeToString([]byte(s))).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found {
			n++
		}
	}
	return n
}

// cellDSNEnv is the environment variable that the PostgreSQL topology's
// deployment file names for cell c's connection string.
func cellDSNEnv(c string) string {
	return "DOMICILE_" + strings.ToUpper(strings.ReplaceAll(c, "-", "_")) + "_DSN"
}

// onPostgres returns an edit of the example topology that puts each of
// cells on PostgreSQL, its connection string in cellDSNEnv(cell).
func onPostgres(cells ...string) func([]byte) []byte {
	return func(b []byte) []byte {
		for _, c := range cells {
			port := map[string]string{"cn-gz1": "8701", "eu-fra1": "8702", "us-east1": "8703"}[c]
			line := "    url: http://127.0.0.1:" + port + "\n"
			if !bytes.Contains(b, []byte(line)) {
				panic("examples/topology/local.yaml: no line " + line)
			}
			b = bytes.Replace(b, []byte(line), []byte(line+"    store: {kind: postgres, dsn_env: "+cellDSNEnv(c)+", max_conns: 4}\n"), 1)
		}
		return b
	}
}

// TestTopologyEndToEndPostgres is TestTopologyEndToEnd with each cell on
// its own PostgreSQL database: the walk-through through the router, the
// CN subject's markers only in the CN cell's data directory and
// database, the refusal of a rogue router's placement, and a cell killed
// mid-run losing no acknowledged write.
func TestTopologyEndToEndPostgres(t *testing.T) {
	admin := pgTestDSN(t)
	cells := []string{"cn-gz1", "eu-fra1", "us-east1"}
	dbs := map[string]string{}
	for _, c := range cells {
		dbs[c] = newTestDatabase(t, admin, c)
		t.Setenv(cellDSNEnv(c), dbs[c]) // the cell processes inherit it
	}
	tp := startTopologyEdited(t, "", onPostgres(cells...))
	tp.dbs = dbs
	if !strings.Contains(readFile(t, tp.depFile), "kind: postgres") {
		t.Fatal("the deployment file does not put the cells on PostgreSQL")
	}
	topologyEndToEnd(t, tp)
	// Each cell's store is in its own database, with its tables.
	for _, c := range cells {
		if n := countInDB(t, dbs[c], c); n == 0 {
			t.Errorf("cell %s's database holds nothing that names it (its checkpoints): is the cell on PostgreSQL?", c)
		}
	}
}

// privatePostgres is a PostgreSQL server of the test's own, in a
// temporary directory, which the test can kill and start again.
type privatePostgres struct {
	t     *testing.T
	bin   string // directory of initdb, pg_ctl and postgres
	data  string
	port  string
	owner *syscall.Credential // nil: the test's own user
	DSN   string
}

// startPrivatePostgres runs initdb into a temporary directory and starts
// the server on a free loopback port. It skips the test when initdb is
// not installed. Run as root, the server runs as the "postgres" user
// (PostgreSQL refuses root).
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		t.Skip("initdb is not on PATH: install PostgreSQL's server binaries (Debian: postgresql, with its bin directory on PATH) to run the PostgreSQL fault test")
	}
	if p, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = p
	}
	pg := &privatePostgres{t: t, bin: filepath.Dir(initdb)}
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root, and there is no \"postgres\" user to run a private PostgreSQL server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.owner = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The server's user must reach its directory.
		for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	pg.data = filepath.Join(dir, "pgdata")
	if err := os.Mkdir(pg.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if pg.owner != nil {
		if err := os.Chown(pg.data, int(pg.owner.Uid), int(pg.owner.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := pg.run("initdb", "-D", pg.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, pg.port, _ = net.SplitHostPort(freePort(t))
	pg.DSN = "postgres://postgres@127.0.0.1:" + pg.port + "/postgres?sslmode=disable"
	pg.Start()
	t.Cleanup(func() {
		pg.run("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "stop")
	})
	return pg
}

// run runs one of the server's programs as the server's user.
func (pg *privatePostgres) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(pg.bin, prog), args...)
	cmd.Dir = pg.data
	if pg.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.owner}
	}
	return cmd.CombinedOutput()
}

// Start starts the server and waits until it accepts connections. After
// a kill, the old server's sessions may hold its shared memory for a
// moment: it tries again for up to 30 seconds.
func (pg *privatePostgres) Start() {
	pg.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := pg.run("pg_ctl", "-D", pg.data, "-l", filepath.Join(pg.data, "server.log"), "-w", "-t", "30",
			"-o", "-p "+pg.port+" -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=on -c synchronous_commit=on", "start")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(pg.data, "server.log"))
			pg.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Kill sends SIGKILL to the server's postmaster, as a crash of the
// machine's database would, and waits until the port refuses.
func (pg *privatePostgres) Kill() {
	pg.t.Helper()
	b, err := os.ReadFile(filepath.Join(pg.data, "postmaster.pid"))
	if err != nil {
		pg.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		pg.t.Fatalf("postmaster.pid: %q", b)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		pg.t.Fatal(err)
	}
	waitFor(pg.t, 30*time.Second, "the killed server's port to refuse connections", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+pg.port, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// faultObject is the content of the CN subject's object number i: big
// enough to take several writes of its blob.
func faultObject(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("object %d of the fault test\n", i)), 4000)
}

// TestPostgresCellFault runs the CN cell on a private PostgreSQL server
// behind the router, with the EU cell on SQLite, and kills the server
// (SIGKILL to the postmaster) during a stream of record and object
// writes to a CN and an EU subject through the router. While it is down
// the CN cell answers 503 with Retry-After, through the router, and the
// EU cell serves every request. Once the server is started again the CN
// cell serves again by itself (its process is not restarted): every
// write it acknowledged is there, and every write it refused either is
// absent or is there whole.
func TestPostgresCellFault(t *testing.T) {
	pg := startPrivatePostgres(t)
	t.Setenv(cellDSNEnv("cn-gz1"), pg.DSN)
	tp := startTopologyEdited(t, "", onPostgres("cn-gz1"))
	r := tp.router
	ctx := context.Background()
	appCN := r.client(r.token("app", "CN", ""), app, "")
	appEU := r.client(r.token("app", "DE", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "wang.fang", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := appEU.CreateSubject(ctx, "klara", "DE", ""); err != nil {
		t.Fatal(err)
	}

	type write struct {
		rid    string // a record, or
		object int    // an object's number when rid is ""
	}
	var (
		mu       sync.Mutex
		acked    []write
		refused  []write // answered 503: absent, or there whole
		euFailed []error
		euWrites int
		phase    = "up" // up, down, restarted
		stop     = make(chan struct{})
		killNow  = make(chan struct{})
	)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			w := write{rid: "w" + strconv.Itoa(i)}
			var err error
			if i%4 == 3 {
				w = write{object: i}
				body := faultObject(i)
				_, err = appCN.PutObject(ctx, "wang.fang", "o"+strconv.Itoa(i), "text/plain", bytes.NewReader(body), int64(len(body)))
			} else {
				_, err = appCN.PutRecord(ctx, "wang.fang", "message", w.rid, map[string]string{"body": w.rid}, "")
			}
			mu.Lock()
			switch {
			case err == nil:
				acked = append(acked, w)
			case isStatus(err, http.StatusServiceUnavailable):
				refused = append(refused, w)
			default:
				t.Errorf("CN write %+v (server %s): %v, want success or 503", w, phase, err)
			}
			n, up := len(acked), phase == "up"
			mu.Unlock()
			if n == 20 && up {
				close(killNow)
			}
			if !up {
				time.Sleep(20 * time.Millisecond) // keep the stream going without spinning on 503s
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := appEU.PutRecord(ctx, "klara", "message", "k"+strconv.Itoa(i), map[string]string{"body": "x"}, "")
			mu.Lock()
			euWrites++
			if err != nil {
				euFailed = append(euFailed, fmt.Errorf("EU write k%d (server %s): %w", i, phase, err))
			}
			mu.Unlock()
		}
	}()
	select {
	case <-killNow:
	case <-time.After(2 * time.Minute):
		t.Fatal("20 CN writes were not acknowledged in 2 minutes")
	}
	mu.Lock()
	phase = "down"
	mu.Unlock()
	pg.Kill()
	waitFor(t, 30*time.Second, "CN writes refused while the server is down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(refused) >= 5
	})
	// Through the router, a read of the CN subject: 503 with
	// Retry-After, from the cell, which is up.
	status, hdr, b := r.do("GET", "/v1/subjects/wang.fang/records/message/w0", appCN.Token, map[string]string{"Domicile-Purpose": app}, nil)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("a CN read with the CN database down: %d (Retry-After %q) %s, want 503 with Retry-After", status, hdr.Get("Retry-After"), b)
	}
	// The cell's own answer, asked directly: its process is up, its
	// store is not.
	cn := &server{t: t, URL: tp.cells["cn-gz1"].URL}
	status, hdr, b = cn.do("GET", "/v1/subjects/wang.fang/records/message/w0", appCN.Token, map[string]string{"Domicile-Purpose": app}, nil)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || mustProblem(t, b).Code != "unavailable" {
		t.Fatalf("the CN cell's process with its database down: %d (Retry-After %q) %s, want 503 unavailable with Retry-After", status, hdr.Get("Retry-After"), b)
	}
	if _, err := appEU.GetRecord(ctx, "klara", "message", "k0"); err != nil {
		t.Fatalf("an EU read with the CN database down: %v", err)
	}
	mu.Lock()
	euBefore := euWrites
	mu.Unlock()
	waitFor(t, 30*time.Second, "EU writes while the CN database is down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return euWrites >= euBefore+20
	})

	pg.Start()
	mu.Lock()
	phase = "restarted"
	ackedAt := len(acked)
	mu.Unlock()
	waitFor(t, 60*time.Second, "CN writes acknowledged again after the server restarted, without restarting the cell", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= ackedAt+10
	})
	close(stop)
	wg.Wait()
	if len(euFailed) > 0 {
		t.Fatalf("%d of %d EU writes failed while the CN database was down or restarting; first: %v", len(euFailed), euWrites, euFailed[0])
	}

	check := func(w write, mustExist bool) {
		t.Helper()
		if w.rid != "" {
			got, err := appCN.GetRecord(ctx, "wang.fang", "message", w.rid)
			switch {
			case err == nil && !strings.Contains(string(got.Data), `"`+w.rid+`"`):
				t.Errorf("record %s: %s, want its body", w.rid, got.Data)
			case err != nil && (mustExist || !isStatus(err, http.StatusNotFound)):
				t.Errorf("record %s (acknowledged: %v): %v", w.rid, mustExist, err)
			}
			return
		}
		name := "o" + strconv.Itoa(w.object)
		resp, err := appCN.GetObject(ctx, "wang.fang", name, "")
		if err != nil {
			if mustExist || !isStatus(err, http.StatusNotFound) {
				t.Errorf("object %s (acknowledged: %v): %v", name, mustExist, err)
			}
			return
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, faultObject(w.object)) {
			t.Errorf("object %s: %d bytes (%v), want the %d written whole", name, len(got), err, len(faultObject(w.object)))
		}
	}
	for _, w := range acked {
		check(w, true)
	}
	for _, w := range refused {
		check(w, false)
	}
	// The cell's log is whole: a new event gets a checkpoint that is
	// consistent with the store, which `domicile check` verifies offline
	// once the cell is stopped.
	tp.cells["cn-gz1"].Stop()
	out, err := runBin(t, nil, "check", "--data", tp.dirs["cn-gz1"], "--deployment", tp.depFile, "--cell", "cn-gz1")
	if err != nil || !strings.HasPrefix(out, "cn-gz1: ok") {
		t.Errorf("check --cell cn-gz1 after the fault: %v\n%s", err, out)
	}
	t.Logf("CN: %d writes acknowledged and found whole, %d refused with 503 and found absent or whole; EU: %d writes, none failed",
		len(acked), len(refused), euWrites)
}

// TestServePostgresEmbedded serves every cell in one process (serve
// without --cell), each cell in its own schema of one PostgreSQL
// database and the control store (tokens, the directory) in another:
// a subject registered and written is read back after a restart, and
// the tokens are in the control schema, not in the data directory.
func TestServePostgresEmbedded(t *testing.T) {
	admin := pgTestDSN(t)
	dsn := newTestDatabase(t, admin, "embedded")
	for _, c := range []string{"cn-gz1", "eu-fra1", "us-east1"} {
		t.Setenv(cellDSNEnv(c), dsn)
	}
	t.Setenv("DOMICILE_CONTROL_DSN", dsn)
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "topology", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b = onPostgres("cn-gz1", "eu-fra1", "us-east1")(b)
	b = append(b, "control: {kind: postgres, dsn_env: DOMICILE_CONTROL_DSN, max_conns: 4}\n"...)
	depFile := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(depFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	s := startServer(t, data, "--deployment", depFile)
	ctx := context.Background()
	appCN := s.client(s.token("app", "CN", ""), app, "")
	if sub, err := appCN.CreateSubject(ctx, "li.wei", "CN", ""); err != nil || sub.Cell != "cn-gz1" {
		t.Fatalf("register: %+v, %v", sub, err)
	}
	if _, err := appCN.PutRecord(ctx, "li.wei", "message", "m1", map[string]string{"body": "你好"}, ""); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s = startServer(t, data, "--deployment", depFile)
	appCN.BaseURL = s.URL
	if got, err := appCN.GetRecord(ctx, "li.wei", "message", "m1"); err != nil || !strings.Contains(string(got.Data), "你好") {
		t.Fatalf("read back after a restart: %+v, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(data, "control", "control.db")); err == nil {
		t.Error("a SQLite control store was made in the data directory; the deployment names a PostgreSQL one")
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var tokens, homes int
	if err := c.QueryRow(ctx, `SELECT (SELECT count(*) FROM domicile_control.tokens), (SELECT count(*) FROM domicile_control.directory)`).Scan(&tokens, &homes); err != nil {
		t.Fatal(err)
	}
	if tokens < 2 || homes != 1 {
		t.Errorf("control schema: %d tokens and %d directory entries, want the admin and app tokens and one entry", tokens, homes)
	}
	for _, schema := range []string{"cell_cn_gz1", "cell_cn_gz1_keys", "cell_eu_fra1", "cell_us_east1", "domicile_control"} {
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.schema_migrations`).Scan(&n); err != nil || n == 0 {
			t.Errorf("%s.schema_migrations: %d rows, %v", schema, n, err)
		}
	}
}

// TestServePostgresWithoutDSN: a cell or control store on PostgreSQL
// whose dsn_env variable is empty is refused at start, naming the
// variable and the field.
func TestServePostgresWithoutDSN(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "topology", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, doc, want string }{
		{"cell", string(onPostgres("cn-gz1")(b)), cellDSNEnv("cn-gz1") + " (dsn_env) is empty"},
		{"control", string(b) + "control: {kind: postgres, dsn_env: DOMICILE_TEST_UNSET_CONTROL_DSN}\n", "DOMICILE_TEST_UNSET_CONTROL_DSN (dsn_env) is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(cellDSNEnv("cn-gz1"), "")
			dep := filepath.Join(t.TempDir(), "deployment.yaml")
			if err := os.WriteFile(dep, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			env := &cmdEnv{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := Main(ctx, env, []string{"serve", "--deployment", dep, "--data", t.TempDir(), "--addr", "127.0.0.1:0"})
			if code == 0 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("serve = %d, stderr %q; want failure naming %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// controlDSNEnv is the environment variable that the PostgreSQL
// topology's deployment file names for the control store's connection
// string.
const controlDSNEnv = "DOMICILE_CONTROL_DSN"

// TestTopologySharedStoresPostgres: cells on PostgreSQL, and the control
// store with the deployment-wide stores (transfer ledger, notices,
// authority requests) in PostgreSQL too, each cell process with a
// --control directory of its own holding only copies of the router's
// directory key and webhook secret, as cells on other machines have.
// Random activity through the router (exports through the transfer gate,
// imports, consents, authority requests) lands in the one ledger and
// register: the router's ledger and transparency report count what the
// cells did. A change plan's notices are delivered by the cells, signed
// with the deployment's secret. No process keeps any of these stores in
// a SQLite file.
func TestTopologySharedStoresPostgres(t *testing.T) {
	admin := pgTestDSN(t)
	cells := []string{"cn-gz1", "eu-fra1", "us-east1"}
	for _, c := range cells {
		t.Setenv(cellDSNEnv(c), newTestDatabase(t, admin, c))
	}
	ctlDB := newTestDatabase(t, admin, "control")
	t.Setenv(controlDSNEnv, ctlDB)
	control := "control: {kind: postgres, dsn_env: " + controlDSNEnv + ", max_conns: 4}\n"
	tp := startTopologyOwn(t, control, onPostgres(cells...), true)
	r := tp.router
	ctx := context.Background()

	w := newFigureWorldAt(t, 5, r.URL, r.Admin, time.Now).run(80)
	if w.ops["export"] == 0 || w.ops["authority request"] == 0 || w.ops["import"] == 0 {
		t.Fatalf("activity through the router %v: want exports, imports and authority requests", w.ops)
	}
	ac := r.client(r.Admin, "", "")
	led, err := ac.Ledger(ctx, 0)
	if err != nil {
		t.Fatalf("the ledger through the router: %v", err)
	}
	var total int64
	for _, c := range led.Counts {
		if c.Dim == "" {
			total += c.N
		}
	}
	if total == 0 {
		t.Errorf("the router's ledger counts nobody after %d exports and %d imports by the cells: %+v", w.ops["export"], w.ops["import"], led.Counts)
	}
	tr, err := ac.Transparency(ctx, client.DocOptions{Format: "json", From: time.Now().UTC().AddDate(0, 0, -1).Format(time.RFC3339), To: time.Now().UTC().Add(time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatalf("the transparency report through the router: %v", err)
	}
	for k, n := range w.requests {
		if tr.AuthorityTotals[k] != n {
			t.Errorf("transparency report: %d authority requests %s, the cells recorded %d", tr.AuthorityTotals[k], k, n)
		}
	}
	if tr.Ledger == nil {
		t.Error("the transparency report has no ledger figures")
	}

	// A change plan; its notices are delivered by the cells of their
	// subjects, signed with the secret each cell's machine was given.
	next := strings.Replace(readFile(t, tp.depFile), oldOperator, newOperator, 1)
	p, err := ac.MakePlan(ctx, "next.yaml", []byte(next))
	if err != nil || len(p.Notices) == 0 {
		t.Fatalf("a change plan through the router: %v (%d notices)", err, len(p.Notices))
	}
	rc := &receiver{t: t, got: map[string]notice.Payload{}, secret: func() []byte {
		b, _ := os.ReadFile(filepath.Join(tp.dirs["router"], "control", "webhook.secret"))
		return bytes.TrimSpace(b)
	}}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	if err := ac.SendPlan(ctx, p.ID, hook.URL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every notice delivered", func() bool {
		pv, err := ac.Plan(ctx, p.ID)
		if err != nil || len(pv.States) == 0 {
			return false
		}
		for _, st := range pv.States {
			if st.Delivered == nil {
				return false
			}
		}
		return true
	})
	rc.mu.Lock()
	if rc.bad != 0 || len(rc.got) != len(p.Notices) {
		t.Errorf("webhook: %d bad signatures, %d notices delivered; want none bad and %d", rc.bad, len(rc.got), len(p.Notices))
	}
	rc.mu.Unlock()

	// None of the shared stores is a file of any process.
	for name, d := range tp.dirs {
		filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && slices.Contains([]string{"transfers.db", "notices.db", "authority.db", "control.db", "transfers.lock"}, e.Name()) {
				t.Errorf("%s's directory holds %s: a shared store in a file", name, path)
			}
			return nil
		})
	}
	for _, c := range cells {
		ents, err := os.ReadDir(tp.dirs[c+"-control"])
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if want := []string{"control", "directory.key"}; !slices.Equal(names, want) {
			t.Errorf("cell %s's control directory holds %v, want only %v", c, names, want)
		}
	}
}
