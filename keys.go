package domicile

import (
	"context"
	"time"
)

// KeyStore keeps a cell's custody records: each subject's data key,
// wrapped by the cell's key-encryption key. It is deliberately not the
// cell's database: destroying an entry here crypto-shreds a subject even in
// copies of the cell's database taken before.
type KeyStore interface {
	// PutKey stores a wrapped data key; it fails if (ref, gen) exists.
	PutKey(ctx context.Context, k WrappedKey) error
	// PutKeys stores wrapped keys in one transaction: every one, or none
	// if a (ref, gen) exists already or appears twice
	// (ErrVersionMismatch). It takes at most MaxKeysPerBatch keys. It is
	// PutKey for bulk loads, one durable write for many keys.
	PutKeys(ctx context.Context, ks []WrappedKey) error
	// Key returns a wrapped data key, or ErrNotFound.
	Key(ctx context.Context, ref SubjectRef, gen uint8) (*WrappedKey, error)
	// ReplaceKey swaps a wrapped key for its re-wrapped form if it is still
	// wrapped under fromVersion.
	ReplaceKey(ctx context.Context, k WrappedKey, fromVersion uint32) error
	// KeysBelow lists up to limit keys wrapped under a KEK version below
	// version, after the cursor ref (the zero reference: from the start).
	KeysBelow(ctx context.Context, version uint32, after SubjectRef, limit int) ([]WrappedKey, error)
	// CountByVersion counts keys per KEK version.
	CountByVersion(ctx context.Context) (map[uint32]int64, error)
	// DeleteKeys destroys every key of ref durably, overwriting the freed
	// pages, and returns how many it destroyed.
	DeleteKeys(ctx context.Context, ref SubjectRef) (int, error)
	Close() error
}

// MaxKeysPerBatch bounds the keys of one KeyStore.PutKeys.
const MaxKeysPerBatch = 10_000

// WrappedKey is one data key as custody stores it.
type WrappedKey struct {
	Ref        SubjectRef
	Gen        uint8
	KEKVersion uint32
	Wrapped    []byte
	// Fingerprint identifies the key without revealing it.
	Fingerprint string
	Created     time.Time
}

// ErasureReceipt is what erasing a subject returns: proof of what was
// destroyed, where and when, and what the erasure could not reach. The
// cell keeps it under its ID, without the subject reference, so that the
// person can fetch it again after the erasure (GET /v1/receipts/{id}).
type ErasureReceipt struct {
	// ID is the receipt's id: a random capability ("rcp_…").
	ID              string    `json:"id"`
	Cell            string    `json:"cell"`
	Subject         string    `json:"subject_ref,omitempty"`
	KeyFingerprints []string  `json:"key_fingerprints"`
	Time            time.Time `json:"time"`
	Records         int       `json:"records_deleted"`
	Objects         int       `json:"objects_deleted"`
	// LogIndex is the index of the erase event in the cell's log.
	LogIndex int64 `json:"log_index"`
	// Unreachable lists the copies of the subject's data that left the
	// cell before the erasure and that crypto-shredding cannot reach:
	// transfers abroad, reads from abroad, disclosures to authorities and
	// copies handed to the subject or the app. It is empty when the
	// subject's trail shows none.
	Unreachable []UnreachableCopy `json:"unreachable"`
}

// UnreachableCopy is one copy of a subject's data that an erasure cannot
// reach, as the subject's trail recorded it before the erasure. It names
// no one: the recipient is an organisation or a role.
type UnreachableCopy struct {
	Time time.Time `json:"time"`
	// What is "transfer" (an export abroad), "portability" (a copy moved
	// to another handler at the subject's request), "remote-read" (a read
	// from another jurisdiction), "disclosure" (a read by an authority)
	// or "copy" (a copy bundle handed out).
	What string `json:"what"`
	// Transfer is the ledger's transfer id, when the copy was counted as
	// a transfer.
	Transfer    string       `json:"transfer,omitempty"`
	Destination Jurisdiction `json:"destination,omitempty"`
	// Recipient is the organisation that received it (from the transfer
	// ledger) or the role of the actor that took it.
	Recipient string `json:"recipient,omitempty"`
	// Reference is the authority's reference or the rights request the
	// copy answered.
	Reference string `json:"reference,omitempty"`
}
