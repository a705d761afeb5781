// Package postgres is the production storage of a domicile cell: its rows
// in one schema of a PostgreSQL database (through pgx), its blobs in a
// local directory.
//
// Each cell owns a schema (created if absent), so that one database
// server in a jurisdiction can hold the cells of that jurisdiction apart.
// The SQL keeps to what CockroachDB also accepts: no PL/pgSQL, no SERIAL
// (log indexes are assigned by the store), only BYTEA, BIGINT and TEXT
// columns and INSERT ... ON CONFLICT. Advisory locks serialise the
// migrations and the transfer decisions of an entity ([Ledger.LockEntity]),
// on PostgreSQL; CockroachDB takes a row lock instead.
//
// # Migrations
//
// Each kind of store (cell, keys, control, and shared: the
// deployment-wide stores of [Shared]) has its tables as versioned
// SQL files embedded in the binary (migrations/<set>/NNNN_name.sql).
// Opening a store applies the ones its schema lacks, in one transaction
// under pg_advisory_xact_lock, and records them in schema_migrations.
//
// # Group commit
//
// Writes go through one writer goroutine per Store. It takes the batches
// waiting for it (at most [MaxBatchesPerCommit]) and commits them in one
// transaction, so that they share one durable commit (synchronous_commit
// is on). Each batch runs inside its own savepoint: a batch whose
// expectation fails is rolled back alone and the others commit. The
// statements of a group are pipelined: a group costs one round trip to the
// server plus the COMMIT, and one more round trip per failed batch.
//
// The writer keeps the log's size and its most recent Merkle hashes
// (golang.org/x/mod/sumdb/tlog's stored-hash layout) in memory. One
// process must write to a cell's schema at a time; a second one would see
// its appends fail on the events table's primary key (nothing is
// corrupted), after which it reloads its state from the database.
//
// Reads use a connection pool and never wait for the writer.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"domicile"
	"domicile/internal/blobdir"
	"domicile/internal/groupcommit"
	"domicile/internal/hashtile"
)

// MaxBatchesPerCommit bounds how many batches share one transaction. Each
// batch is a subtransaction; PostgreSQL keeps up to 64 of a transaction's
// subtransaction ids in shared memory and beyond that makes every other
// session's snapshots consult pg_subtrans, which slows the whole server.
const MaxBatchesPerCommit = 64

// Store is a cell store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	schema string
	cfg    *pgx.ConnConfig // the writer's connection settings
	pool   *pgxpool.Pool   // reads and single-statement writes
	blobs  *blobdir.Dir

	// gc is the writer: it groups batches into transactions
	// (runGroup), and runs a group again after a serialization failure.
	gc *groupcommit.Engine
	// mu guards closed.
	mu     sync.Mutex
	closed bool
	// ctx ends when the store closes, after the writer's last group.
	ctx    context.Context
	cancel context.CancelFunc

	// Only the writer goroutine touches conn, size and stale, and tail's
	// writing methods (its Read is for everyone).
	conn  *pgx.Conn
	size  int64
	stale bool // size and tail must be reloaded before the next group
	// tail holds the log's partial Merkle tiles and the complete ones a
	// group has not committed yet (package hashtile).
	tail *hashtile.Tail
	// committed is the log size of the last commit, for readers.
	committed atomic.Int64
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Defaults of [Config], for a small server: a few cores, a few cells per
// database server.
const (
	// DefaultMaxConns is each store's pool size: reads and
	// single-statement writes. The cell store's writer has one more
	// session of its own.
	DefaultMaxConns = 8
	// DefaultStatementTimeout bounds every statement (statement_timeout).
	DefaultStatementTimeout = 10 * time.Second
	// DefaultConnectTimeout bounds connecting to the server: a store
	// whose server is unreachable fails its requests after it, rather
	// than hang them.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultRetries is how often a transaction that failed with a
	// serialization failure (40001) or a deadlock (40P01) is run again.
	DefaultRetries = 3
)

