package domicile

import (
	"sort"
	"strings"
	"time"
)

// Action is what an event did.
type Action string

// Actions recorded in a cell's log.
const (
	ActWrite     Action = "write"
	ActRead      Action = "read"
	ActList      Action = "list"
	ActDelete    Action = "delete"
	ActErase     Action = "erase"
	ActExport    Action = "export"
	ActKeyUnwrap Action = "key-unwrap"
	ActTransfer  Action = "transfer"
	ActConsent   Action = "consent"
	ActNotice    Action = "notice"
	ActDisclose  Action = "disclose"
	// ActRequest files or changes an individual's rights request.
	ActRequest Action = "request"
	// ActMigrateOut is a subject's data leaving this cell for another
	// cell of the deployment in a migration (its copy, then the
	// crypto-shredding of what stayed behind); ActMigrateIn is its
	// arrival in the target cell. Both name the migration plan.
	ActMigrateOut Action = "migrate-out"
	ActMigrateIn  Action = "migrate-in"
)

// Outcome is whether an access was allowed.
type Outcome string

// Outcomes.
const (
	Allowed Outcome = "allowed"
	Denied  Outcome = "denied"
)

// Event is one access to subject data, as the cell keeps it. Its
// committed form (canonical JSON) is what a log leaf commits to; it stays in
// the cell with its salt.
type Event struct {
	Time time.Time `json:"time"`
	Cell string    `json:"cell"`
	// Subject is the pseudonymous subject reference (hex), or empty.
	Subject      string       `json:"subject,omitempty"`
	Role         Role         `json:"role"`
	Jurisdiction Jurisdiction `json:"jurisdiction,omitempty"`
	TokenID      string       `json:"token,omitempty"`
	Action       Action       `json:"action"`
	// Resource names what was touched: "record/message/m1", "object/photo1.jpg", "subject".
	Resource string `json:"resource"`
	// Basis is the purpose ("service:support") or reason of the access.
	Basis     string  `json:"basis"`
	Reference string  `json:"reference,omitempty"`
	Outcome   Outcome `json:"outcome"`
	// Detail is the error code of a denial, or a note such as a key
	// version.
	Detail string `json:"detail,omitempty"`
}

// Recorder turns events into log entries: the public leaf and the private
// committed bytes and salt. Implementations are safe for concurrent use.
type Recorder interface {
	Entry(e Event) (*LogEntry, error)
}

// RemoteReadPrefix starts the detail of an access event that was a read
// from outside the cell's jurisdiction: a transfer abroad, decided by the
// transfer gate (for example "remote read from US under exempt (sc-1)
// counted as transfer trf_x; withheld id_number").
const RemoteReadPrefix = "remote read from "

// IsRemoteRead reports whether e is an allowed read from abroad. It is the
// one definition the statement and the transparency report count by.
func (e *Event) IsRemoteRead() bool {
	return e.Outcome == Allowed && strings.HasPrefix(e.Detail, RemoteReadPrefix)
}

// ConsentWithdrawnPrefix starts the detail of a consent event that
// withdraws a consent ("withdrawn:<text version>").
const ConsentWithdrawnPrefix = "withdrawn:"

// IsWithdrawal reports whether e withdraws a consent.
func (e *Event) IsWithdrawal() bool {
	return e.Action == ActConsent && e.Outcome == Allowed && strings.HasPrefix(e.Detail, ConsentWithdrawnPrefix)
}

// PublicTags returns the tags of e's public log leaf, in ascending order
// (package leaf's Tags): the reason an operator or authority stated,
// "remote" for an allowed read from abroad ([Event.IsRemoteRead]) and
// "withdrawal" for a consent withdrawn ([Event.IsWithdrawal]). They are
// what the published figures count, so that anyone can recount them from
// the log.
func (e *Event) PublicTags() []string {
	var tags []string
	if e.Role == RoleOperator || e.Role == RoleAuthority {
		switch r := Reason(e.Basis); r {
		case ReasonSupport, ReasonMaintenance, ReasonLawfulDomestic, ReasonLawfulForeign, ReasonEmergency:
			tags = append(tags, string(r))
		}
	}
	if e.IsRemoteRead() {
		tags = append(tags, "remote")
	}
	if e.IsWithdrawal() {
		tags = append(tags, "withdrawal")
	}
	sort.Strings(tags)
	return tags
}
