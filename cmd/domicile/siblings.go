package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"domicile/checkpoint"
	"domicile/httpapi"
	"domicile/tlog"
	"domicile/witness"
)

// siblingProbe is how often a cell process asks the sibling cells it has
// not reached yet for their keys.
const siblingProbe = 2 * time.Second

// witnessSiblings makes the cells of a deployment of cell processes
// witness each other over the network, as the cells of the embedded
// runtime do in one process. This process's cell runs a witness (its
// witness.key, served at /witness/<cell>/add-checkpoint and published in
// /v1/cells), and a loop asks each sibling cell, at its url, for its log
// key and its witness key (GET /v1/cells): from the first answer on, the
// witness cosigns that sibling's checkpoints (the key is then pinned for
// the process's life), and this cell submits its own checkpoints to the
// sibling's witness (C2SP tlog-witness add-checkpoint), attaching the
// cosignatures to the checkpoints it serves. `domicile verify
// --witness-key K ... --witnesses N` then counts the sibling cells among
// the witnesses. A sibling that is down is asked again every
// siblingProbe; one that refuses this process's TLS is named in the log
// once, with the flag to set, and asked again too. Both calls go over
// the process's cell transport (runtime's cellTransport: --cell-ca,
// --cell-cert, --cell-key), as a migration's do.
func (ls *logs) witnessSiblings(ctx context.Context, rt *runtime, log *slog.Logger) error {
	hc := &http.Client{Transport: rt.cellTransport, Timeout: siblingTimeout}
	c := rt.cells[0]
	name := "witness/" + c.ID()
	skey, _, err := keyFile(filepath.Join(rt.dir, "custody", c.ID(), "witness.key"), func() (string, string, error) { return checkpoint.GenerateCosignerKey(rand.Reader, name) })
	if err != nil {
		return err
	}
	cos, err := checkpoint.NewCosigner(skey, rt.now)
	if err != nil {
		return err
	}
	w, err := witness.New(witness.Config{Cosigner: cos, State: witness.NewFileState(filepath.Join(rt.dir, c.ID(), "witness.state"))})
	if err != nil {
		return err
	}
	rt.witnesses[c.ID()] = w
	pending := map[string]string{} // sibling -> url
	for _, cc := range rt.dep.Cells {
		if cc.ID != c.ID() && cc.URL != "" {
			pending[cc.ID] = strings.TrimSuffix(cc.URL, "/")
		}
	}
	own := ls.byCell[c.ID()]
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		t := time.NewTicker(siblingProbe)
		defer t.Stop()
		refused := map[string]bool{} // siblings whose TLS refusal is logged
		for len(pending) > 0 {
			for id, base := range pending {
				info, err := siblingLog(ctx, hc, base, id)
				if r := cellTLSRefusal(err); r != nil && !refused[id] {
					refused[id] = true
					log.Error("sibling cell unreachable over TLS", slog.String("cell", id), slog.Any("err", r))
				}
				if info == nil || info.WitnessKey == "" {
					continue
				}
				if err := w.AddLog(info.VerifierKey); err != nil {
					log.Error("sibling cell's log key refused", slog.String("cell", id), slog.Any("err", err))
					delete(pending, id)
					continue
				}
				key, err := checkpoint.NewCosignatureVerifier(info.WitnessKey)
				if err == nil {
					var wc *httpapi.WitnessClient
					if wc, err = httpapi.NewWitnessClient(base+"/witness/"+id, hc); err == nil {
						sub := &tlog.Witnessing{Log: own, Witnesses: []tlog.RemoteWitness{{Name: "witness/" + id, Key: key, Witness: wc}}, Logger: log}
						ls.wg.Add(1)
						go func() { defer ls.wg.Done(); sub.Run(ctx) }()
					}
				}
				if err != nil {
					log.Error("sibling cell's witness refused", slog.String("cell", id), slog.Any("err", err))
				} else {
					log.Info("witnessing with sibling cell", slog.String("cell", id))
				}
				delete(pending, id)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// maxSiblingList bounds a sibling's answer to GET /v1/cells.
const maxSiblingList = 1 << 20

// siblingTimeout bounds each request to a sibling cell's process.
const siblingTimeout = 10 * time.Second

// siblingLog asks the cell process at base for its log keys: nil if it
// lists none (yet), with the error of the request if it failed.
func siblingLog(ctx context.Context, hc *http.Client, base, id string) (*httpapi.LogInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/cells", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list struct {
		Cells []struct {
			ID  string           `json:"id"`
			Log *httpapi.LogInfo `json:"log"`
		} `json:"cells"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, maxSiblingList)).Decode(&list) != nil {
		return nil, nil
	}
	for _, c := range list.Cells {
		if c.ID == id && c.Log != nil {
			return c.Log, nil
		}
	}
	return nil, nil
}
