// Package pebblestore is a domicile cell store on Pebble, the LSM engine
// under CockroachDB (pure Go): records, objects' metadata, events,
// checkpoints, meta, rights requests and erasure receipts in one Pebble
// database per cell, the log's Merkle hashes as tiles beside it (package
// internal/hashtile, as the SQLite store keeps them) and object contents
// in a directory of blobs.
//
// # Commits
//
// There is no single writer. Each Commit builds its own Pebble batch on
// its caller's goroutine, and Pebble's commit pipeline writes the batches
// that arrive together to its write-ahead log with one write and one
// fsync (group commit). What must be serialised is serialised briefly:
//
//   - Version expectations. A commit locks the stripes (one of 256
//     mutexes, chosen by the first byte of the subject reference) of every
//     subject its operations and events name, in order, reads the current
//     versions and builds its operations, and holds the stripes until its
//     batch is applied. Two writes to one subject therefore check and
//     apply one after the other; writes to different subjects do not wait
//     for each other. An expectation that fails changes nothing.
//   - Log indexes. Under one short critical section a commit takes the
//     next indexes, appends its events to the batch and its leaves' hashes
//     to the Merkle tail, and hands the batch to Pebble
//     (DB.ApplyNoSyncWait). Pebble writes batches to its log in the order
//     they enter its pipeline, so log order is index order: a crash keeps
//     a prefix of the log, never a log with a gap. The fsync is waited for
//     outside the section (Batch.SyncWait).
//
// A batch is visible to readers once applied, before its fsync, as in
// Pebble generally. Nothing read from such a batch outlives a crash
// without it: a read's own event enters the log after what it read and is
// durable before the read returns, and LogSize (hence proofs and signed
// checkpoints) counts only events whose fsync completed.
package pebblestore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/tlog"

	"domicile"
	"domicile/internal/blobdir"
	"domicile/internal/hashtile"
)

// walMinSyncInterval is the least time between two syncs of the
// write-ahead log (Pebble's Options.WALMinSyncInterval).
const walMinSyncInterval = 500 * time.Microsecond

// Memory bounds of a store's Pebble database (Config.MemoryBytes): its
// block cache and memtables together. DefaultMemoryBytes is the bound of
// a Config that names none; a bound outside [MinMemoryBytes,
// MaxMemoryBytes] is refused.
const (
	DefaultMemoryBytes = 64 << 20
	MinMemoryBytes     = 16 << 20
	MaxMemoryBytes     = 64 << 30
)

// memTables is how many memtables Pebble may queue at once
// (Options.MemTableStopWritesThreshold): the one written to and one being
// flushed. Writes wait when both are full. Pebble keeps one more, flushed,
// to reuse its memory.
const memTables = 2

// Config is how a store is opened. The zero Config takes the defaults.
type Config struct {
	// MemoryBytes bounds the memory of the store's Pebble database: its
	// block cache and its memtables together (0: DefaultMemoryBytes),
	// between MinMemoryBytes and MaxMemoryBytes. It is the block cache's
	// size, and Pebble reserves every memtable's size in the cache (the
	// cache holds that much less); a memtable is a quarter of it, so the
	// memtables written to and being flushed leave at least half to the
	// cache. Pebble allocates both outside the Go heap. The store's other
	// caches (slots, the holdings snapshot) are Go memory and not counted.
	MemoryBytes int64
}

// Sizes returns the block cache's size (the bound) and one memtable's
// size under c, or an error if c's bound is out of range.
func (c Config) Sizes() (cache, memtable int64, err error) {
	m := c.MemoryBytes
	if m == 0 {
		m = DefaultMemoryBytes
	}
	if m < MinMemoryBytes || m > MaxMemoryBytes {
		return 0, 0, fmt.Errorf("pebblestore: memory bound %d bytes: want %d MiB to %d GiB (block cache and memtables together)", m, MinMemoryBytes>>20, MaxMemoryBytes>>30)
	}
	return m, m / 2 / memTables, nil
}

// stripes is the number of per-subject locks.
const stripes = 256

