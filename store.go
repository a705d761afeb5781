package domicile

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"time"
)

// SubjectRef is the pseudonymous reference of a subject: a keyed hash
// (HMAC-SHA256) of its id. Directories, logs and stores key subjects by it,
// so that nothing outside a cell's sealed data holds a raw subject id.
type SubjectRef [32]byte

// String returns the reference in lower-case hex.
func (r SubjectRef) String() string { return hex.EncodeToString(r[:]) }

// IsZero reports whether r is the zero reference (no subject).
func (r SubjectRef) IsZero() bool { return r == SubjectRef{} }

// ParseSubjectRef parses the hex form of a reference.
func ParseSubjectRef(s string) (SubjectRef, error) {
	var r SubjectRef
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(r) {
		return r, FieldErrorf("subject", "malformed subject reference")
	}
	copy(r[:], b)
	return r, nil
}

// Version expectations for conditional writes.
const (
	// AnyVersion writes whatever the current version is.
	AnyVersion int64 = -1
	// NoVersion requires, in a store operation, that the resource has
	// never existed. A deleted record keeps its last version as a
	// tombstone, so that versions (and the associated data sealed with
	// them) never repeat. A cell's write taking NoVersion (If-None-Match:
	// *) requires only that the resource does not exist now: it may
	// follow a tombstone, with the next version.
	NoVersion int64 = 0
	// ExistingVersion, in a cell's write, requires that the resource
	// exists now, whatever its version (If-Match: *).
	ExistingVersion int64 = -2
	// UnmatchedVersion is an expectation no resource meets: an If-Match
	// none of whose entity tags this server could have given.
	UnmatchedVersion int64 = math.MinInt64
)

// ErrVersionMismatch is returned by a store when an operation's expected
// version is not the current one. The service answers 412 to a client that
// sent If-Match, and retries otherwise.
var ErrVersionMismatch = errors.New("version mismatch")

// ErrNotFound is returned by stores for a missing row.
var ErrNotFound = errors.New("not found")

// ErrStoreUnavailable is wrapped by a store's error when its database
// cannot be reached now (refused, lost or timed-out connections, a
// server shutting down or starting up). The outcome of a Commit that
// fails so may be unknown. The service answers 503 with Retry-After;
// the store reconnects by itself, so a later request may succeed.
var ErrStoreUnavailable = errors.New("store unavailable")

// Batch is one atomic, durable unit of change in a cell: data operations
// and the log entries that record them. A store commits every operation and
// every entry of a batch in one transaction, or none of them; it may group
// many batches into one durable commit.
type Batch struct {
	Ops    []Op
	Events []*LogEntry
}

// Op is a data operation in a Batch: one of the *Put…, *Delete… and
// *EraseSubject types of this package.
type Op interface{ isOp() }

// StoredSubject is a subject's row in its cell.
type StoredSubject struct {
	Ref          SubjectRef
	Jurisdiction Jurisdiction
	Created      time.Time
	// KeyGen is the subject's current data-key generation.
	KeyGen uint8
}

// PutSubject creates a subject in a cell. It fails with ErrVersionMismatch
// if the subject exists.
type PutSubject struct{ Subject StoredSubject }

// StoredRecord is a record's row: its body is sealed by the cell before it
// reaches the store.
type StoredRecord struct {
	Ref     SubjectRef
	Kind    string
	ID      string
	Version int64
	// Body is the sealed record; nil for a deleted record (a tombstone that
	// keeps versions increasing).
	Body []byte
	// Fields names the fields present, for category accounting.
	Fields  []string
	Updated time.Time
}

// PutRecord writes Record if the current version is Expect (or any, for
// AnyVersion). Record.Version must be the current version plus one.
type PutRecord struct {
	Record StoredRecord
	Expect int64
}

// DeleteRecord deletes a record, leaving a tombstone; the store sets
// Version to the tombstone's version when it commits.
type DeleteRecord struct {
	Ref      SubjectRef
	Kind, ID string
	Expect   int64
	Version  int64
	Updated  time.Time
}

