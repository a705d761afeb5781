// Package rights runs individuals' rights requests (PIPL Arts. 44-50,
// GDPR Arts. 15-22) end to end: access, copy, portability, correction,
// deletion and explanation, each with a deadline under the law of the
// subject's jurisdiction, a state, and events in the subject's trail.
//
// A request is personal data: it lives in the subject's home cell, sealed
// with the subject's key, and is reached only through the cell's access
// path ([cell.Cell.FileRequest], [cell.Cell.UpdateRequest],
// [cell.Cell.GetRequest], [cell.Cell.ListRequests], [cell.Cell.Copy]).
//
// # Kinds
//
//   - access: answered at once with an inventory of what the subject holds
//     (kinds, fields, categories, counts; no values), where it lives and
//     who runs the cell. The values are in the copy.
//   - copy: answered at once; the copy is a ZIP ([BundleFormat]) made at
//     each download, optionally age-encrypted to a recipient the subject
//     gives. The app may take only an encrypted copy.
//   - portability: a copy for another handler. If the handler is outside
//     the cell's jurisdiction the transfer gate decides it (and counts it)
//     when it is filed; a refusal is the request's answer.
//   - correction: filed for the business to act on; the app moves it to
//     in-progress, completed or refused (with a reason).
//   - deletion: crypto-shreds the subject at once; the answer is the
//     erasure receipt, which lists what the erasure cannot reach. The
//     request itself is erased with the subject; the receipt is kept under
//     its own id.
//   - explanation: answered at once: for each category of data the
//     subject holds, the purposes that read it (and the consents they
//     need) and the rules it rests on.
//
// # Deadlines
//
// The deadline is set when the request is filed, from the subject's
// jurisdiction: 15 working days on the CN calendar for mainland China
// (PIPL Arts. 44-50 say "promptly"; 15 working days is the benchmark the
// engine's rule CN.PIPL.44-50 cites), one month for the EU (GDPR Art.
// 12(3)), one month elsewhere (no rule modelled). A request not completed
// or refused by then is overdue.
package rights

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"

	"domicile"
)

// Kind is a kind of rights request.
type Kind string

// Kinds of rights requests.
const (
	Access      Kind = "access"
	Copy        Kind = "copy"
	Portability Kind = "portability"
	Correction  Kind = "correction"
	Deletion    Kind = "deletion"
	Explanation Kind = "explanation"
)

// Kinds lists every kind, in the order of the law's articles.
var Kinds = []Kind{Access, Copy, Portability, Correction, Deletion, Explanation}

// State is a request's state.
type State string

// States of a request. Completed and refused are final.
const (
	Received   State = "received"
	InProgress State = "in-progress"
	Completed  State = "completed"
	Refused    State = "refused"
)

// Final reports whether s is a final state.
func (s State) Final() bool { return s == Completed || s == Refused }

// Limits on what a request may carry.
const (
	MaxNoteBytes    = 2000
	MaxReasonBytes  = 2000
	MaxChanges      = 64
	MaxChangesBytes = 64 << 10
)

// Input is what a subject (or the app on its behalf) files.
type Input struct {
	Kind Kind `json:"kind"`
	// Recipient is an age X25519 public key ("age1…") the copy is
	// encrypted to (copy and portability).
	Recipient string `json:"recipient,omitempty"`
	// To is the handler a portability request moves the copy to.
	To *Handler `json:"to,omitempty"`
	// Record and Changes say what a correction asks: the record and the
	// new values of its fields.
	Record  *RecordRef                 `json:"record,omitempty"`
	Changes map[string]json.RawMessage `json:"changes,omitempty"`
	// Note is the subject's own words.
	Note string `json:"note,omitempty"`
}

