// Package sqlite is the embedded storage of a domicile cell: one SQLite
// database file per cell (WAL, synchronous=FULL) and a directory of blobs
// for object contents.
//
// Writes go through one writer goroutine that groups the batches waiting
// for it into one transaction, so that many requests share one fsync (group
// commit). Each batch runs inside its own SAVEPOINT: a batch whose
// expectation fails is rolled back alone and the others commit. Reads use a
// separate pool of read-only connections and never wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"domicile"
	"domicile/internal/blobdir"
	"domicile/internal/groupcommit"
	"domicile/internal/hashtile"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// MaxBatchesPerCommit bounds how many batches share one transaction.
const MaxBatchesPerCommit = 512

// Store is a cell store on SQLite. It is safe for concurrent use.
type Store struct {
	path  string
	wdb   *sql.DB // one connection: the writer
	cdb   *sql.DB // one connection: checkpoints and rare small writes
	rdb   *sql.DB // read-only pool
	blobs *blobdir.Dir

	// gc is the writer: it groups batches into transactions (run).
	gc *groupcommit.Engine
	wg sync.WaitGroup // the checkpointer
	// closeMu guards closed.
	closeMu sync.RWMutex
	closed  bool

	// Only the writer goroutine touches size and st; tail's writing
	// methods too (its Read is for everyone).
	size int64
	tail *hashtile.Tail
	// tiles holds the log's complete Merkle tiles, derived from the
	// events and kept beside the database (package hashtile).
	tiles *hashtile.Files
	// committed is the log size of the last commit, for readers.
	committed atomic.Int64
	st        writeStmts
	rq        readStmts

	ckptStop chan struct{}
}

// writeStmts are the writer's statements, prepared once on its connection:
// parsing SQL on every statement was a seventh of the CPU of a write.
//
// A put of version v is one statement that succeeds only if the current
// version is v-1: an insert that does nothing on conflict for v = 1, an
// update guarded by the version above (as in the PostgreSQL store).
type writeStmts struct {
	insertRecord, updateRecord, subjectInsert, insertObject, updateObject *sql.Stmt
	insertEvent                                                           *sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&w.insertRecord, `INSERT INTO records(ref, kind, id, version, body, fields, updated) VALUES(?,?,?,1,?,?,?) ON CONFLICT DO NOTHING`},
		{&w.updateRecord, `UPDATE records SET version=?4, body=?5, fields=?6, updated=?7 WHERE ref=?1 AND kind=?2 AND id=?3 AND version=?4-1`},
		{&w.subjectInsert, `INSERT INTO subjects(ref, jurisdiction, created, key_gen) VALUES(?,?,?,?) ON CONFLICT DO NOTHING`},
		{&w.insertObject, `INSERT INTO objects(ref, name, version, content_type, size, sha256, blob, key_gen, updated) VALUES(?,?,1,?,?,?,?,?,?) ON CONFLICT DO NOTHING`},
		{&w.updateObject, `UPDATE objects SET version=?3, content_type=?4, size=?5, sha256=?6, blob=?7, key_gen=?8, updated=?9 WHERE ref=?1 AND name=?2 AND version=?3-1`},
		{&w.insertEvent, `INSERT INTO events(idx, ref, time, leaf, committed, salt) VALUES(?,?,?,?,?,?)`},
	} {
		st, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.st = st
	}
	return nil
}

const schema = `
CREATE TABLE IF NOT EXISTS subjects(
  ref BLOB PRIMARY KEY, jurisdiction TEXT NOT NULL, created INTEGER NOT NULL,
  key_gen INTEGER NOT NULL) WITHOUT ROWID;
-- A rowid table, not WITHOUT ROWID: a sealed 1 KiB body then fits in its
-- b-tree page, where an index b-tree would spill it to overflow pages that
-- every lookup reads from disk.
CREATE TABLE IF NOT EXISTS records(
  ref BLOB NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  body BLOB, fields TEXT NOT NULL, updated INTEGER NOT NULL,
  UNIQUE(ref, kind, id));
CREATE TABLE IF NOT EXISTS objects(
  ref BLOB NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, content_type TEXT NOT NULL,
  size INTEGER NOT NULL, sha256 TEXT NOT NULL, blob TEXT, key_gen INTEGER NOT NULL, updated INTEGER NOT NULL,
  PRIMARY KEY(ref, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  idx INTEGER PRIMARY KEY, ref BLOB, time INTEGER NOT NULL,
  leaf BLOB NOT NULL, committed BLOB, salt BLOB);
CREATE INDEX IF NOT EXISTS events_ref ON events(ref, idx) WHERE ref IS NOT NULL;
CREATE TABLE IF NOT EXISTS checkpoints(size INTEGER PRIMARY KEY, note BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
-- Individuals' rights requests: sealed bodies, with the kind, state and
-- dates in the clear (they name no one).
CREATE TABLE IF NOT EXISTS requests(
  ref BLOB NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
  received INTEGER NOT NULL, deadline INTEGER NOT NULL, version INTEGER NOT NULL,
  body BLOB NOT NULL, updated INTEGER NOT NULL,
  PRIMARY KEY(ref, id)) WITHOUT ROWID;
-- Erasure receipts, kept after their subject is gone; keyed by a random id.
CREATE TABLE IF NOT EXISTS receipts(id TEXT PRIMARY KEY, time INTEGER NOT NULL, log_index INTEGER NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
`