// Store is a cell store on Pebble. It is safe for concurrent use.
type Store struct {
	dir   string
	db    *pebble.DB
	blobs *blobdir.Dir
	tiles *hashtile.Files

	// cacheBytes and memtableBytes size the database's block cache and
	// memtables (Config.Sizes), for reopening it.
	cacheBytes, memtableBytes int64
	// trimLook and trimChurn are maybeTrim's: when it last looked, and
	// the database's block reads, flushes and compactions then.
	trimLook  time.Time
	trimChurn int64

	// closeMu is held for reading by every Commit from start to end and
	// for writing by Close, so that Close waits for commits in flight and
	// no commit starts after it.
	closeMu sync.RWMutex
	closed  bool

	locks [stripes]sync.Mutex

	// nameKey keys the names of subject references (Store.nameOf), macs
	// pools HMACs under it; slots caches the subjects' slots; rand draws
	// slots.
	nameKey []byte
	macs    sync.Pool
	slots   *slotCache
	rand    io.Reader

	// snapMu guards snap, the subjects sorted by reference for the pages
	// of a holdings listing, and snapAt, when it was taken.
	snapMu sync.Mutex
	snap   []refSlot
	snapAt time.Time

	// logMu is the log's critical section: it guards size and the tail's
	// appends, and orders batches into Pebble's pipeline.
	logMu sync.Mutex
	size  int64
	tail  *hashtile.Tail
	// committed is the log size whose every event is durable.
	committed atomic.Int64

	// flushMu serialises writing completed tiles to their files.
	flushMu sync.Mutex

	batches   atomic.Uint64
	critical  atomic.Int64 // ns spent in logMu's section
	syncStart time.Time

	stop chan struct{}
	wg   sync.WaitGroup
}

var errClosed = errors.New("pebblestore: store closed")

var syncWrite = pebble.Sync

// tableListener, when set (by tests), hears of Pebble's flushes and
// compactions: the tables they add, with their key bounds.
var tableListener *pebble.EventListener

// DirName is the name of the Pebble database's directory in a cell
// store's directory. Its presence says that the directory holds a Pebble
// cell store.
const DirName = "pebble"

// Open opens (creating if needed) the cell store in dir with the default
// Config. A store written by a build before slots (key layout 1) is
// upgraded in place first; see upgradeLayout.
func Open(ctx context.Context, dir string) (*Store, error) {
	return OpenConfig(ctx, dir, Config{})
}

// OpenConfig is Open with the given Config; an invalid Config is refused
// before anything is created.
func OpenConfig(ctx context.Context, dir string, cfg Config) (*Store, error) {
	cache, memtable, err := cfg.Sizes()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	db, err := openDB(dir, cache, memtable)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, db: db, cacheBytes: cache, memtableBytes: memtable, stop: make(chan struct{}), syncStart: time.Now(),
		slots: newSlotCache(SlotCacheEntries), rand: rand.Reader}
	s.dropArchive()
	fail := func(err error) (*Store, error) {
		if s.tiles != nil {
			s.tiles.Close()
		}
		if s.db != nil {
			s.db.Close()
		}
		return nil, err
	}
	if err := s.openLayout(ctx); err != nil {
		return fail(err)
	}
	if s.blobs, err = blobdir.Open(filepath.Join(dir, "blobs")); err != nil {
		return fail(err)
	}
	if s.size, err = s.lastEvent(); err != nil {
		return fail(err)
	}
	if s.tail, err = s.loadTail(); err != nil {
		return fail(err)
	}
	if err := s.gcBlobs(); err != nil {
		return fail(err)
	}
	s.committed.Store(s.size)
	s.wg.Add(1)
	go s.syncTiles()
	return s, nil
}

