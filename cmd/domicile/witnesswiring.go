package main

import (
	"fmt"
	"net/http"
	"time"

	"domicile"
	"domicile/checkpoint"
	"domicile/httpapi"
	"domicile/tlog"
)

// cellWitnesses returns the stand-alone witnesses the deployment has cell
// submit its checkpoints to, and the keys of the required ones, whose
// cosignatures a new checkpoint waits for before the cell serves it.
func cellWitnesses(dep *domicile.Deployment, cell string, hc *http.Client) (submit []tlog.RemoteWitness, required []*checkpoint.CosignatureVerifier, err error) {
	for _, w := range dep.WitnessesOf(cell) {
		key, err := checkpoint.NewCosignatureVerifier(w.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("witness %s: key: %w", w.Name, err)
		}
		c, err := httpapi.NewWitnessClient(w.URL, hc)
		if err != nil {
			return nil, nil, fmt.Errorf("witness %s: %w", w.Name, err)
		}
		submit = append(submit, tlog.RemoteWitness{Name: w.Name, Key: key, Witness: c})
		if w.Required {
			required = append(required, key)
		}
	}
	return submit, required, nil
}

// witnessHTTPClient makes the cells' requests to stand-alone witnesses.
func witnessHTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second}
}
