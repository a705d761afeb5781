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
// destroyed, where and when.
type ErasureReceipt struct {
	Cell            string    `json:"cell"`
	Subject         string    `json:"subject_ref"`
	KeyFingerprints []string  `json:"key_fingerprints"`
	Time            time.Time `json:"time"`
	Records         int       `json:"records_deleted"`
	Objects         int       `json:"objects_deleted"`
	// LogIndex is the index of the erase event in the cell's log.
	LogIndex int64 `json:"log_index"`
}
