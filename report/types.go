package report

import (
	"context"
	"time"

	"domicile/figures"

	"domicile"
)

// Period is a half-open time interval [From, To).
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Contains reports whether t is in the period.
func (p Period) Contains(t time.Time) bool { return !t.Before(p.From) && t.Before(p.To) }

// RuleRef cites one rule of the law engine.
type RuleRef struct {
	ID       string `json:"id"`
	Citation string `json:"citation"`
	// Summary is the rule's effect in the document's language.
	Summary string `json:"summary"`
}

// TransferLine is one transfer of a subject's data abroad, as the transfer
// gateway recorded it.
type TransferLine struct {
	Time        time.Time             `json:"time"`
	Destination domicile.Jurisdiction `json:"destination"`
	Recipient   string                `json:"recipient"`
	Mechanism   string                `json:"mechanism"`
	Reference   string                `json:"reference,omitempty"`
	Purpose     string                `json:"purpose,omitempty"`
	Categories  []domicile.Category   `json:"categories,omitempty"`
}

// Transfers is what the reports need of the transfer gateway. A nil
// Transfers means no gateway is wired: documents then say that transfers
// are not reported by this source (and still count transfer events in the
// log), never that there were none.
type Transfers interface {
	// SubjectTransfers lists the transfers that the subject's events name
	// (exports and remote reads counted as transfers) with times in
	// [from, to), oldest first. The events come from the subject's cell,
	// through its access path.
	SubjectTransfers(ctx context.Context, events []domicile.StoredEvent, from, to time.Time) ([]TransferLine, error)
	// Ledger returns the ledger's figures of the calendar years of [from,
	// to) (figures.LedgerOf).
	Ledger(ctx context.Context, from, to time.Time) (*figures.Ledger, error)
}

// EventProof is one logged event with what a verifier needs: the leaf, the
// salt and committed bytes it commits to, and an inclusion proof against
// the statement's checkpoint.
type EventProof struct {
	Index     int64          `json:"leaf_index"`
	Leaf      string         `json:"leaf"`
	Salt      []byte         `json:"salt"`
	Committed string         `json:"committed"`
	Event     domicile.Event `json:"event"`
	// Proof is the inclusion proof (base64 hashes) against LogRef.Size.
	Proof []string `json:"inclusion_proof"`
}

// LogRef names a cell's log and the signed checkpoint proofs refer to.
type LogRef struct {
	Cell        string `json:"cell"`
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
	URL         string `json:"url,omitempty"`
	Checkpoint  string `json:"checkpoint"`
	// Size and RootHash (base64, as in the checkpoint) are the tree the
	// checkpoint signs: what a document's figures and proofs refer to.
	Size     int64  `json:"size"`
	RootHash string `json:"root_hash"`
}

// NoticeLine is a change notice sent to a subject and what became of it.
type NoticeLine struct {
	ID           string     `json:"id"`
	Plan         string     `json:"plan"`
	Created      time.Time  `json:"created"`
	Title        string     `json:"title"`
	Body         string     `json:"body"`
	Attempts     int        `json:"attempts"`
	Delivered    *time.Time `json:"delivered,omitempty"`
	Acknowledged *time.Time `json:"acknowledged,omitempty"`
	// Texts holds the notice in every language, keyed by language tag.
	Texts map[string]NoticeText `json:"texts,omitempty"`
}

// NoticeText is a notice's title and body in one language.
type NoticeText struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// ChangeLine is a change of a cell's declaration that took effect (a
// restart or reload with a new deployment file), with its time.
type ChangeLine struct {
	Time   time.Time `json:"time"`
	Cell   string    `json:"cell"`
	Field  string    `json:"field"`
	Before string    `json:"before"`
	After  string    `json:"after"`
}

// AuthorityLine is an authority request that touched a subject, as the
// subject may see it: only once any deferral of notice has ended.
type AuthorityLine struct {
	Request      string                `json:"request"`
	Authority    string                `json:"authority"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Foreign      bool                  `json:"foreign"`
	Kind         string                `json:"kind"`
	LegalBasis   string                `json:"legal_basis"`
	Reference    string                `json:"reference"`
	Received     time.Time             `json:"received"`
	Outcome      string                `json:"outcome"`
	Rules        []string              `json:"rules,omitempty"`
	DeferUntil   *time.Time            `json:"defer_until,omitempty"`
	// Notice is the notice to the subject; Opening proves it is the one
	// the log committed to when the request was decided.
	Notice *NoticeText `json:"notice,omitempty"`
	// Texts is the notice in every language; the statement shows the one
	// in its language as Notice.
	Texts   map[string]NoticeText `json:"-"`
	Opening *Opening              `json:"opening,omitempty"`
}

// Opening opens a commitment made in a log event: Commitment is
// HMAC-SHA256(Salt, Committed) (leaf.Commit), and the event at Event.Index
// carries it in its detail.
type Opening struct {
	Committed  string     `json:"committed"`
	Salt       []byte     `json:"salt"`
	Commitment string     `json:"commitment"`
	Event      EventProof `json:"event"`
}