// openDB opens the Pebble database of the store in dir, with a block
// cache of cacheBytes, which the memtables of memtableBytes each share
// (Config.Sizes).
func openDB(dir string, cacheBytes, memtableBytes int64) (*pebble.DB, error) {
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		// Larger memtables than the default 4 MiB (under the default
		// Config): fewer flushes under a write load. Their memory is
		// counted in the cache's.
		MemTableSize:                uint64(memtableBytes),
		MemTableStopWritesThreshold: memTables,
		Cache:                       cache,
		Logger:                      quietLogger{},
		// Pebble keeps obsolete write-ahead logs to recycle them, with
		// their old records, unless its cleaner wants the files: the
		// archive cleaner moves every obsolete file to pebble/archive,
		// which the store empties (dropArchive). So no old log outlives
		// its memtable's flush by more than a tick. (The manifest is the
		// one file an erasure cannot clean at once: see purge.)
		Cleaner: pebble.ArchiveCleaner{},
		// Commits that arrive while a WAL sync is under way wait for the
		// next one; syncs closer together than this are delayed to it, so
		// that under load each fsync carries more commits (an fsync on a
		// virtual disk costs the server tens of microseconds of CPU). A
		// lone commit is not delayed: the interval counts from the last
		// sync. Measured in doc/performance.md ("Grouped WAL syncs").
		WALMinSyncInterval: func() time.Duration { return walMinSyncInterval },
	}
	for i := range opts.Levels {
		// Every write first looks up the key it writes (its version), most
		// often a key that does not exist yet: Bloom filters answer that
		// without reading data blocks. Bodies are sealed, so compression
		// would cost CPU for nothing.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	if tableListener != nil {
		opts.EventListener = tableListener
	}
	opts.EnsureDefaults()
	db, err := pebble.Open(filepath.Join(dir, DirName), opts)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open: %w", err)
	}
	return db, nil
}

// lastEvent returns the log size: one past the largest event index.
func (s *Store) lastEvent() (int64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tEvent}, UpperBound: []byte{tEvent + 1}})
	if err != nil {
		return 0, fmt.Errorf("pebblestore: log size: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, fmt.Errorf("pebblestore: log size: malformed event key")
	}
	return int64(beUint64(k[1:])) + 1, nil
}

// syncTiles makes the tiles written so far durable every 250 ms: tiles are
// derived from committed events, so syncing them bounds only what Open
// recomputes after a crash.
func (s *Store) syncTiles() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.flushMu.Lock()
			s.tiles.Sync()
			s.flushMu.Unlock()
			s.dropArchive()
			s.maybeTrim(now)
		}
	}
}

// Close waits for the commits in flight, then closes the database. Commits
// after Close fail at once.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.flushMu.Lock()
	ferr := s.tail.Flush(s.tiles.Write)
	s.flushMu.Unlock()
	err := errors.Join(ferr, s.tiles.Close(), s.db.Close())
	// Closing waits for Pebble's last obsolete files to reach the archive.
	s.dropArchive()
	return err
}