// Config says where a store lives and how it uses its server. Zero
// fields take the defaults above.
type Config struct {
	// DSN is the connection string (a URL or key=value pairs); its
	// password, if any, is never shown in an error.
	DSN string
	// Schema is the store's schema, created with its tables if absent:
	// lower-case letters, digits and _, at most 63 bytes.
	Schema string
	// MaxConns is the pool's size ([DefaultMaxConns]).
	MaxConns int32
	// StatementTimeout bounds each statement ([DefaultStatementTimeout]).
	StatementTimeout time.Duration
	// ConnectTimeout bounds each connection attempt
	// ([DefaultConnectTimeout]).
	ConnectTimeout time.Duration
	// Retries is how often a transaction that failed with a
	// serialization failure or a deadlock is run again
	// ([DefaultRetries]); negative: never.
	Retries int
}

// withDefaults returns c with its zero fields set to the defaults, or an
// error naming a field that is out of range.
func (c Config) withDefaults() (Config, error) {
	if !schemaName.MatchString(c.Schema) {
		return c, fmt.Errorf("postgres: schema name %q: want lower-case letters, digits and _, at most 63", c.Schema)
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	switch {
	case c.MaxConns < 0:
		return c, fmt.Errorf("postgres: MaxConns %d: want at least 1", c.MaxConns)
	case c.StatementTimeout < time.Millisecond:
		return c, fmt.Errorf("postgres: StatementTimeout %v: want at least 1ms", c.StatementTimeout)
	case c.ConnectTimeout < time.Millisecond:
		return c, fmt.Errorf("postgres: ConnectTimeout %v: want at least 1ms", c.ConnectTimeout)
	}
	return c, nil
}

// connect parses cfg.DSN, brings the schema's tables of the given
// migration set up to date (creating the schema if absent), and returns
// the connection settings of the schema and a pool on them.
func connect(ctx context.Context, cfg Config, set string) (*pgx.ConnConfig, *pgxpool.Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: %v", err) // %v: the error may quote the DSN's password
	}
	pcfg.MaxConns = cfg.MaxConns
	if pcfg.ConnConfig.ConnectTimeout == 0 || pcfg.ConnConfig.ConnectTimeout > cfg.ConnectTimeout {
		pcfg.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	rp := pcfg.ConnConfig.RuntimeParams
	rp["search_path"] = cfg.Schema
	rp["application_name"] = "domicile/" + cfg.Schema
	rp["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	// Check the server and migrate on one connection first.
	c, err := pgx.ConnectConfig(ctx, pcfg.ConnConfig.Copy())
	if err != nil {
		return nil, nil, wrap("connect", err)
	}
	defer c.Close(context.Background())
	var version string
	if err := c.QueryRow(ctx, `SELECT version()`).Scan(&version); err != nil {
		return nil, nil, wrap("connect", err)
	}
	crdb := strings.Contains(version, "CockroachDB")
	// CockroachDB commits through Raft, durably, and has no
	// synchronous_commit to turn on; PostgreSQL's may be off in the
	// server's or role's settings, which would lose acknowledged writes.
	if !crdb {
		rp["synchronous_commit"] = "on"
	}
	if _, err := migrate(ctx, c, cfg.Schema, set, crdb, cfg.Retries, -1); err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, wrap("pool", err)
	}
	return pcfg.ConnConfig, pool, nil
}

// Open opens the cell store in schema (created with its tables if absent)
// of the database at dsn, with blobs in blobDir (created if absent), with
// the default settings.
func Open(ctx context.Context, dsn, schema, blobDir string) (*Store, error) {
	return OpenConfig(ctx, Config{DSN: dsn, Schema: schema}, blobDir)
}

// OpenConfig opens the cell store cfg says, with blobs in blobDir
// (created if absent).
func OpenConfig(ctx context.Context, cfg Config, blobDir string) (*Store, error) {
	return open(ctx, cfg, blobDir)
}

func open(ctx context.Context, c Config, blobDir string) (*Store, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, pool, err := connect(ctx, c, "cell")
	if err != nil {
		return nil, err
	}
	schema := c.Schema
	blobs, err := blobdir.Open(blobDir)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{schema: schema, cfg: cfg, pool: pool, blobs: blobs, tail: hashtile.New()}
	if err := s.resync(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.gcBlobs(ctx); err != nil {
		s.conn.Close(ctx)
		pool.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.gc = groupcommit.New(groupcommit.Config{MaxGroup: MaxBatchesPerCommit, Run: s.runGroup,
		Retryable: retryable, Retries: c.Retries, Closed: errClosed})
	return s, nil
}

// resync (re)connects the writer if needed and reloads the log's size
// and partial tiles: after a failed group the writer cannot know what the
// database holds.
func (s *Store) resync(ctx context.Context) error {
	if s.conn == nil || s.conn.IsClosed() {
		if s.conn != nil {
			s.conn.Close(ctx)
		}
		cfg := s.cfg.Copy()
		cfg.RuntimeParams["application_name"] = WriterApplicationName(s.schema)
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return wrap("connect writer", err)
		}
		s.conn = c
	}
	if err := s.conn.QueryRow(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM events`).Scan(&s.size); err != nil {
		return wrap("log size", err)
	}
	t, err := s.restoreTail(ctx)
	if err != nil {
		return wrap("log hashes", err)
	}
	s.tail.Reset(t)
	s.committed.Store(s.size)
	s.stale = false
	return nil
}

// CommitStats returns the writer's cumulative group-commit counters.
func (s *Store) CommitStats() domicile.CommitStats { return s.gc.Stats() }

// Close stops the writer after the batches already queued, and closes the
// connections. Commits that start after Close fail.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.gc.Close()
	s.cancel()
	var err error
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.conn.Close(ctx)
		cancel()
	}
	s.pool.Close()
	return err
}

// WriterApplicationName is the application_name of the writer's session
// of the store in schema, as pg_stat_activity shows it; the pool's
// sessions are "domicile/" + schema.
func WriterApplicationName(schema string) string { return "domicile-writer/" + schema }

// Schema returns the store's schema name.
func (s *Store) Schema() string { return s.schema }

// Blobs returns the store's blob directory.
func (s *Store) Blobs() domicile.BlobStore { return s.blobs }

var errClosed = errors.New("postgres: store closed")

// Commit queues b for the writer and waits until it is durable. Once
// queued, a batch is committed or failed by the writer, and Commit waits
// for the outcome even if ctx ends, so that a caller never reports
// failure for a write that became durable.
func (s *Store) Commit(ctx context.Context, b *domicile.Batch) error {
	return s.gc.Commit(ctx, b)
}

// runGroup commits a group of batches in one transaction, on the writer
// (groupcommit.RunFunc), reconnecting and reloading the log's size first
// if the last group failed as a whole.
func (s *Store) runGroup(group []*domicile.Batch) ([]error, time.Duration, error) {
	if s.stale {
		if err := s.resync(s.ctx); err != nil {
			return nil, 0, err
		}
	}
	errs, commit, err := s.runOnce(s.ctx, group)
	if err != nil {
		s.stale = true
	}
	return errs, commit, err
}

// retryable reports whether err is a serialization failure or deadlock,
// after which the whole transaction may be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// A stmt is one statement of a pipelined group: which batch it belongs to
// and how to read its result.
type stmt struct {
	job  int
	kind stmtKind
	op   domicile.Op
}

type stmtKind int

const (
	stmtPlain     stmtKind = iota // any result
	stmtOneRow                    // must change exactly one row, else ErrVersionMismatch
	stmtDelRecord                 // the delete-record query
	stmtDelObject                 // the delete-object query
)

// runOnce runs the group in one transaction. It returns each batch's
// error, or an error for the whole group (nothing committed, or the
// outcome unknown).
func (s *Store) runOnce(ctx context.Context, group []*domicile.Batch) (errs []error, commit time.Duration, err error) {
	errs, err = s.runTx(ctx, group, &commit)
	return errs, commit, err
}

// runTx is runOnce; it adds the time spent in the COMMIT to *commit.
func (s *Store) runTx(ctx context.Context, group []*domicile.Batch, commit *time.Duration) ([]error, error) {
	errs := make([]error, len(group))
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return nil, wrap("begin", err)
	}
	defer tx.Rollback(context.Background()) // no-op after Commit
	for start := 0; start < len(group); {
		// Queue every remaining batch, each in a savepoint nested in the
		// previous one, without releasing them: if batch i fails, rolling
		// back to its savepoint undoes it and all later ones, which are
		// then queued again (their log indexes change).
		var pb pgx.Batch
		var stmts []stmt
		sizeAt := make(map[int]int64)
		for i := start; i < len(group); i++ {
			if err := validate(group[i]); err != nil {
				errs[i] = err
				continue
			}
			sizeAt[i] = s.size
			pb.Queue(fmt.Sprintf("SAVEPOINT s%d", i))
			stmts = append(stmts, stmt{job: i})
			s.queueBatch(&pb, &stmts, i, group[i])
		}
		if len(stmts) == 0 {
			break
		}
		failed, ferr, err := s.send(ctx, tx, &pb, stmts)
		if err != nil {
			return nil, err
		}
		if failed < 0 {
			break
		}
		errs[failed] = ferr
		sp := fmt.Sprintf("s%d", failed)
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+sp); err != nil {
			return nil, wrap("rollback to savepoint", err)
		}
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT "+sp); err != nil {
			return nil, wrap("release savepoint", err)
		}
		s.size = sizeAt[failed]
		if err := s.tail.Truncate(s.size); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		start = failed + 1
	}
	// The tiles the group's kept events complete, in its transaction.
	if tiles := s.tail.Pending(); len(tiles) > 0 {
		var pb pgx.Batch
		insertTiles(&pb, tiles)
		if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
			return nil, wrap("write tiles", err)
		}
	}
	t := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return nil, wrap("commit", err)
	}
	*commit += time.Since(t)
	// Written in the transaction: nothing left to write.
	if err := s.tail.Flush(func(hashtile.Tile) error { return nil }); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.committed.Store(s.size)
	return errs, nil
}

// send runs a pipeline and reads its results in order, stopping at the
// first batch that fails: it returns that batch's index and error, or -1.
// An error that is not one batch's (the connection, a serialization
// failure) is returned as err.
func (s *Store) send(ctx context.Context, tx pgx.Tx, pb *pgx.Batch, stmts []stmt) (failed int, ferr, err error) {
	br := tx.SendBatch(ctx, pb)
	failed = -1
	for _, st := range stmts {
		var e error
		switch st.kind {
		case stmtPlain:
			_, e = br.Exec()
		case stmtOneRow:
			var tag pgconn.CommandTag
			if tag, e = br.Exec(); e == nil && tag.RowsAffected() != 1 {
				ferr = domicile.ErrVersionMismatch
			}
		case stmtDelRecord, stmtDelObject:
			var cur, next *int64
			var dead *bool
			if e = br.QueryRow().Scan(&cur, &dead, &next); e == nil {
				switch {
				case next != nil:
					if op, ok := st.op.(*domicile.DeleteRecord); ok {
						op.Version = *next
					}
				case cur == nil || *dead:
					ferr = domicile.ErrNotFound
				default:
					ferr = domicile.ErrVersionMismatch
				}
			}
		}
		if e != nil {
			if retryable(e) || !isStatementError(e) {
				br.Close()
				return 0, nil, wrap("commit", e)
			}
			ferr = wrap("commit", e)
		}
		if ferr != nil {
			failed = st.job
			break
		}
	}
	if cerr := br.Close(); cerr != nil && failed < 0 {
		return 0, nil, wrap("commit", cerr)
	}
	return failed, ferr, nil
}

// isStatementError reports whether err is the server refusing one
// statement (a constraint, a malformed value), after which rolling back to
// a savepoint recovers the transaction.
func isStatementError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && !strings.HasPrefix(pe.Code, "08") && !strings.HasPrefix(pe.Code, "57") && !strings.HasPrefix(pe.Code, "53")
}

// validate checks what a batch asks before any SQL: expectations that no
// stored version can meet.
func validate(b *domicile.Batch) error {
	for _, op := range b.Ops {
		var expect, version int64
		switch op := op.(type) {
		case *domicile.PutRecord:
			expect, version = op.Expect, op.Record.Version
		case *domicile.PutObject:
			expect, version = op.Expect, op.Object.Version
		case *domicile.PutRequest:
			expect, version = op.Expect, op.Request.Version
		case *domicile.ImportRecord:
			expect, version = domicile.AnyVersion, op.Record.Version
		case *domicile.ImportObject:
			expect, version = domicile.AnyVersion, op.Object.Version
		case *domicile.PutSubject, *domicile.DeleteRecord, *domicile.DeleteObject, *domicile.EraseSubject:
			continue
		default:
			return fmt.Errorf("postgres: unknown operation %T", op)
		}
		if version < 1 || (expect != domicile.AnyVersion && version != expect+1) {
			return domicile.ErrVersionMismatch
		}
	}
	return nil
}

func fieldsOrEmpty(f []string) []string {
	if f == nil {
		return []string{}
	}
	return f
}

// queueBatch queues batch i's statements: its operations and its events,
// whose Merkle hashes it adds to the tail.
func (s *Store) queueBatch(pb *pgx.Batch, stmts *[]stmt, i int, b *domicile.Batch) {
	q := func(kind stmtKind, op domicile.Op, sql string, args ...any) {
		pb.Queue(sql, args...)
		*stmts = append(*stmts, stmt{job: i, kind: kind, op: op})
	}
	for _, op := range b.Ops {
		switch op := op.(type) {
		case *domicile.PutSubject:
			sub := op.Subject
			q(stmtOneRow, op, `INSERT INTO subjects(ref, jurisdiction, created, key_gen) VALUES($1,$2,$3,$4) ON CONFLICT (ref) DO NOTHING`,
				sub.Ref[:], string(sub.Jurisdiction), sub.Created.UnixNano(), int64(sub.KeyGen))
		case *domicile.PutRecord:
			r := op.Record
			if r.Version == 1 {
				q(stmtOneRow, op, `INSERT INTO records(ref, kind, id, version, body, fields, updated) VALUES($1,$2,$3,1,$4,$5,$6) ON CONFLICT (ref, kind, id) DO NOTHING`,
					r.Ref[:], []byte(r.Kind), []byte(r.ID), r.Body, fieldsOrEmpty(r.Fields), r.Updated.UnixNano())
			} else {
				q(stmtOneRow, op, `UPDATE records SET version=$4, body=$5, fields=$6, updated=$7 WHERE ref=$1 AND kind=$2 AND id=$3 AND version=$4-1`,
					r.Ref[:], []byte(r.Kind), []byte(r.ID), r.Version, r.Body, fieldsOrEmpty(r.Fields), r.Updated.UnixNano())
			}
		case *domicile.DeleteRecord:
			// One row always: the version before (NULL if no row), whether
			// it was a tombstone, and the version after (NULL if nothing
			// was deleted). All parts of the statement see the state
			// before it.
			q(stmtDelRecord, op, `WITH cur AS (SELECT version, body IS NULL AS dead FROM records WHERE ref=$1 AND kind=$2 AND id=$3),
				upd AS (UPDATE records SET version=version+1, body=NULL, fields='{}', updated=$5::BIGINT
					WHERE ref=$1 AND kind=$2 AND id=$3 AND body IS NOT NULL AND ($4::BIGINT = -1 OR version=$4::BIGINT) RETURNING version)
				SELECT (SELECT version FROM cur), (SELECT dead FROM cur), (SELECT version FROM upd)`,
				op.Ref[:], []byte(op.Kind), []byte(op.ID), op.Expect, op.Updated.UnixNano())
		case *domicile.PutObject:
			o := op.Object
			if o.Version == 1 {
				q(stmtOneRow, op, `INSERT INTO objects(ref, name, version, content_type, size, sha256, blob, key_gen, updated) VALUES($1,$2,1,$3,$4,$5,$6,$7,$8) ON CONFLICT (ref, name) DO NOTHING`,
					o.Ref[:], []byte(o.Name), o.ContentType, o.Size, o.SHA256, o.Blob, int64(o.KeyGen), o.Updated.UnixNano())
			} else {
				q(stmtOneRow, op, `UPDATE objects SET version=$3, content_type=$4, size=$5, sha256=$6, blob=$7, key_gen=$8, updated=$9 WHERE ref=$1 AND name=$2 AND version=$3-1`,
					o.Ref[:], []byte(o.Name), o.Version, o.ContentType, o.Size, o.SHA256, o.Blob, int64(o.KeyGen), o.Updated.UnixNano())
			}
		case *domicile.DeleteObject:
			q(stmtDelObject, op, `WITH cur AS (SELECT version, blob IS NULL AS dead FROM objects WHERE ref=$1 AND name=$2),
				upd AS (UPDATE objects SET version=version+1, blob=NULL, size=0, sha256=''
					WHERE ref=$1 AND name=$2 AND blob IS NOT NULL AND ($3::BIGINT = -1 OR version=$3::BIGINT) RETURNING version)
				SELECT (SELECT version FROM cur), (SELECT dead FROM cur), (SELECT version FROM upd)`,
				op.Ref[:], []byte(op.Name), op.Expect)
		case *domicile.PutRequest:
			r := op.Request
			if r.Version == 1 {
				q(stmtOneRow, op, `INSERT INTO requests(ref, id, kind, state, received, deadline, version, body, updated) VALUES($1,$2,$3,$4,$5,$6,1,$7,$8) ON CONFLICT (ref, id) DO NOTHING`,
					r.Ref[:], r.ID, r.Kind, r.State, r.Received.UnixNano(), r.Deadline.UnixNano(), r.Body, r.Updated.UnixNano())
			} else {
				q(stmtOneRow, op, `UPDATE requests SET kind=$3, state=$4, received=$5, deadline=$6, version=$7, body=$8, updated=$9 WHERE ref=$1 AND id=$2 AND version=$7-1`,
					r.Ref[:], r.ID, r.Kind, r.State, r.Received.UnixNano(), r.Deadline.UnixNano(), r.Version, r.Body, r.Updated.UnixNano())
			}
		case *domicile.ImportRecord:
			// At the version the source had; refused if the record exists.
			r := op.Record
			q(stmtOneRow, op, `INSERT INTO records(ref, kind, id, version, body, fields, updated) VALUES($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (ref, kind, id) DO NOTHING`,
				r.Ref[:], []byte(r.Kind), []byte(r.ID), r.Version, r.Body, fieldsOrEmpty(r.Fields), r.Updated.UnixNano())
		case *domicile.ImportObject:
			o := op.Object
			q(stmtOneRow, op, `INSERT INTO objects(ref, name, version, content_type, size, sha256, blob, key_gen, updated) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (ref, name) DO NOTHING`,
				o.Ref[:], []byte(o.Name), o.Version, o.ContentType, o.Size, o.SHA256, o.Blob, int64(o.KeyGen), o.Updated.UnixNano())
		case *domicile.EraseSubject:
			if rc := op.Receipt; rc != nil {
				// The erase event is the batch's first: its index is the
				// log's size before the batch's events.
				rc.LogIndex = s.size
				q(stmtPlain, op, `INSERT INTO receipts(id, time, log_index, body) VALUES($1,$2,$3,$4)`, rc.ID, rc.Time.UnixNano(), rc.LogIndex, rc.Body)
			}
			for _, sql := range []string{
				`DELETE FROM requests WHERE ref=$1`,
				`DELETE FROM records WHERE ref=$1`,
				`DELETE FROM objects WHERE ref=$1`,
				`DELETE FROM subjects WHERE ref=$1`,
				`UPDATE events SET salt=NULL, committed=NULL, ref=NULL WHERE ref=$1`,
			} {
				q(stmtPlain, op, sql, op.Ref[:])
			}
		}
	}
	if len(b.Events) == 0 {
		return
	}
	n := len(b.Events)
	idx, times := make([]int64, n), make([]int64, n)
	refs, leaves, committed, salts := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
	for k, e := range b.Events {
		i := s.size
		idx[k], times[k], leaves[k], committed[k], salts[k] = i, e.Time.UnixNano(), e.Leaf, e.Committed, e.Salt
		if !e.Ref.IsZero() {
			refs[k] = e.Ref[:]
		}
		s.tail.Append(tlog.RecordHash(e.Leaf))
		e.Index = i
		s.size = i + 1
	}
	q(stmtPlain, nil, `INSERT INTO events(idx, ref, time, leaf, committed, salt)
		SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BIGINT[], $4::BYTEA[], $5::BYTEA[], $6::BYTEA[])`,
		idx, refs, times, leaves, committed, salts)
}

var _ domicile.CellStore = (*Store)(nil)

func nsTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
