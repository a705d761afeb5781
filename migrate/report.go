package migrate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Report is what a finished migration reports, per cell: how many
// subjects left or arrived, how many records, objects and bytes, the
// aggregate digest of their data as that cell computed it, and the log
// index of each subject's migrate-out (source) or migrate-in (target)
// event under a checkpoint of the cell's log. It names no subject.
type Report struct {
	Plan       string       `json:"plan"`
	Deployment string       `json:"deployment"`
	Started    time.Time    `json:"started"`
	Finished   time.Time    `json:"finished"`
	Retention  string       `json:"retention"`
	Cells      []CellReport `json:"cells"`
	// Transfers are the ledger's ids of the cross-border moves.
	Transfers []string `json:"transfers"`
}

// CellReport is one cell's part of a report.
type CellReport struct {
	Cell string `json:"cell"`
	// Role is "source" or "target".
	Role     string `json:"role"`
	Operator string `json:"operator"`
	Subjects int    `json:"subjects"`
	Records  int    `json:"records"`
	Objects  int    `json:"objects"`
	Bytes    int64  `json:"bytes"`
	// Digest is AggregateDigest of the subjects' digests as this cell
	// computed them.
	Digest string `json:"digest"`
	// Shredded counts the subjects whose copy this source cell destroyed.
	Shredded int `json:"shredded"`
	// Events are the log indexes of the subjects' migrate-out (source)
	// or migrate-in (target) events, ascending.
	Events []int64 `json:"events"`
	// Log is the cell's log: its key and a checkpoint that includes
	// every event listed.
	Log LogRef `json:"log"`
}

// LogRef names a cell's log and a signed checkpoint of it.
type LogRef struct {
	URL         string `json:"url"`
	VerifierKey string `json:"verifier_key"`
	Checkpoint  string `json:"checkpoint"`
	Size        int64  `json:"size"`
}

// AggregateDigest is the digest of a set of subjects' digests: the
// SHA-256 of their hex forms in ascending order, one per line. Both
// cells of a move compute it over the digests they computed.
func AggregateDigest(digests []string) string {
	d := slices.Clone(digests)
	sort.Strings(d)
	h := sha256.New()
	for _, x := range d {
		h.Write([]byte(x + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MaxReportBytes bounds a signed report.
const MaxReportBytes = 16 << 20

// maxReportEvents bounds the events a report lists per cell.
const maxReportEvents = 10_000_000

// FormatReport returns the report's canonical text: its JSON on one line
// and a newline. Signed, it is the text of a signed note.
func FormatReport(r *Report) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

var roleRE = regexp.MustCompile(`^(source|target)$`)

// ParseReport parses a report's canonical text (FormatReport's output,
// byte for byte).
func ParseReport(b []byte) (*Report, error) {
	if len(b) > MaxReportBytes || !bytes.HasSuffix(b, []byte("\n")) {
		return nil, ErrMalformed
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() {
		return nil, ErrMalformed
	}
	if !ValidPlanID(r.Plan) || len(r.Cells) == 0 || len(r.Cells) > maxMoves || len(r.Transfers) > maxReportEvents {
		return nil, ErrMalformed
	}
	if _, err := time.ParseDuration(r.Retention); err != nil {
		return nil, ErrMalformed
	}
	for _, c := range r.Cells {
		if !cellRE.MatchString(c.Cell) || !roleRE.MatchString(c.Role) || c.Subjects < 0 || c.Records < 0 || c.Objects < 0 || c.Bytes < 0 ||
			!hexRE.MatchString(c.Digest) || len(c.Events) != c.Subjects || c.Shredded < 0 || c.Shredded > c.Subjects ||
			!slices.IsSorted(c.Events) || c.Log.Size < 0 || !strings.HasPrefix(c.Log.URL, "/log/") {
			return nil, ErrMalformed
		}
		for i, e := range c.Events {
			if e < 0 || e >= c.Log.Size || (i > 0 && e == c.Events[i-1]) {
				return nil, ErrMalformed
			}
		}
	}
	out, err := FormatReport(&r)
	if err != nil || !bytes.Equal(out, b) {
		return nil, ErrMalformed
	}
	return &r, nil
}

// SignReport signs the report's canonical text as a signed note.
func SignReport(r *Report, s note.Signer) ([]byte, error) {
	text, err := FormatReport(r)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(text)}, s)
}

// OpenReport verifies a signed report with the verifier key vkey and
// parses it.
func OpenReport(signed []byte, vkey string) (*Report, error) {
	if len(signed) > MaxReportBytes {
		return nil, ErrMalformed
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return nil, err
	}
	return ParseReport([]byte(n.Text))
}
