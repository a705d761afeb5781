package domicile

import (
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
