package transfer

import (
	"context"
	"time"

	"domicile"
	"domicile/transfer/ledger"
)

// Data types of the ledger, defined in package ledger so that storage
// adapters need not import this package.
type (
	// Class separates the two counts the 2024 Provisions keep apart.
	Class = ledger.Class
	// CountKey names one distinct count of the ledger.
	CountKey = ledger.CountKey
	// Count is a CountKey and its value.
	Count = ledger.Count
	// Record is one transfer as the ledger keeps it.
	Record = ledger.Record
	// Add asks the ledger to add subjects to one count.
	Add = ledger.Add
	// ConsentKind is what a subject consents to.
	ConsentKind = ledger.ConsentKind
	// Consent is the current state of one consent of a subject.
	Consent = ledger.Consent
	// Kind is the kind of a legal basis for transfers.
	Kind = ledger.Kind
)

// Classes, dimensions, channels and consent kinds (see package ledger).
const (
	ClassPI            = ledger.ClassPI
	ClassSPI           = ledger.ClassSPI
	DimTotal           = ledger.DimTotal
	DimMechanism       = ledger.DimMechanism
	DimDestination     = ledger.DimDestination
	ChannelExport      = ledger.ChannelExport
	ChannelRemote      = ledger.ChannelRemote
	ChannelImport      = ledger.ChannelImport
	ConsentCrossBorder = ledger.ConsentCrossBorder
	ConsentSensitive   = ledger.ConsentSensitive
)

// ParseConsentKind returns the consent kind named s.
func ParseConsentKind(s string) (ConsentKind, error) { return ledger.ParseConsentKind(s) }

// Ledger keeps the distinct counts and the transfer records durably.
// Implementations are safe for concurrent use; the gateway serialises
// decisions per entity, so Record never races another Record of the same
// entity from the same gateway.
type Ledger interface {
	// Counts returns the value of each key (0 for a count never raised).
	Counts(ctx context.Context, keys []CountKey) ([]int64, error)
	// Members reports, for each ref, whether it is already in the count.
	Members(ctx context.Context, key CountKey, refs []domicile.SubjectRef) ([]bool, error)
	// Record stores r and applies adds in one durable transaction, and
	// returns for each add how many subjects were new to its count.
	Record(ctx context.Context, r *Record, adds []Add) ([]int64, error)
	// Breakdown returns every count of an entity's year.
	Breakdown(ctx context.Context, entity string, year int) ([]Count, error)
	// Records calls fn for each transfer record with from ≤ Time < until,
	// in time order, without holding them all in memory.
	Records(ctx context.Context, from, until time.Time, fn func(*Record) error) error
	// Warned records that a headroom warning level was reached and
	// reports whether it is the first time.
	Warned(ctx context.Context, entity string, year int, fact string, threshold int64, percent int) (bool, error)
}

// Registry keeps the mechanisms a business holds.
type Registry interface {
	// PutMechanism stores a mechanism's JSON under its id, replacing any
	// of the same id.
	PutMechanism(ctx context.Context, id string, body []byte) error
	// Mechanisms returns every mechanism's JSON, in id order.
	Mechanisms(ctx context.Context) ([][]byte, error)
}

// Consents keeps subjects' consents, keyed by subject reference.
type Consents interface {
	// PutConsent stores the current state of one consent of a subject.
	PutConsent(ctx context.Context, c *Consent) error
	// Consent returns the current state of each subject's consent of a
	// kind, nil for a subject that never gave one.
	Consent(ctx context.Context, kind ConsentKind, refs []domicile.SubjectRef) ([]*Consent, error)
}

// Store is everything the gateway keeps.
type Store interface {
	Ledger
	Registry
	Consents
}