// StoredObject is an object's row. Its content lives in a blob written
// before the batch commits.
type StoredObject struct {
	Ref         SubjectRef
	Name        string
	Version     int64
	ContentType string
	Size        int64 // plaintext size
	SHA256      string
	Blob        string // blob key in the cell's blob store
	KeyGen      uint8
	Updated     time.Time
}

// PutObject writes Object if the current version is Expect.
type PutObject struct {
	Object StoredObject
	Expect int64
}

// DeleteObject deletes an object.
type DeleteObject struct {
	Ref    SubjectRef
	Name   string
	Expect int64
}

// EraseSubject deletes every record, object, rights request and data key
// of a subject. Its log entries stay, but their salts are destroyed. If
// Receipt is set, the store keeps it (it names no one) in the same
// transaction.
type EraseSubject struct {
	Ref     SubjectRef
	Receipt *StoredReceipt
}

// ImportRecord writes a record brought by a migration from another cell
// at the version it had there (sealed again for this cell). It fails
// with ErrVersionMismatch if the record exists here.
type ImportRecord struct{ Record StoredRecord }

// ImportObject writes an object brought by a migration at the version it
// had in its source cell; its blob is written before the batch commits.
// It fails with ErrVersionMismatch if the object exists here.
type ImportObject struct{ Object StoredObject }

func (*ImportRecord) isOp() {}
func (*ImportObject) isOp() {}
func (*PutSubject) isOp()   {}
func (*PutRecord) isOp()    {}
func (*DeleteRecord) isOp() {}
func (*PutObject) isOp()    {}
func (*DeleteObject) isOp() {}
func (*EraseSubject) isOp() {}

// LogEntry is one event as a log stores it: the public leaf, and the
// private committed event with its salt, which stay in the cell.
type LogEntry struct {
	Ref       SubjectRef // zero when the event concerns no one subject
	Time      time.Time
	Leaf      []byte
	Committed []byte
	Salt      []byte
	// Index is set by the store: the leaf's index in the cell's log.
	Index int64
}

// StoredEvent is a log entry read back from a store.
type StoredEvent struct {
	Index     int64
	Ref       SubjectRef
	Time      time.Time
	Leaf      []byte
	Committed []byte
	Salt      []byte // nil once the subject was erased
}

// CellStore is one cell's durable storage: the small interfaces below,
// each what one kind of consumer uses. Implementations are safe for
// concurrent use.
type CellStore interface {
	Committer
	DataReader
	EventReader
	LogReader
	CheckpointStore
	RequestStore
	Close() error
}

// Committer is a cell store's one write path.
type Committer interface {
	// Commit applies b atomically and durably, assigning each event its
	// log index. It MUST make the batch durable (fsync or equivalent)
	// before it returns nil, and MUST apply all of it or none of it. An
	// operation whose expectation fails makes Commit return
	// ErrVersionMismatch (or ErrNotFound) and changes nothing.
	Commit(ctx context.Context, b *Batch) error
}

// DataReader reads a cell's subjects, records and objects: personal
// data, which only the cell's access path reads.
type DataReader interface {
	Subject(ctx context.Context, ref SubjectRef) (*StoredSubject, error)
	Record(ctx context.Context, ref SubjectRef, kind, id string) (*StoredRecord, error)
	// Records lists live records of a subject ordered by (kind, id), after
	// the cursor (kind, id) given, at most limit.
	Records(ctx context.Context, ref SubjectRef, kind, afterKind, afterID string, limit int) ([]StoredRecord, error)
	Object(ctx context.Context, ref SubjectRef, name string) (*StoredObject, error)
	Objects(ctx context.Context, ref SubjectRef, after string, limit int) ([]StoredObject, error)
	// Blobs is where object contents live.
	Blobs() BlobStore
}

// EventReader reads a cell's log events with their private parts (the
// committed event and its salt): personal data, which stays in the cell.
type EventReader interface {
	// SubjectEvents lists a subject's events with index > after.
	SubjectEvents(ctx context.Context, ref SubjectRef, after int64, limit int) ([]StoredEvent, error)
	// Events lists events with index in [start, end).
	Events(ctx context.Context, start, end int64) ([]StoredEvent, error)
}