// Handler is another personal-information handler: its name and
// jurisdiction.
type Handler struct {
	Name         string                `json:"name"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
}

// RecordRef names a record.
type RecordRef struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Validate checks an input against the deployment's kinds; the error
// names the field.
func (in *Input) Validate(dep *domicile.Deployment) error {
	if !slices.Contains(Kinds, in.Kind) {
		return domicile.FieldErrorf("kind", "must be one of access, copy, portability, correction, deletion, explanation")
	}
	if len(in.Note) > MaxNoteBytes || !utf8.ValidString(in.Note) {
		return domicile.FieldErrorf("note", "must be at most %d bytes of UTF-8", MaxNoteBytes)
	}
	if in.Recipient != "" {
		if in.Kind != Copy && in.Kind != Portability {
			return domicile.FieldErrorf("recipient", "is for copy and portability requests")
		}
		if _, err := age.ParseX25519Recipient(in.Recipient); err != nil {
			return domicile.FieldErrorf("recipient", "is not an age X25519 public key (age1…)")
		}
	}
	switch {
	case in.Kind == Portability && in.To == nil:
		return domicile.FieldErrorf("to", "a portability request names the handler to move the data to: {\"name\": …, \"jurisdiction\": …}")
	case in.Kind != Portability && in.To != nil:
		return domicile.FieldErrorf("to", "is for portability requests")
	case in.To != nil:
		if in.To.Name == "" || len(in.To.Name) > 256 || !utf8.ValidString(in.To.Name) || strings.TrimSpace(in.To.Name) != in.To.Name {
			return domicile.FieldErrorf("to.name", "must name the handler (1 to 256 bytes of UTF-8, no surrounding spaces)")
		}
		j, err := domicile.ParseJurisdiction(string(in.To.Jurisdiction))
		if err != nil {
			return domicile.FieldErrorf("to.jurisdiction", "must be a jurisdiction code such as DE or US")
		}
		in.To.Jurisdiction = j
	}
	if in.Kind != Correction {
		if in.Record != nil || in.Changes != nil {
			return domicile.FieldErrorf("record", "record and changes are for correction requests")
		}
		return nil
	}
	if in.Record == nil {
		return domicile.FieldErrorf("record", "a correction names the record to correct: {\"kind\": …, \"id\": …}")
	}
	k := dep.Kind(in.Record.Kind)
	if k == nil {
		return domicile.FieldErrorf("record.kind", "unknown record kind %q", trunc(in.Record.Kind, 32))
	}
	if err := domicile.ValidateID("record.id", in.Record.ID); err != nil {
		return err
	}
	if len(in.Changes) == 0 || len(in.Changes) > MaxChanges {
		return domicile.FieldErrorf("changes", "must give 1 to %d fields with their corrected values", MaxChanges)
	}
	n := 0
	for f, v := range in.Changes {
		if _, ok := k.Fields[f]; !ok {
			return domicile.FieldErrorf("changes", "field %q is not declared for kind %q", trunc(f, 64), in.Record.Kind)
		}
		n += len(f) + len(v)
	}
	if n > MaxChangesBytes {
		return domicile.FieldErrorf("changes", "are over the limit of %d bytes", MaxChangesBytes)
	}
	return nil
}

// Update is a change of a request's state by the app.
type Update struct {
	State State `json:"state"`
	// Reason says why a request is refused (required then).
	Reason string `json:"reason,omitempty"`
	// Note says what was done, for the subject.
	Note string `json:"note,omitempty"`
}

// Validate checks an update; the error names the field.
func (u *Update) Validate() error {
	switch u.State {
	case InProgress, Completed, Refused:
	default:
		return domicile.FieldErrorf("state", "must be in-progress, completed or refused")
	}
	if u.State == Refused && strings.TrimSpace(u.Reason) == "" {
		return domicile.FieldErrorf("reason", "a refusal gives its reason (PIPL Art. 50, GDPR Art. 12(4))")
	}
	if u.State != Refused && u.Reason != "" {
		return domicile.FieldErrorf("reason", "is for refusals")
	}
	if len(u.Reason) > MaxReasonBytes || !utf8.ValidString(u.Reason) {
		return domicile.FieldErrorf("reason", "must be at most %d bytes of UTF-8", MaxReasonBytes)
	}
	if len(u.Note) > MaxNoteBytes || !utf8.ValidString(u.Note) {
		return domicile.FieldErrorf("note", "must be at most %d bytes of UTF-8", MaxNoteBytes)
	}
	return nil
}

// Request is a rights request as the API shows it.
type Request struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Kind    Kind   `json:"kind"`
	State   State  `json:"state"`
	// Reason says why the request was refused.
	Reason   string        `json:"reason,omitempty"`
	FiledBy  domicile.Role `json:"filed_by"`
	Received time.Time     `json:"received"`
	Deadline Deadline      `json:"deadline"`
	// Overdue is true when the deadline has passed and the request is
	// neither completed nor refused.
	Overdue bool    `json:"overdue"`
	Ask     Input   `json:"ask"`
	Result  *Result `json:"result,omitempty"`
	// History lists every change of state, oldest first.
	History []Step    `json:"history"`
	Version int64     `json:"version"`
	Updated time.Time `json:"updated"`
}

// Deadline is when the law wants a request answered by, and why.
type Deadline struct {
	Due time.Time `json:"due"`
	// Rule is the law engine's rule id, or the article, it rests on.
	Rule string `json:"rule"`
	// Basis says how the deadline was counted, in words.
	Basis string `json:"basis"`
	// Approximate is true when a working day counted fell in a year the
	// calendar does not cover (weekends only were skipped there).
	Approximate bool `json:"approximate,omitempty"`
}

// Step is one change of a request's state.
type Step struct {
	Time  time.Time     `json:"time"`
	State State         `json:"state"`
	Role  domicile.Role `json:"role"`
	Note  string        `json:"note,omitempty"`
}

// Result is a request's answer.
type Result struct {
	// Bundle is the path to download the copy from (copy, portability).
	Bundle    string `json:"bundle,omitempty"`
	Encrypted bool   `json:"encrypted,omitempty"`
	// Transfer is the gate's decision for a portability abroad.
	Transfer *TransferRef `json:"transfer,omitempty"`
	// Inventory answers an access request.
	Inventory *Inventory `json:"inventory,omitempty"`
	// Explanation answers an explanation request, per category.
	Explanation []CategoryBasis `json:"explanation,omitempty"`
	// Receipt answers a deletion request.
	Receipt *domicile.ErasureReceipt `json:"receipt,omitempty"`
}

// TransferRef is the transfer a portability abroad was counted as.
type TransferRef struct {
	ID          string                `json:"id"`
	Destination domicile.Jurisdiction `json:"destination"`
	Recipient   string                `json:"recipient"`
	Law         string                `json:"law_mechanism"`
	Mechanism   string                `json:"mechanism,omitempty"`
	// Fields are what the mechanism lets leave, per kind ("object" for
	// files): the copy holds only these.
	Fields map[string][]string `json:"fields"`
}

// Inventory is what a subject holds, without any value.
type Inventory struct {
	Cell         string                `json:"cell"`
	Operator     string                `json:"operator"`
	Location     string                `json:"location"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Kinds        []KindView            `json:"kinds"`
	Objects      int                   `json:"objects"`
	ObjectBytes  int64                 `json:"object_bytes"`
	// Statement is where the subject's full data statement is (every
	// access with its proof, transfers, notices).
	Statement string `json:"statement"`
}

