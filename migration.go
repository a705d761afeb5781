package domicile

import (
	"context"
	"time"
)

// States of a subject in a migration, in the order it goes through them.
// Each step is idempotent, and the state is durable in the control
// store, so a migration interrupted anywhere resumes where it stopped.
const (
	// MovePlanned: nothing moved yet; the subject lives in From.
	MovePlanned = "planned"
	// MoveCopied: To holds a copy whose digest equalled From's when it
	// was made; the subject still lives in From.
	MoveCopied = "copied"
	// MoveSwitched: the directory names To (in the same transaction as
	// this state); From keeps its copy until the retention ends.
	MoveSwitched = "switched"
	// MoveShredded: From's keys and copy are destroyed.
	MoveShredded = "shredded"
	// MoveGone: the subject was erased (or never found) before it moved.
	MoveGone = "gone"
)

// MigrationSubject is one subject's progress in a migration. It names
// the subject by its directory key and its registration's reference, as
// the directory does: no id, no data.
type MigrationSubject struct {
	Plan string
	Key  SubjectRef
	Ref  SubjectRef
	From string
	To   string
	// Jurisdiction is the subject's home jurisdiction.
	Jurisdiction Jurisdiction
	State        string
	// SourceDigest and TargetDigest are the digests each cell computed
	// of the subject's data (cell.SubjectDigest).
	SourceDigest, TargetDigest string
	// OutIndex and InIndex are the log indexes of the migrate-out event
	// in From and the migrate-in event in To (-1: none yet).
	OutIndex, InIndex int64
	Records, Objects  int
	Bytes             int64
	// Transfer is the transfer ledger's id when the move crossed a
	// border.
	Transfer string
	Switched time.Time
	Updated  time.Time
}

// Migration is a migration plan as the control store keeps it.
type Migration struct {
	ID string
	// Plan is the plan's JSON (package migrate's Plan).
	Plan     []byte
	State    string
	Created  time.Time
	Started  time.Time
	Finished time.Time
	// Options are the run's options (JSON) once it is started.
	Options []byte
	// Report is the signed report (JSON) once the migration is done.
	Report []byte
}

// HomeEntry is a directory entry: a subject's directory key and home.
type HomeEntry struct {
	Key  SubjectRef
	Home Home
}

// MigrationStore keeps migrations durably next to the directory whose
// entries they switch. Implementations are safe for concurrent use.
type MigrationStore interface {
	// PutMigration stores a new migration and its subjects; it fails
	// with ErrVersionMismatch if the id exists.
	PutMigration(ctx context.Context, m Migration, subjects []MigrationSubject) error
	// Migration returns one, or ErrNotFound; Migrations lists them all.
	Migration(ctx context.Context, id string) (*Migration, error)
	Migrations(ctx context.Context) ([]Migration, error)
	// UpdateMigration replaces a stored migration's state, times,
	// options and report.
	UpdateMigration(ctx context.Context, m Migration) error
	// MigrationSubjects lists a migration's subjects by key, after the
	// key given, at most limit.
	MigrationSubjects(ctx context.Context, plan string, after SubjectRef, limit int) ([]MigrationSubject, error)
	// PutMigrationSubject replaces a subject's progress.
	PutMigrationSubject(ctx context.Context, s MigrationSubject) error
	// SwitchHome moves the directory entry of s.Key from s.From to s.To
	// and stores s (as switched) in one transaction. It fails with
	// ErrVersionMismatch, changing nothing, if the entry is not
	// (s.From, s.Ref).
	SwitchHome(ctx context.Context, s MigrationSubject) error
	// HomesIn lists the directory entries whose home is cell, by key,
	// after the key given, at most limit.
	HomesIn(ctx context.Context, cell string, after SubjectRef, limit int) ([]HomeEntry, error)
}
