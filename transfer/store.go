package transfer

import (
	"context"
	"time"

	"domicile"
)

// Ledger keeps the distinct counts and the transfer records durably.
// Implementations are safe for concurrent use; the gateway serialises
// decisions per entity, so Record never races another Record of the same
// entity from the same gateway.
type Ledger interface {
	// Counts returns the value of each key (0 for a count never raised).
	Counts(ctx context.Context, keys []domicile.CountKey) ([]int64, error)
	// Members reports, for each ref, whether it is already in the count.
	Members(ctx context.Context, key domicile.CountKey, refs []domicile.SubjectRef) ([]bool, error)
	// Record applies adds and stores r in one durable transaction, and
	// returns for each add how many people were new to its count. It sets
	// r's NewPI and NewSPI from them ([domicile.TransferRecord.SetNew])
	// before storing r.
	Record(ctx context.Context, r *domicile.TransferRecord, adds []domicile.CountAdd) ([]int64, error)
	// Breakdown returns every count of an entity's year.
	Breakdown(ctx context.Context, entity string, year int) ([]domicile.Count, error)
	// Records calls fn for each transfer record with from ≤ Time < until,
	// in time order, without holding them all in memory.
	Records(ctx context.Context, from, until time.Time, fn func(*domicile.TransferRecord) error) error
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
	PutConsent(ctx context.Context, c *domicile.Consent) error
	// Consent returns the current state of each subject's consent of a
	// kind, nil for a subject that never gave one.
	Consent(ctx context.Context, kind domicile.ConsentKind, refs []domicile.SubjectRef) ([]*domicile.Consent, error)
}

// Store is everything the gateway keeps.
type Store interface {
	Ledger
	Registry
	Consents
}

// EntityLocker is implemented by a Store that several processes share
// (the cell processes of one deployment all decide transfers on the same
// ledger). LockEntity holds, across every process, the right to decide
// and record the transfers of one legal entity, until the returned
// function is called: a decision reads the entity's counts, and without
// it two processes could both pass on the same counts, together past a
// threshold that should have stopped the second. It waits for the lock
// until ctx ends.
type EntityLocker interface {
	LockEntity(ctx context.Context, entity string) (unlock func(), err error)
}