// LogReader reads the public part of a cell's log: its size, its leaves
// (salted commitments and non-personal metadata) and its Merkle hashes,
// which the tile and checkpoint server publishes.
type LogReader interface {
	// LogSize returns the number of entries in the cell's log.
	LogSize(ctx context.Context) (int64, error)
	// ReadHashes returns the stored Merkle hashes at the given indexes (in
	// the numbering of golang.org/x/mod/sumdb/tlog).
	ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	// Leaves returns the leaves [start, end).
	Leaves(ctx context.Context, start, end int64) ([][]byte, error)
}

// CheckpointStore keeps a cell log's signed checkpoints and small named
// values (keys' public parts, witness state), durably.
type CheckpointStore interface {
	// PutCheckpoint stores a signed checkpoint of the given size durably;
	// LatestCheckpoint returns the largest.
	PutCheckpoint(ctx context.Context, size int64, note []byte) error
	LatestCheckpoint(ctx context.Context) (size int64, note []byte, err error)
	Meta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte) error
}

// BlobStore keeps object contents. A blob is written whole and synced
// before the batch that references it commits; blobs that no committed
// row references are removed by GC.
type BlobStore interface {
	// Create starts a new blob. The caller writes it, then calls Commit
	// (durable, returns its key) or Abort.
	Create(ctx context.Context) (BlobWriter, error)
	Open(ctx context.Context, key string) (BlobReader, error)
	Remove(ctx context.Context, key string) error
}

// BlobWriter is a blob being written.
type BlobWriter interface {
	io.Writer
	Commit() (key string, err error)
	Abort() error
}

// BlobReader reads a blob at any offset.
type BlobReader interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// CommitStats are a cell store's cumulative group-commit counters: how
// many transactions (groups) its writer committed, how many batches they
// carried, how long the writer was busy with them, and how much of that
// was the commit itself (for SQLite, writing the WAL and the fsync; for
// PostgreSQL, the COMMIT round trip and the server's flush). Busy divided
// by wall time is the writer's utilization: near 1, the single writer is
// what bounds write throughput.
type CommitStats struct {
	Groups  uint64
	Batches uint64
	Busy    time.Duration
	Commit  time.Duration
}

// A CommitStatser reports its CommitStats; both cell stores are.
type CommitStatser interface {
	CommitStats() CommitStats
}

// BackupStats describe a backup a cell store wrote: how many files it
// holds and their bytes, and the log size it covers (every event below
// LogSize is in it).
type BackupStats struct {
	Files   int
	Bytes   int64
	LogSize int64
}

// A Backuper writes a consistent copy of itself while it serves: the
// records, objects' metadata, events and other rows as of one moment, and
// the contents of every object those rows name. dir must not exist; it is
// created, and holds, once Backup returns, a directory a store of the
// same kind opens (the log's hash tiles, which are derived from the
// events, are rebuilt then). The embedded stores are Backupers; a
// PostgreSQL cell is backed up with PostgreSQL's own tools.
type Backuper interface {
	Backup(ctx context.Context, dir string) (BackupStats, error)
}

// MemoryStats are the memory a cell store's engine holds of its own, which
// the Go runtime's figures may not show: Pebble allocates its block cache
// and memtables outside the Go heap. Bound is the configured bound on the
// block cache and memtables together (0: none known); CacheBytes is what
// the block cache holds now and CacheCapacity its size (for Pebble, the
// bound: the memtables are counted in it); MemTableBytes is what the
// memtables hold allocated, MemTables their count (both with the
// memtables flushed but still read or kept for reuse).
type MemoryStats struct {
	Bound         int64
	CacheBytes    int64
	CacheCapacity int64
	MemTableBytes int64
	MemTables     int64
}

// A MemoryStatser reports its MemoryStats; the Pebble cell store is one.
type MemoryStatser interface {
	MemoryStats() MemoryStats
}
