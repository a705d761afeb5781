package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile/migrate"
)

// mtlsDeployment is a deployment of two CN cells run by two operators,
// each served at an https url; CN subjects are homed in cn-gz1 and may
// live in cn-gz2.
const mtlsDeployment = `name: mtls-migration
cells:
  - id: cn-gz1
    jurisdiction: CN
    operator: "Guangzhou Demo Cloud Data Co., Ltd."
    location: "Guangzhou, Guangdong, China"
    url: https://GZ1
  - id: cn-gz2
    jurisdiction: CN
    operator: "Shenzhen Demo Data Co., Ltd."
    location: "Shenzhen, Guangdong, China"
    url: https://GZ2
policy:
  CN: [cn-gz1, cn-gz2]
purposes:
  service: {}
kinds:
  message:
    from: personal
    to: personal
    body: personal
`

// TestMigrateTopologyMutualTLS moves CN subjects from cn-gz1 to cn-gz2,
// each cell its own process serving HTTPS that requires a client
// certificate of the deployment's CA (--tls-client-ca), behind a router
// that reaches them with its own certificate. Each process has a client
// certificate of its own (--cell-cert, --cell-key) and trusts the CA
// (--cell-ca).
//
// cn-gz1 started without --cell-cert: cn-gz2 refuses its handshake, so
// the cells do not witness each other (cn-gz1 logs why) and the run
// stops at once with the refusal as its reason, naming the flag; every
// subject is still planned and homed in cn-gz1, and cn-gz2's data
// directory holds none of their records. cn-gz1 started again with its
// certificate: the two witness each other, the same plan run again moves
// every subject, whose records and objects read back through the router
// from cn-gz2, and the report verifies against both logs read through
// the router.
func TestMigrateTopologyMutualTLS(t *testing.T) {
	ctx := context.Background()
	pki := newTestPKI(t)
	dir := t.TempDir()
	depFile := filepath.Join(dir, "deployment.yaml")
	dep := strings.NewReplacer("GZ1", freePort(t), "GZ2", freePort(t)).Replace(mtlsDeployment)
	if err := os.WriteFile(depFile, []byte(dep), 0o600); err != nil {
		t.Fatal(err)
	}
	routerDir := filepath.Join(dir, "router")
	routerCert, routerKey := pki.issueClient("router")
	r := startProcess(t, "serve", "--router", "--deployment", depFile, "--data", routerDir, "--addr", "127.0.0.1:0",
		"--cell-ca", pki.caFile, "--cell-cert", routerCert, "--cell-key", routerKey)
	admin, err := os.ReadFile(filepath.Join(routerDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	r.Admin = strings.TrimSpace(string(admin))
	serving := []string{"--tls-cert", pki.certFile, "--tls-key", pki.keyFile, "--tls-client-ca", pki.caFile}
	startCell := func(id string, flags ...string) *server {
		args := append([]string{"serve", "--cell", id, "--deployment", depFile, "--data", filepath.Join(dir, id), "--control", routerDir}, serving...)
		s := startProcess(t, append(args, flags...)...)
		if !strings.HasPrefix(s.URL, "https://") {
			t.Fatalf("cell %s listens on %s, want https", id, s.URL)
		}
		return s
	}
	gz2Cert, gz2Key := pki.issueClient("cn-gz2")
	gz2 := startCell("cn-gz2", "--cell-ca", pki.caFile, "--cell-cert", gz2Cert, "--cell-key", gz2Key)
	gz1 := startCell("cn-gz1", "--cell-ca", pki.caFile)

	f := migrationFixtureOf(t, r)
	marker := fmt.Sprintf("mk%x", time.Now().UnixNano())
	const n = 3
	for i := range n {
		id := fmt.Sprintf("user-%02d", i)
		if sub, err := f.app.CreateSubject(ctx, id, "CN", ""); err != nil || sub.Cell != "cn-gz1" {
			t.Fatalf("create %s through the router: %+v %v", id, sub, err)
		}
		f.ids = append(f.ids, id)
		for j := range 2 {
			if err := f.putRecord(ctx, id, "message", fmt.Sprintf("%s-%d", marker, j), 0); err != nil {
				t.Fatal(err)
			}
		}
		f.putObject(ctx, id, marker+".jpg", 50_000+i)
	}

	next := strings.Replace(dep, "  CN: [cn-gz1, cn-gz2]\n", "  CN: [cn-gz2, cn-gz1]\n", 1) + "notice_lead: 0s\n"
	if next == dep+"notice_lead: 0s\n" {
		t.Fatal("the deployment's policy changed; update the test")
	}
	p := f.plan(writeTemp(t, next))
	if p.Subjects != n || len(p.Moves) != 1 || p.Moves[0].From != "cn-gz1" || p.Moves[0].To != "cn-gz2" || p.Moves[0].CrossBorder {
		t.Fatalf("plan = %+v", p)
	}
	f.sendNotices(p)

	// Without its client certificate cn-gz1 cannot reach cn-gz2: not as
	// a sibling witness, and not as the move's source.
	waitFor(t, 20*time.Second, "cn-gz1 to log that cn-gz2 refuses its TLS", func() bool {
		return strings.Contains(gz1.Log(), `msg="sibling cell unreachable over TLS" cell=cn-gz2`)
	})
	if !strings.Contains(gz1.Log(), "certificate required") || !strings.Contains(gz1.Log(), "--cell-cert") {
		t.Errorf("cn-gz1's log does not say which certificate is missing:\n%s", gz1.Log())
	}
	code, out, errb := runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--wait", "--server", r.URL, "--token", r.Admin)
	if code == 0 || !strings.Contains(errb, "stopped") || !strings.Contains(errb, "certificate required") || !strings.Contains(errb, "--cell-cert") {
		t.Fatalf("a run whose source presents no client certificate: %d %s %s\ncn-gz1:\n%s", code, out, errb, gz1.Log())
	}
	lines := strings.Split(strings.TrimSpace(errb), "\n")
	t.Logf("the run without --cell-cert: %s", lines[len(lines)-1])
	st := f.status(p.ID)
	if st.State != migrate.StateStopped || st.States["planned"] != n || st.Moved != 0 || !strings.Contains(st.Options.Reason, "cell cn-gz2") {
		t.Fatalf("status after the refusal: %+v", st)
	}
	for _, id := range f.ids {
		if sub, err := f.app.GetSubject(ctx, id); err != nil || sub.Cell != "cn-gz1" {
			t.Errorf("after the refusal, %s: %+v %v, want home cn-gz1", id, sub, err)
		}
	}
	if got := countIn(t, filepath.Join(dir, "cn-gz2"), marker); got != 0 {
		t.Errorf("after the refusal, %d files of cn-gz2's data directory hold the subjects' records", got)
	}
	if got := countIn(t, filepath.Join(dir, "cn-gz1"), marker); got == 0 {
		t.Fatal("cn-gz1's data directory holds no record id of the subjects: the check above proves nothing")
	}

	// With its certificate, cn-gz1 witnesses with cn-gz2 and the plan
	// run again moves every subject.
	gz1.Stop()
	gz1Cert, gz1Key := pki.issueClient("cn-gz1")
	gz1 = startCell("cn-gz1", "--cell-ca", pki.caFile, "--cell-cert", gz1Cert, "--cell-key", gz1Key)
	for _, c := range []struct {
		s       *server
		sibling string
	}{{gz1, "cn-gz2"}, {gz2, "cn-gz1"}} {
		waitFor(t, 20*time.Second, "the cells to witness each other over mutual TLS", func() bool {
			return strings.Contains(c.s.Log(), `msg="witnessing with sibling cell" cell=`+c.sibling)
		})
	}
	code, out, errb = runCLI(t, "", "migrate", "run", p.ID, "--retention", "0s", "--wait", "--server", r.URL, "--token", r.Admin)
	if code != 0 {
		t.Fatalf("migrate run over mutual TLS: %d %s %s\ncn-gz1:\n%s\ncn-gz2:\n%s", code, out, errb, gz1.Log(), gz2.Log())
	}
	for _, id := range f.ids {
		if sub, err := f.app.GetSubject(ctx, id); err != nil || sub.Cell != "cn-gz2" {
			t.Errorf("after the move, %s: %+v %v, want home cn-gz2", id, sub, err)
		}
	}
	f.check(ctx)
	if st := f.status(p.ID); st.State != migrate.StateDone || st.Moved != n {
		t.Errorf("status after the move: %+v", st)
	}
	code, rep, errb := runCLI(t, "", "migrate", "report", p.ID, "--server", r.URL, "--token", r.Admin)
	if code != 0 {
		t.Fatalf("migrate report: %d %s", code, errb)
	}
	code, out, errb = runCLI(t, "", "migrate", "verify", writeTemp(t, rep), "--server", r.URL)
	if code != 0 || !strings.Contains(out, "OK: the report matches") {
		t.Fatalf("migrate verify: %d\n%s\n%s", code, out, errb)
	}
}