// dropArchive removes the files Pebble's cleaner moved to its archive:
// obsolete by definition (flushed logs, compacted tables, old manifests).
func (s *Store) dropArchive() {
	dir := filepath.Join(s.dir, DirName, "archive")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Blobs returns the store's blob directory.
func (s *Store) Blobs() domicile.BlobStore { return s.blobs }

// CommitStats reports the store's commits. Pebble has no single writer:
// Groups is the number of WAL fsyncs, Batches the batches committed, Busy
// the time spent in the one serial part of a commit (the log's critical
// section) and Commit the time spent in the fsyncs.
func (s *Store) CommitStats() domicile.CommitStats {
	st := domicile.CommitStats{Batches: s.batches.Load(), Busy: time.Duration(s.critical.Load())}
	if h := s.db.Metrics().LogWriter.FsyncLatency; h != nil {
		var m dto.Metric
		if h.Write(&m) == nil && m.Histogram != nil {
			st.Groups = m.Histogram.GetSampleCount()
			// Pebble records fsync latencies in nanoseconds.
			st.Commit = time.Duration(m.Histogram.GetSampleSum())
		}
	}
	return st
}

// MemoryStats reports the Pebble database's block cache and memtables,
// which Pebble allocates outside the Go heap, against the store's bound
// (Config.MemoryBytes). The cache's capacity is the bound: the memtables'
// bytes are reserved in it, so the blocks it holds and the memtables
// together stay within it.
func (s *Store) MemoryStats() domicile.MemoryStats {
	m := s.db.Metrics()
	return domicile.MemoryStats{
		Bound:         s.cacheBytes,
		CacheBytes:    m.BlockCache.Size,
		CacheCapacity: s.cacheBytes,
		MemTableBytes: int64(m.MemTable.Size + m.MemTable.ZombieSize),
		MemTables:     m.MemTable.Count + m.MemTable.ZombieCount,
	}
}

// Commit applies b atomically and durably; see the package documentation
// for how concurrent commits are ordered.
func (s *Store) Commit(ctx context.Context, b *domicile.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	held := s.lockSubjects(b)
	pb := s.db.NewBatch()
	unlock := func() {
		for _, i := range held {
			s.locks[i].Unlock()
		}
	}
	w := writer{s: s, pb: pb}
	for _, op := range b.Ops {
		if err := w.apply(op); err != nil {
			unlock()
			pb.Close()
			return err
		}
	}
	// Events, pre-encoded outside the critical section but for their
	// keys, and the slots of the subjects they name.
	vals := make([][]byte, len(b.Events))
	evSlots := make([]slot, len(b.Events))
	for i, e := range b.Events {
		vals[i] = encEvent(e.Ref, e.Time, e.Leaf, e.Committed, e.Salt)
		if !e.Ref.IsZero() {
			st, err := w.slot(e.Ref, true)
			if err != nil {
				unlock()
				pb.Close()
				return err
			}
			evSlots[i] = st.sl
		}
	}
	hashes := make([]tlog.Hash, len(b.Events))
	for i, e := range b.Events {
		hashes[i] = tlog.RecordHash(e.Leaf)
	}

	s.logMu.Lock()
	t0 := time.Now()
	first := s.size
	if w.receipt != nil {
		// A receipt id is unique. Receipts are written only here, under
		// logMu, so the check cannot race with another erasure.
		if _, err := s.get(receiptKey(w.receipt.ID)); err == nil {
			s.logMu.Unlock()
			unlock()
			pb.Close()
			return fmt.Errorf("pebblestore: erase: receipt id %q already stored", w.receipt.ID)
		}
		// The erase event is the batch's first: its index is the log's
		// size now.
		w.receipt.LogIndex = first
		pb.Set(receiptKey(w.receipt.ID), encReceipt(w.receipt), nil)
	}
	for i, e := range b.Events {
		idx := first + int64(i)
		pb.Set(eventKey(idx), vals[i], nil)
		if !e.Ref.IsZero() {
			pb.Set(subjEventKey(evSlots[i], idx), nil, nil)
		}
	}
	err := s.db.ApplyNoSyncWait(pb, syncWrite)
	if err == nil {
		for i, e := range b.Events {
			e.Index = first + int64(i)
			s.tail.Append(hashes[i])
		}
		s.size = first + int64(len(b.Events))
	}
	end := s.size
	s.logMu.Unlock()
	s.critical.Add(int64(time.Since(t0)))
	if err == nil {
		// The slots the batch drew or dropped, before the stripes are
		// released: the next holder of a stripe finds them cached.
		for ref, st := range w.slots {
			switch {
			case !st.changed:
			case st.ok:
				s.slots.put(ref, st.sl)
			default:
				s.slots.del(ref)
			}
		}
	}
	unlock()
	if err != nil {
		pb.Close()
		return fmt.Errorf("pebblestore: commit: %w", err)
	}
	if err := pb.SyncWait(); err != nil {
		// Pebble treats a failed WAL write or sync as fatal; this is not
		// reached in practice.
		pb.Close()
		return fmt.Errorf("pebblestore: commit: %w", err)
	}
	pb.Close()
	s.batches.Add(1)
	if len(w.erased) > 0 {
		// No list in memory keeps an erased reference either.
		s.snapMu.Lock()
		s.snap = nil
		s.snapMu.Unlock()
		if err := s.purge(ctx, &w); err != nil {
			// The erasure is committed; what remains is physical removal,
			// which the next compaction of those ranges also does.
			return fmt.Errorf("pebblestore: erase committed, compaction failed: %w", err)
		}
	}
	// Every batch before this one in the log is durable too.
	for {
		c := s.committed.Load()
		if c >= end || s.committed.CompareAndSwap(c, end) {
			break
		}
	}
	if len(b.Events) > 0 && s.flushMu.TryLock() {
		// Tiles go to their files once their leaves are durable; a tile
		// written early (covering leaves of a batch still in flight) is
		// harmless, as Open drops tiles beyond the log.
		s.tail.Flush(s.tiles.Write)
		s.flushMu.Unlock()
	}
	return nil
}

// purge compacts the key ranges an erasure deleted or rewrote down to
// the last level, so that the erased rows, the subjects' references and
// their events' old salts and committed events leave the database files
// now rather than at some later compaction: an LSM deletes by writing a
// tombstone, and the old values stay in older tables until a compaction
// meets both (the SQLite store's secure_delete plays this part there).
// Compact flushes the memtables the ranges overlap, and a last flush the
// one holding the erasure itself, so the write-ahead logs holding the old
// values become obsolete and are removed too (see Open's Cleaner).
//
// What this does not reach: Pebble's manifest, a log of version edits
// that names the smallest and largest key of every table it adds, keeps
// those of dropped tables until it rolls over to a new file. A key of the
// subject that bounded a table can stay there, though no value of the
// subject does: a key under its slot (which nothing stored links to its
// reference any more: the name that did is deleted and compacted here
// too) or its name (an HMAC of the reference, which links no slot).
func (s *Store) purge(ctx context.Context, w *writer) error {
	for _, e := range w.erased {
		for _, t := range []byte{tSubject, tRecord, tObject, tRequest, tSubjEvent} {
			p := slotKey(t, e.sl)
			if err := s.db.Compact(ctx, p, prefixEnd(p), false); err != nil {
				return err
			}
		}
		if err := s.db.Compact(ctx, e.name, prefixEnd(e.name), false); err != nil {
			return err
		}
	}
	if w.evLo < w.evHi {
		if err := s.db.Compact(ctx, eventKey(w.evLo), eventKey(w.evHi), true); err != nil {
			return err
		}
	}
	// The erasure's own batch names the subject (its tombstones): flush
	// the memtable, so the log holding it becomes obsolete and goes the
	// way of the others (dropArchive).
	return s.db.Flush()
}

// lockSubjects locks, in order, the stripes of every subject b names.
func (s *Store) lockSubjects(b *domicile.Batch) []int {
	var buf [8]int
	held := buf[:0]
	add := func(ref domicile.SubjectRef) {
		if ref.IsZero() {
			return
		}
		i := int(ref[0])
		if !slices.Contains(held, i) {
			held = append(held, i)
		}
	}
	for _, op := range b.Ops {
		switch op := op.(type) {
		case *domicile.PutSubject:
			add(op.Subject.Ref)
		case *domicile.PutRecord:
			add(op.Record.Ref)
		case *domicile.DeleteRecord:
			add(op.Ref)
		case *domicile.PutObject:
			add(op.Object.Ref)
		case *domicile.ImportRecord:
			add(op.Record.Ref)
		case *domicile.ImportObject:
			add(op.Object.Ref)
		case *domicile.DeleteObject:
			add(op.Ref)
		case *domicile.PutRequest:
			add(op.Request.Ref)
		case *domicile.EraseSubject:
			add(op.Ref)
		}
	}
	for _, e := range b.Events {
		add(e.Ref)
	}
	slices.Sort(held)
	for _, i := range held {
		s.locks[i].Lock()
	}
	return held
}

// writer builds one commit's batch. Reads see the batch's own earlier
// writes (pending), then the database.
type writer struct {
	s       *Store
	pb      *pebble.Batch
	pending map[string][]byte // nil value: deleted in this batch
	// slots holds the slot of each subject the batch names, as of the
	// batch's operations so far.
	slots   map[domicile.SubjectRef]slotState
	erased  []erasedSlot
	receipt *domicile.StoredReceipt
	// evLo and evHi bound the indexes of the erased subjects' events
	// (evHi exclusive; evLo >= evHi when there are none).
	evLo, evHi int64
}

// slotState is a subject's slot in a batch: ok when it has one, changed
// when the batch draws it or drops it (an erasure).
type slotState struct {
	sl          slot
	ok, changed bool
}

// drawn reports whether the batch drew the slot: nothing is stored under
// it but what the batch writes.
func (st slotState) drawn() bool { return st.ok && st.changed }

// erasedSlot is a subject an erasure in the batch unlinked: its slot and
// its name.
type erasedSlot struct {
	sl   slot
	name []byte
}

// slot returns ref's slot as of the batch so far; with create, a subject
// without one gets one (its name is written in the batch). The caller
// holds ref's stripe.
func (w *writer) slot(ref domicile.SubjectRef, create bool) (slotState, error) {
	st, seen := w.slots[ref]
	if !seen {
		sl, ok, err := w.s.lookupSlot(ref)
		if err != nil {
			return st, err
		}
		st = slotState{sl: sl, ok: ok}
	}
	if !st.ok && create {
		sl, err := w.s.newSlot()
		if err != nil {
			return st, err
		}
		st = slotState{sl: sl, ok: true, changed: true}
		w.set(w.s.nameOf(ref), sl[:])
	}
	if w.slots == nil {
		w.slots = map[domicile.SubjectRef]slotState{}
	}
	w.slots[ref] = st
	return st, nil
}

// get returns the value at key under the slot st: the batch's own
// write, or the database's (not read for a slot the batch drew).
func (w *writer) get(st slotState, key []byte) ([]byte, error) {
	if v, ok := w.pending[string(key)]; ok {
		if v == nil {
			return nil, domicile.ErrNotFound
		}
		return v, nil
	}
	if st.drawn() {
		return nil, domicile.ErrNotFound
	}
	return w.s.get(key)
}

func (w *writer) set(key, v []byte) {
	if w.pending == nil {
		w.pending = map[string][]byte{}
	}
	w.pending[string(key)] = v
	w.pb.Set(key, v, nil)
}

func (w *writer) del(key []byte) {
	if w.pending == nil {
		w.pending = map[string][]byte{}
	}
	w.pending[string(key)] = nil
	w.pb.Delete(key, nil)
}

// current returns the stored version of a record (tombstones included)
// or object under slot st, 0 when there is none, and whether it is live.
func (w *writer) current(st slotState, key []byte, object bool) (int64, bool, error) {
	v, err := w.get(st, key)
	if errors.Is(err, domicile.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if object {
		var o domicile.StoredObject
		if err := decObject(&o, v); err != nil {
			return 0, false, err
		}
		return o.Version, o.Blob != "", nil
	}
	return recordVersion(v)
}

// checkNext checks a put of version v against what the caller expects
// the current version to be, and against the current version cur: the put
// must be cur+1.
func checkNext(expect, v, cur int64) error {
	if v < 1 || (expect != domicile.AnyVersion && v != expect+1) || v != cur+1 {
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

func (w *writer) apply(op domicile.Op) error {
	switch op := op.(type) {
	case *domicile.PutSubject:
		st, err := w.slot(op.Subject.Ref, true)
		if err != nil {
			return err
		}
		k := subjectKey(st.sl)
		if _, err := w.get(st, k); err == nil {
			return domicile.ErrVersionMismatch
		} else if !errors.Is(err, domicile.ErrNotFound) {
			return err
		}
		w.set(k, encSubject(&op.Subject))
	case *domicile.PutRecord:
		r := &op.Record
		st, err := w.slot(r.Ref, true)
		if err != nil {
			return err
		}
		k := recordKey(st.sl, r.Kind, r.ID)
		cur, _, err := w.current(st, k, false)
		if err != nil {
			return err
		}
		if err := checkNext(op.Expect, r.Version, cur); err != nil {
			return err
		}
		w.set(k, encRecord(r))
	case *domicile.DeleteRecord:
		st, err := w.slot(op.Ref, false)
		if err != nil {
			return err
		}
		if !st.ok {
			return domicile.ErrNotFound
		}
		k := recordKey(st.sl, op.Kind, op.ID)
		cur, live, err := w.current(st, k, false)
		if err != nil {
			return err
		}
		if !live {
			return domicile.ErrNotFound
		}
		if err := check(op.Expect, cur); err != nil {
			return err
		}
		op.Version = cur + 1
		w.set(k, encRecord(&domicile.StoredRecord{Version: cur + 1, Updated: op.Updated}))
	case *domicile.PutObject:
		o := &op.Object
		st, err := w.slot(o.Ref, true)
		if err != nil {
			return err
		}
		k := objectKey(st.sl, o.Name)
		cur, _, err := w.current(st, k, true)
		if err != nil {
			return err
		}
		if err := checkNext(op.Expect, o.Version, cur); err != nil {
			return err
		}
		w.set(k, encObject(o))
	case *domicile.DeleteObject:
		st, err := w.slot(op.Ref, false)
		if err != nil {
			return err
		}
		if !st.ok {
			return domicile.ErrNotFound
		}
		k := objectKey(st.sl, op.Name)
		v, err := w.get(st, k)
		if err != nil {
			return err // ErrNotFound for a missing object
		}
		var o domicile.StoredObject
		if err := decObject(&o, v); err != nil {
			return err
		}
		if o.Blob == "" {
			return domicile.ErrNotFound
		}
		if err := check(op.Expect, o.Version); err != nil {
			return err
		}
		o.Version++
		o.Blob, o.Size, o.SHA256 = "", 0, ""
		w.set(k, encObject(&o))
	case *domicile.PutRequest:
		r := &op.Request
		st, err := w.slot(r.Ref, true)
		if err != nil {
			return err
		}
		k := requestKey(st.sl, r.ID)
		var cur int64
		if v, err := w.get(st, k); err == nil {
			var old domicile.StoredRequest
			if err := decRequest(&old, v); err != nil {
				return err
			}
			cur = old.Version
		} else if !errors.Is(err, domicile.ErrNotFound) {
			return err
		}
		if err := checkNext(op.Expect, r.Version, cur); err != nil {
			return err
		}
		w.set(k, encRequest(r))
	case *domicile.ImportRecord:
		// A migration's record, at the version it had in its source cell:
		// only where this cell never held it.
		r := &op.Record
		if r.Version < 1 {
			return domicile.ErrVersionMismatch
		}
		st, err := w.slot(r.Ref, true)
		if err != nil {
			return err
		}
		k := recordKey(st.sl, r.Kind, r.ID)
		if _, err := w.get(st, k); err == nil {
			return domicile.ErrVersionMismatch
		} else if !errors.Is(err, domicile.ErrNotFound) {
			return err
		}
		w.set(k, encRecord(r))
	case *domicile.ImportObject:
		o := &op.Object
		if o.Version < 1 {
			return domicile.ErrVersionMismatch
		}
		st, err := w.slot(o.Ref, true)
		if err != nil {
			return err
		}
		k := objectKey(st.sl, o.Name)
		if _, err := w.get(st, k); err == nil {
			return domicile.ErrVersionMismatch
		} else if !errors.Is(err, domicile.ErrNotFound) {
			return err
		}
		w.set(k, encObject(o))
	case *domicile.EraseSubject:
		return w.erase(op)
	default:
		return fmt.Errorf("pebblestore: unknown operation %T", op)
	}
	return nil
}

// erase deletes a subject's rows and its name, and unlinks its events:
// their salt, committed event and reference go, their leaves stay. The
// subject has no slot afterwards; anything later of the same reference
// gets a new one.
func (w *writer) erase(op *domicile.EraseSubject) error {
	w.receipt = op.Receipt
	st, err := w.slot(op.Ref, false)
	if err != nil {
		return err
	}
	w.slots[op.Ref] = slotState{changed: true}
	if !st.ok {
		return nil // nothing stored of the subject
	}
	sl := st.sl
	for _, t := range []byte{tRequest, tRecord, tObject} {
		p := slotKey(t, sl)
		if err := w.pb.DeleteRange(p, prefixEnd(p), nil); err != nil {
			return fmt.Errorf("pebblestore: erase: %w", err)
		}
	}
	w.del(subjectKey(sl))
	name := w.s.nameOf(op.Ref)
	w.del(name)
	w.erased = append(w.erased, erasedSlot{sl: sl, name: name})
	p := slotKey(tSubjEvent, sl)
	it, err := w.s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return fmt.Errorf("pebblestore: erase: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		idx := int64(beUint64(it.Key()[len(p):]))
		if w.evLo >= w.evHi {
			w.evLo, w.evHi = idx, idx+1
		}
		w.evLo, w.evHi = min(w.evLo, idx), max(w.evHi, idx+1)
		v, err := w.s.get(eventKey(idx))
		if err != nil {
			return fmt.Errorf("pebblestore: erase: event %d: %w", idx, err)
		}
		ev, err := decEvent(idx, v)
		if err != nil {
			return err
		}
		w.pb.Set(eventKey(idx), encEvent(domicile.SubjectRef{}, ev.Time, ev.Leaf, nil, nil), nil)
		w.pb.Delete(slices.Clone(it.Key()), nil)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebblestore: erase: %w", err)
	}
	return nil
}

// get returns a copy of the value at key, or ErrNotFound.
func (s *Store) get(key []byte) ([]byte, error) {
	v, c, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: get: %w", err)
	}
	out := slices.Clone(v)
	c.Close()
	return out, nil
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// quietLogger drops Pebble's informational messages (the server log holds
// only what an operator acts on) and keeps its errors on stderr.
type quietLogger struct{}

func (quietLogger) Infof(format string, args ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf for a state it cannot continue from, and expects
	// it not to return.
	panic(fmt.Sprintf("pebble: "+format, args...))
}

var _ domicile.CellStore = (*Store)(nil)
