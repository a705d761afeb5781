package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"domicile/httpapi"
)

// TestTopologyCellsWitnessEachOther: cell processes witness each other
// over the network, as the embedded runtime's cells do in one process.
// Each cell publishes its witness key in /v1/cells; through the router, a
// CN subject's trail verifies under a checkpoint that both sibling cells
// cosigned (domicile verify --witnesses 2 with their two keys), and fails
// when one of the keys is replaced by another witness's.
func TestTopologyCellsWitnessEachOther(t *testing.T) {
	tp := startTopology(t)
	r := tp.router
	ctx := context.Background()
	appCN := r.client(r.token("app", "CN", ""), app, "")
	if _, err := appCN.CreateSubject(ctx, "mei", "CN", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := appCN.PutRecord(ctx, "mei", "message", "m1", map[string]string{"body": "one"}, ""); err != nil {
		t.Fatal(err)
	}
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
	info := map[string]httpapi.LogInfo{}
	for _, c := range cells.Cells {
		if c.Log == nil || c.Log.WitnessKey == "" {
			t.Fatalf("cell %s publishes no witness key through the router: %s", c.ID, raw)
		}
		info[c.ID] = *c.Log
	}
	subTok := r.token("subject", "CN", "mei")
	page, trail := events(t, r, subTok, "mei")
	var want int64
	for _, e := range page.Events {
		want = max(want, e.LeafIndex+1)
	}
	waitFor(t, 60*time.Second, "a CN checkpoint cosigned by both sibling cells", func() bool {
		b, cp, ok := servedCheckpoint(r, "cn-gz1")
		return ok && cp.Size >= want && bytes.Contains(b, []byte("\n— witness/eu-fra1 ")) && bytes.Contains(b, []byte("\n— witness/us-east1 "))
	})
	dir := t.TempDir()
	args := []string{"--witness-key", info["eu-fra1"].WitnessKey, "--witness-key", info["us-east1"].WitnessKey, "--witnesses", "2", "--events", trail}
	out, err := verify(t, r, info["cn-gz1"], filepath.Join(dir, "verify.state"), args...)
	if err != nil || !strings.Contains(out, "2 of the 2 listed witnesses cosigned; 2 required") {
		t.Fatalf("verify --witnesses 2 with the sibling cells through the router: %v\n%s", err, out)
	}
	// The CN cell's own witness did not cosign its own log: with its key
	// in place of a sibling's, two cosignatures cannot be found.
	args[3] = info["cn-gz1"].WitnessKey
	if out, err := verify(t, r, info["cn-gz1"], filepath.Join(dir, "verify2.state"), args...); err == nil {
		t.Fatalf("verify --witnesses 2 passed with a witness that never cosigned:\n%s", out)
	}
	// The EU cell's checkpoints carry the CN and US cells' cosignatures.
	waitFor(t, 60*time.Second, "an EU checkpoint cosigned by both sibling cells", func() bool {
		b, _, ok := servedCheckpoint(r, "eu-fra1")
		return ok && bytes.Contains(b, []byte("\n— witness/cn-gz1 ")) && bytes.Contains(b, []byte("\n— witness/us-east1 "))
	})
}