// KindView is what a subject holds of one record kind.
type KindView struct {
	Kind       string              `json:"kind"`
	Records    int                 `json:"records"`
	Fields     []string            `json:"fields"`
	Categories []domicile.Category `json:"categories"`
	// Purposes are the declared purposes that read records of this kind.
	Purposes []string `json:"purposes"`
}

// CategoryBasis says what one category of a subject's data is processed
// for and on what ground.
type CategoryBasis struct {
	Category domicile.Category `json:"category"`
	// Fields are the subject's fields of this category ("kind.field";
	// "object" for its files).
	Fields   []string       `json:"fields"`
	Purposes []PurposeBasis `json:"purposes"`
	Rules    []RuleRef      `json:"rules"`
	// Text says it in the request's language.
	Text string `json:"text"`
}

// PurposeBasis is one purpose that reads a category.
type PurposeBasis struct {
	Purpose string `json:"purpose"`
	// Consent is the consent the purpose needs, and Given whether the
	// subject has given it (and not withdrawn it).
	Consent string `json:"consent,omitempty"`
	Given   bool   `json:"consent_given,omitempty"`
}

// RuleRef is a rule of the law engine.
type RuleRef struct {
	ID       string `json:"id"`
	Citation string `json:"citation"`
	Summary  string `json:"summary"`
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
