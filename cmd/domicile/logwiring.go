package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"domicile"
	"domicile/checkpoint"
	"domicile/tlog"
	"domicile/witness"
)

// logOrigin is the origin line of a cell's log: a schema-less name that is
// unique per deployment and cell.
func logOrigin(dep *domicile.Deployment, cell string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, strings.ToLower(dep.Name))
	if name == "" {
		name = "deployment"
	}
	return "domicile/" + name + "/" + cell
}

// keyFile returns the signer and verifier keys stored at path (two
// lines), generating and storing a pair (mode 0600) with gen if absent.
func keyFile(path string, gen func() (signer, verifier string, err error)) (string, string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		skey, vkey, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if !ok {
			return "", "", fmt.Errorf("%s: want a signer key line and a verifier key line", path)
		}
		return skey, vkey, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	skey, vkey, err := gen()
	if err != nil {
		return "", "", err
	}
	if err := writeFileSync(path, []byte(skey+"\n"+vkey+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return skey, vkey, nil
}

// logs are the running logs of a runtime and their witnesses.
type logs struct {
	byCell map[string]*tlog.Log
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startLogs starts each cell's log (signing key kept with the cell's other
// keys, in its custody directory), has every cell witness the others, and
// has each cell submit its checkpoints to the deployment's stand-alone
// witnesses.
func startLogs(ctx context.Context, rt *runtime, log *slog.Logger) (*logs, error) {
	ls := &logs{byCell: map[string]*tlog.Log{}}
	var all []*tlog.Log
	var verifiers []string
	var submitting []*tlog.Witnessing
	hc := witnessHTTPClient()
	for _, c := range rt.cells {
		origin := logOrigin(rt.dep, c.ID())
		custody := filepath.Join(rt.dir, "custody", c.ID())
		skey, vkey, err := keyFile(filepath.Join(custody, "log.key"), func() (string, string, error) { return checkpoint.GenerateKey(rand.Reader, origin) })
		if err != nil {
			return nil, fmt.Errorf("cell %s log key: %w", c.ID(), err)
		}
		signer, err := checkpoint.NewSigner(skey)
		if err != nil {
			return nil, fmt.Errorf("cell %s log key: %w", c.ID(), err)
		}
		remote, required, err := cellWitnesses(rt.dep, c.ID(), hc)
		if err != nil {
			return nil, fmt.Errorf("cell %s: %w", c.ID(), err)
		}
		l := tlog.New(tlog.Config{Store: c.PublicLog(), Origin: signer.Name(), Signer: signer, Verifier: vkey,
			Required: required, WitnessWait: rt.dep.WitnessWait})
		if err := l.Start(ctx); err != nil {
			return nil, fmt.Errorf("cell %s log: %w", c.ID(), err)
		}
		ls.byCell[c.ID()] = l
		if len(remote) > 0 {
			submitting = append(submitting, &tlog.Witnessing{Log: l, Witnesses: remote, Logger: log})
		}
		all = append(all, l)
		verifiers = append(verifiers, vkey)
	}
	wctx, cancel := context.WithCancel(context.Background())
	ls.cancel = cancel
	for _, sub := range submitting {
		ls.wg.Add(1)
		go func() { defer ls.wg.Done(); sub.Run(wctx) }()
	}
	for i, c := range rt.cells {
		name := "witness/" + c.ID()
		skey, _, err := keyFile(filepath.Join(rt.dir, "custody", c.ID(), "witness.key"), func() (string, string, error) { return checkpoint.GenerateCosignerKey(rand.Reader, name) })
		if err != nil {
			ls.Close()
			return nil, err
		}
		cos, err := checkpoint.NewCosigner(skey, rt.now)
		if err != nil {
			ls.Close()
			return nil, err
		}
		var others []*tlog.Log
		var otherKeys []string
		for j, l := range all {
			if j != i {
				others = append(others, l)
				otherKeys = append(otherKeys, verifiers[j])
			}
		}
		if len(others) == 0 {
			continue
		}
		w, err := witness.New(witness.Config{Cosigner: cos, Logs: otherKeys, State: witness.NewFileState(filepath.Join(rt.dir, c.ID(), "witness.state"))})
		if err != nil {
			ls.Close()
			return nil, err
		}
		co := &tlog.Cosigning{Name: name, Witness: w, Logs: others, Logger: log}
		ls.wg.Add(1)
		go func() { defer ls.wg.Done(); co.Run(wctx) }()
		rt.witnesses[c.ID()] = w
	}
	if rt.shared && len(rt.cells) == 1 {
		// A cell process: its siblings are other processes (siblings.go).
		if err := ls.witnessSiblings(wctx, rt, log); err != nil {
			ls.Close()
			return nil, err
		}
	}
	return ls, nil
}

// Close stops the witnesses and the logs.
func (ls *logs) Close() {
	if ls.cancel != nil {
		ls.cancel()
	}
	ls.wg.Wait()
	for _, l := range ls.byCell {
		l.Close(context.Background())
	}
}