// CellFile is the name of the cell store's database file in its
// directory. Its presence says that the directory holds a SQLite cell
// store, which is how a cell whose deployment file names no store kind
// keeps the SQLite store an earlier build made.
const CellFile = "cell.db"

// Open opens (creating if needed) the cell store in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	path := filepath.Join(dir, CellFile)
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)", "secure_delete(ON)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	// The writer does not checkpoint the WAL itself (that would stall
	// every request waiting on a commit); a background loop does.
	wdb, err := sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	if _, err := wdb.ExecContext(ctx, schema); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: schema: %w", err)
	}
	cdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	cdb.SetMaxOpenConns(1)
	// No mmap on the readers: every write changes the file, and SQLite then
	// unmaps and remaps it at the next read transaction, which cost more
	// than the reads it saved.
	rdb, err := sql.Open("sqlite", dsn+"&_pragma=query_only(ON)&_pragma=cache_size(-16384)")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)
	blobs, err := blobdir.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	s := &Store{path: path, wdb: wdb, cdb: cdb, rdb: rdb, blobs: blobs, ckptStop: make(chan struct{})}
	if err := s.st.prepare(ctx, wdb); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.rq.prepare(ctx, rdb); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := wdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM events`).Scan(&s.size); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlite: log size: %w", err)
	}
	if s.tail, err = s.loadTail(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.gcBlobs(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.gc = groupcommit.New(groupcommit.Config{MaxGroup: MaxBatchesPerCommit, Run: s.run, Closed: errClosed})
	s.wg.Add(1)
	go s.checkpointer()
	return s, nil
}

// checkpointer copies the WAL into the database in the background. A
// PASSIVE checkpoint never blocks the writer or readers; a RESTART one,
// when the WAL has grown large, lets it be reused from the start.
func (s *Store) checkpointer() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-t.C:
		}
		// Tiles are derived from committed events: syncing them here, not
		// in each commit, only bounds what a crash makes Open recompute.
		s.tiles.Sync()
		var busy, logFrames, done int
		if err := s.cdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done); err != nil {
			continue
		}
		if logFrames > 20000 && done == logFrames {
			s.cdb.Exec(`PRAGMA wal_checkpoint(RESTART)`)
		}
	}
}

func (s *Store) closeDBs() {
	if s.tiles != nil {
		s.tiles.Close()
	}
	s.wdb.Close()
	s.cdb.Close()
	s.rdb.Close()
}

// Close stops the writer after the batches already queued and closes the
// database. Commits after Close fail at once.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ckptStop)
	s.closeMu.Unlock()
	s.gc.Close()
	s.wg.Wait()
	s.cdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return errors.Join(s.tiles.Close(), s.wdb.Close(), s.cdb.Close(), s.rdb.Close())
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Blobs returns the store's blob directory.
func (s *Store) Blobs() domicile.BlobStore { return s.blobs }

var errClosed = errors.New("sqlite: store closed")

// Commit queues b for the writer and waits until it is durable.
func (s *Store) Commit(ctx context.Context, b *domicile.Batch) error {
	return s.gc.Commit(ctx, b)
}

// CommitStats returns the writer's cumulative group-commit counters.
func (s *Store) CommitStats() domicile.CommitStats { return s.gc.Stats() }

// run commits a group of batches in one transaction, on the writer
// (groupcommit.RunFunc).
func (s *Store) run(group []*domicile.Batch) ([]error, time.Duration, error) {
	ctx := context.Background()
	errs := make([]error, len(group))
	size0 := s.size
	fail := func(err error) ([]error, time.Duration, error) {
		s.size = size0
		if terr := s.tail.Truncate(size0); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, 0, err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("sqlite: begin: %w", err))
	}
	for i, b := range group {
		// A batch of at most one operation needs no savepoint: each
		// operation checks its expectation before it writes anything, and
		// an expectation failing is the only error that spares the group.
		sp := len(b.Ops) > 1
		if sp {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT b`); err != nil {
				tx.Rollback()
				return fail(fmt.Errorf("sqlite: savepoint: %w", err))
			}
		}
		before := s.size
		if err := s.apply(ctx, tx, b); err != nil {
			if !sp && !isExpectation(err) {
				tx.Rollback()
				return fail(err)
			}
			errs[i] = err
			if s.size != before {
				s.size = before
				if err := s.tail.Truncate(before); err != nil {
					tx.Rollback()
					return fail(err)
				}
			}
			if sp {
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO b`); err != nil {
					tx.Rollback()
					return fail(fmt.Errorf("sqlite: rollback to savepoint: %w", err))
				}
			}
		}
		if sp {
			if _, err := tx.ExecContext(ctx, `RELEASE b`); err != nil {
				tx.Rollback()
				return fail(fmt.Errorf("sqlite: release: %w", err))
			}
		}
	}
	t1 := time.Now()
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("sqlite: commit: %w", err))
	}
	commit := time.Since(t1)
	// The Merkle tiles the group's events completed, now that the events
	// are durable. A tile that cannot be written stays in memory, readable,
	// until a later group writes it; its events are committed either way.
	s.tail.Flush(s.tiles.Write)
	s.committed.Store(s.size)
	return errs, commit, nil
}

func isExpectation(err error) bool {
	return errors.Is(err, domicile.ErrVersionMismatch) || errors.Is(err, domicile.ErrNotFound)
}

func (s *Store) apply(ctx context.Context, tx *sql.Tx, b *domicile.Batch) error {
	for _, op := range b.Ops {
		if err := s.applyOp(ctx, tx, op); err != nil {
			return err
		}
	}
	for _, e := range b.Events {
		if err := s.appendEvent(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// checkNext checks a put of version v against what the caller expects
// the current version to be: v-1, unless it expects any.
func checkNext(expect, v int64) error {
	if v < 1 || (expect != domicile.AnyVersion && v != expect+1) {
		return domicile.ErrVersionMismatch
	}
	return nil
}

// oneRow turns a guarded put that changed no row into a version mismatch:
// the current version was not the one the put follows.
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return domicile.ErrVersionMismatch
	}
	return nil
}

func check(expect, cur int64) error {
	if expect != domicile.AnyVersion && expect != cur {
		return domicile.ErrVersionMismatch
	}
	return nil
}

func (s *Store) applyOp(ctx context.Context, tx *sql.Tx, op domicile.Op) error {
	st := func(p *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, p) }
	switch op := op.(type) {
	case *domicile.PutSubject:
		sub := op.Subject
		res, err := st(s.st.subjectInsert).ExecContext(ctx,
			sub.Ref[:], string(sub.Jurisdiction), sub.Created.UnixNano(), int(sub.KeyGen))
		if err != nil {
			return fmt.Errorf("sqlite: put subject: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domicile.ErrVersionMismatch
		}
	case *domicile.PutRecord:
		r := op.Record
		if err := checkNext(op.Expect, r.Version); err != nil {
			return err
		}
		var res sql.Result
		var err error
		if r.Version == 1 {
			res, err = st(s.st.insertRecord).ExecContext(ctx,
				r.Ref[:], r.Kind, r.ID, r.Body, strings.Join(r.Fields, ","), r.Updated.UnixNano())
		} else {
			res, err = st(s.st.updateRecord).ExecContext(ctx,
				r.Ref[:], r.Kind, r.ID, r.Version, r.Body, strings.Join(r.Fields, ","), r.Updated.UnixNano())
		}
		if err := oneRow(res, err); err != nil {
			return fmt.Errorf("sqlite: put record: %w", err)
		}
	case *domicile.DeleteRecord:
		var cur int64
		var body []byte
		err := tx.QueryRowContext(ctx, `SELECT version, body FROM records WHERE ref=? AND kind=? AND id=?`, op.Ref[:], op.Kind, op.ID).Scan(&cur, &body)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && body == nil) {
			return domicile.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlite: delete record: %w", err)
		}
		if err := check(op.Expect, cur); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE records SET version=?, body=NULL, fields='', updated=? WHERE ref=? AND kind=? AND id=?`,
			cur+1, op.Updated.UnixNano(), op.Ref[:], op.Kind, op.ID); err != nil {
			return fmt.Errorf("sqlite: delete record: %w", err)
		}
		op.Version = cur + 1
	case *domicile.PutObject:
		o := op.Object
		if err := checkNext(op.Expect, o.Version); err != nil {
			return err
		}
		var res sql.Result
		var err error
		if o.Version == 1 {
			res, err = st(s.st.insertObject).ExecContext(ctx,
				o.Ref[:], o.Name, o.ContentType, o.Size, o.SHA256, o.Blob, int(o.KeyGen), o.Updated.UnixNano())
		} else {
			res, err = st(s.st.updateObject).ExecContext(ctx,
				o.Ref[:], o.Name, o.Version, o.ContentType, o.Size, o.SHA256, o.Blob, int(o.KeyGen), o.Updated.UnixNano())
		}
		if err := oneRow(res, err); err != nil {
			return fmt.Errorf("sqlite: put object: %w", err)
		}
	case *domicile.DeleteObject:
		var cur int64
		var blob sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT version, blob FROM objects WHERE ref=? AND name=?`, op.Ref[:], op.Name).Scan(&cur, &blob)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !blob.Valid) {
			return domicile.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlite: delete object: %w", err)
		}
		if err := check(op.Expect, cur); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE objects SET version=version+1, blob=NULL, size=0, sha256='' WHERE ref=? AND name=?`, op.Ref[:], op.Name); err != nil {
			return fmt.Errorf("sqlite: delete object: %w", err)
		}
	case *domicile.PutRequest:
		r := op.Request
		if err := checkNext(op.Expect, r.Version); err != nil {
			return err
		}
		var res sql.Result
		var err error
		if r.Version == 1 {
			res, err = tx.ExecContext(ctx, `INSERT INTO requests(ref, id, kind, state, received, deadline, version, body, updated)
				VALUES(?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`,
				r.Ref[:], r.ID, r.Kind, r.State, r.Received.UnixNano(), r.Deadline.UnixNano(), r.Body, r.Updated.UnixNano())
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE requests SET kind=?, state=?, received=?, deadline=?, version=?, body=?, updated=?
				WHERE ref=? AND id=? AND version=?`,
				r.Kind, r.State, r.Received.UnixNano(), r.Deadline.UnixNano(), r.Version, r.Body, r.Updated.UnixNano(), r.Ref[:], r.ID, r.Version-1)
		}
		if err := oneRow(res, err); err != nil {
			return fmt.Errorf("sqlite: put request: %w", err)
		}
	case *domicile.ImportRecord:
		r := op.Record
		if r.Version < 1 {
			return domicile.ErrVersionMismatch
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO records(ref, kind, id, version, body, fields, updated) VALUES(?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`,
			r.Ref[:], r.Kind, r.ID, r.Version, r.Body, strings.Join(r.Fields, ","), r.Updated.UnixNano())
		if err := oneRow(res, err); err != nil {
			return fmt.Errorf("sqlite: import record: %w", err)
		}
	case *domicile.ImportObject:
		o := op.Object
		if o.Version < 1 {
			return domicile.ErrVersionMismatch
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO objects(ref, name, version, content_type, size, sha256, blob, key_gen, updated) VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`,
			o.Ref[:], o.Name, o.Version, o.ContentType, o.Size, o.SHA256, o.Blob, int(o.KeyGen), o.Updated.UnixNano())
		if err := oneRow(res, err); err != nil {
			return fmt.Errorf("sqlite: import object: %w", err)
		}
	case *domicile.EraseSubject:
		if rc := op.Receipt; rc != nil {
			// The erase event is the batch's first, appended after the
			// operations: its index is the log's size now.
			rc.LogIndex = s.size
			if _, err := tx.ExecContext(ctx, `INSERT INTO receipts(id, time, log_index, body) VALUES(?, ?, ?, ?)`, rc.ID, rc.Time.UnixNano(), rc.LogIndex, rc.Body); err != nil {
				return fmt.Errorf("sqlite: erase: receipt: %w", err)
			}
		}
		for _, q := range []string{
			`DELETE FROM requests WHERE ref=?`,
			`DELETE FROM records WHERE ref=?`,
			`UPDATE objects SET blob=NULL, size=0, sha256='', content_type='' WHERE ref=?`,
			`DELETE FROM objects WHERE ref=?`,
			`DELETE FROM subjects WHERE ref=?`,
			`UPDATE events SET salt=NULL, committed=NULL, ref=NULL WHERE ref=?`,
		} {
			if _, err := tx.ExecContext(ctx, q, op.Ref[:]); err != nil {
				return fmt.Errorf("sqlite: erase: %w", err)
			}
		}
	default:
		return fmt.Errorf("sqlite: unknown operation %T", op)
	}
	return nil
}

// appendEvent assigns e the next index and stores it; the Merkle hashes
// it adds go to the tail, and to the database with the tiles they
// complete.
func (s *Store) appendEvent(ctx context.Context, tx *sql.Tx, e *domicile.LogEntry) error {
	n := s.size
	var ref any
	if !e.Ref.IsZero() {
		ref = e.Ref[:]
	}
	if _, err := tx.StmtContext(ctx, s.st.insertEvent).ExecContext(ctx,
		n, ref, e.Time.UnixNano(), e.Leaf, e.Committed, e.Salt); err != nil {
		return fmt.Errorf("sqlite: append event: %w", err)
	}
	s.tail.Append(tlog.RecordHash(e.Leaf))
	e.Index = n
	s.size = n + 1
	return nil
}

var _ domicile.CellStore = (*Store)(nil)

func nsTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
