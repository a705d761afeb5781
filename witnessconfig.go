package domicile

import "slices"

// WitnessConfig is a stand-alone witness the deployment's cells submit
// their log checkpoints to (the deployment file's `witnesses:` section):
// a C2SP tlog-witness run by a third party, such as `domicile witness
// serve`.
type WitnessConfig struct {
	// Name identifies the witness in the server's logs.
	Name string
	// URL is the witness's submission prefix: checkpoints go to
	// URL + "/add-checkpoint".
	URL string
	// Key is the witness's cosignature verifier key
	// ("<name>+<key ID>+<base64>"); answers are checked against it.
	Key string
	// Required means the cells serve a new checkpoint only once it
	// carries this witness's cosignature (waiting at most
	// Deployment.WitnessWait), so verifiers that demand the cosignature
	// see it.
	Required bool
	// Cells are the cells that submit to it; empty means every cell.
	Cells []string
}

// WitnessesOf returns the witnesses the cell submits to, in the file's
// order.
func (d *Deployment) WitnessesOf(cell string) []WitnessConfig {
	var out []WitnessConfig
	for _, w := range d.Witnesses {
		if len(w.Cells) == 0 || slices.Contains(w.Cells, cell) {
			out = append(out, w)
		}
	}
	return out
}
