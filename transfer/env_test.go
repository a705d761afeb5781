package transfer_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/kms/filekms"
	"domicile/law"
	"domicile/residency"
	"domicile/sqlite"
	"domicile/transfer"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// gateRef lets cells be built before the gateway.
type gateRef struct{ g *transfer.Gateway }

func (r *gateRef) RemoteAccess(ctx context.Context, rr cell.RemoteRead) (*cell.RemoteGrant, error) {
	return r.g.RemoteAccess(ctx, rr)
}

func (r *gateRef) Consented(ctx context.Context, ref domicile.SubjectRef, consent string) (bool, error) {
	return r.g.Consented(ctx, ref, consent)
}

// env is a real deployment (the embedded demo) on SQLite in a temporary
// directory, with the gateway wired as the cells' remote gate.
type env struct {
	t      testing.TB
	clock  *clock
	router *residency.Router
	store  *sqlite.Ledger
	g      *transfer.Gateway
	app    domicile.Actor // acting from the US
	appCN  domicile.Actor
	admin  domicile.Actor
	// dir holds the deployment's stores (the ledger under control/).
	dir string
}

var (
	engineOnce sync.Once
	engine     *law.Engine
)

func lawEngine(tb testing.TB) *law.Engine {
	engineOnce.Do(func() {
		e, err := law.New()
		if err != nil {
			panic(err)
		}
		engine = e
	})
	return engine
}

func newEnv(tb testing.TB, now time.Time) *env {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	dep := deploy.Default()
	clk := &clock{t: now}
	gr := &gateRef{}
	var cells []*cell.Cell
	for _, cc := range dep.Cells {
		st, err := sqlite.Open(ctx, filepath.Join(dir, cc.ID))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { st.Close() })
		ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody", cc.ID))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ks.Close() })
		kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", cc.ID, "kek.json"), ID: cc.ID + "/kek"})
		if err != nil {
			tb.Fatal(err)
		}
		cells = append(cells, cell.New(cell.Config{Cell: cc, Deployment: dep, Store: st, KEK: kek, KeyStore: ks, Now: clk.Now, Gate: gr, Consents: gr}))
	}
	ctl, err := sqlite.OpenControl(ctx, filepath.Join(dir, "control"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ctl.Close() })
	router := residency.New(dep, cells, ctl, bytes.Repeat([]byte{7}, 32))
	led, err := sqlite.OpenLedger(ctx, filepath.Join(dir, "control"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { led.Close() })
	g, err := transfer.New(ctx, transfer.Config{Store: led, Engine: lawEngine(tb), Router: router, Now: clk.Now})
	if err != nil {
		tb.Fatal(err)
	}
	gr.g = g
	return &env{t: tb, clock: clk, router: router, store: led, g: g, dir: dir,
		app:   domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "US", Purpose: "support", TokenID: "tok_us"},
		appCN: domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "support", TokenID: "tok_cn"},
		admin: domicile.Actor{Role: domicile.RoleAdmin, Jurisdiction: "CN", TokenID: "tok_admin"}}
}

// subject registers a CN subject with one message and one location
// record, and its cross-border consent.
func (e *env) subject(id string) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.router.Register(ctx, e.appCN, id, "CN", ""); err != nil {
		e.t.Fatal(err)
	}
	c, k, err := e.router.Locate(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, e.appCN, k, "message", "m1", []byte(`{"from":"`+id+`","to":"zhang.san","body":"明天见"}`), domicile.AnyVersion); err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, e.appCN, k, "location", "l1", []byte(`{"lat":"23.1","lon":"113.3","at":"2026-03-01"}`), domicile.AnyVersion); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.g.SetConsent(ctx, e.appCN, id, domicile.ConsentCrossBorder, "v1", true); err != nil {
		e.t.Fatal(err)
	}
}

// seed imports n CN subjects ("seed-0"...) transferred to the US on day.
func (e *env) seed(n int, day, categories string) {
	e.t.Helper()
	var b strings.Builder
	b.WriteString(transfer.ImportHeader + "\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s,seed-%d,US,%s,exempt\n", day, i, categories)
	}
	if _, err := e.g.Import(context.Background(), e.admin, "CN", strings.NewReader(b.String())); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) counts() (pi, spi int64) {
	e.t.Helper()
	v, err := e.g.Ledger(context.Background(), e.admin, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range v.Counts {
		if c.Source == "CN" && c.Dim == "" {
			if c.Class == domicile.ClassPI {
				pi = c.N
			} else {
				spi = c.N
			}
		}
	}
	return pi, spi
}

func messageRequest(ids ...string) *transfer.Request {
	return &transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: ids,
		Fields: map[string][]string{"message": {"from", "to", "body"}}, Plain: true}
}

// transferPlain carries out a request and returns the decision and the
// verified bundle's records.
func (e *env) transferPlain(req *transfer.Request) (*transfer.Decision, []transfer.BundleRecord, error) {
	var buf bytes.Buffer
	d, err := e.g.Transfer(context.Background(), e.app, req, nil, &buf)
	if err != nil {
		return d, nil, err
	}
	_, recs, _, err := transfer.VerifyBundle(&buf)
	if err != nil {
		e.t.Fatalf("bundle: %v", err)
	}
	return d, recs, nil
}

func standardContract(id, signed, filed string) transfer.Mechanism {
	m := transfer.Mechanism{ID: id, Kind: domicile.MechStandardContract, Source: "CN", Reference: "SC-" + id, Signed: signed,
		Scope: transfer.Scope{Destinations: []domicile.Jurisdiction{"US"}, Recipients: []string{"Acme Support Inc.", "remote:app"},
			Purposes: []string{"support"}, Categories: []domicile.Category{domicile.Personal, domicile.Whereabouts},
			Fields: []string{"message.from", "message.body", "location.lat", "location.lon"}}}
	if filed != "" {
		m.Filed, m.FilingReference = filed, "沪网信备-"+id
	}
	return m
}
