package tlog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"domicile"
	"domicile/checkpoint"
	"domicile/leaf"
	"domicile/merkle"
)

// CheckStore is what [Check] reads of a cell's store, and the one repair
// it may make. Both cell stores (sqlite, postgres) implement it.
type CheckStore interface {
	LogSize(ctx context.Context) (int64, error)
	ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	Events(ctx context.Context, start, end int64) ([]domicile.StoredEvent, error)
	LatestCheckpoint(ctx context.Context) (int64, []byte, error)
	// CheckDatabase runs the database engine's own consistency check
	// (SQLite's quick_check, PostgreSQL's sanity checks). It returns a
	// description of the problems found, "" when it found none, and an
	// error only when the check could not run.
	CheckDatabase(ctx context.Context) (string, error)
	// RebuildHashes replaces every stored Merkle hash of the log by one
	// recomputed from the stored events. Check calls it only before the
	// cell serves.
	RebuildHashes(ctx context.Context) error
}

// CheckResult is what [Check] found in a log it accepts.
type CheckResult struct {
	// Size is the number of events in the log.
	Size int64
	// Checkpoint is the size of the last signed checkpoint, or -1 when
	// the log has none yet (a new cell).
	Checkpoint int64
	// Root is the checkpoint's root hash, which the events reproduce.
	Root merkle.Hash
	// Rebuilt reports that stored Merkle hashes (the tiles) disagreed
	// with the events and were rebuilt from them.
	Rebuilt bool
	// BadHashes is how many stored hashes disagreed before the rebuild,
	// and FirstBad the first of them ("level L index N").
	BadHashes int64
	FirstBad  string
}

// IntegrityError reports a cell whose stored log cannot be trusted: its
// events disagree with its last signed checkpoint, an event's content no
// longer matches its leaf, the checkpoint itself does not verify, or the
// database fails its own consistency check. The cell must not serve. The
// fields are the evidence.
type IntegrityError struct {
	// Reason says, in one sentence, what disagrees.
	Reason string
	// Checkpoint is the last signed checkpoint as stored (nil if none).
	Checkpoint []byte
	// Size and Signed are the checkpoint's size and root hash.
	Size   int64
	Signed merkle.Hash
	// Recomputed is the root hash of the stored events [0, Size), when
	// it was computed (HaveRecomputed).
	Recomputed     merkle.Hash
	HaveRecomputed bool
	// Event is the index of the first event whose stored content does
	// not match its leaf's commitment, or -1.
	Event int64
	// Database is the database check's report, if it found problems.
	Database string
}

func (e *IntegrityError) Error() string {
	var b strings.Builder
	b.WriteString("log integrity: ")
	b.WriteString(e.Reason)
	if e.Checkpoint != nil {
		fmt.Fprintf(&b, "; signed checkpoint: size %d, root %s", e.Size, e.Signed)
		if e.HaveRecomputed {
			fmt.Fprintf(&b, "; root recomputed from the stored events: %s", e.Recomputed)
		}
	}
	if e.Event >= 0 {
		fmt.Fprintf(&b, "; first event whose content does not match its leaf: %d", e.Event)
	}
	if e.Database != "" {
		fmt.Fprintf(&b, "; database check: %s", e.Database)
	}
	return b.String()
}

// Evidence returns the error's evidence as text: the reason, the figures,
// and the signed checkpoint, to print or attach to an incident.
func (e *IntegrityError) Evidence() string {
	var b strings.Builder
	b.WriteString(e.Error())
	if e.Checkpoint != nil {
		b.WriteString("\n-- signed checkpoint --\n")
		b.Write(e.Checkpoint)
	}
	return b.String()
}

// checkChunk is how many events Check reads at a time.
const checkChunk = 4096

// maxDatabaseReport bounds the database check's report kept as evidence.
const maxDatabaseReport = 2048

// Check verifies a cell's stored log before the cell serves:
//
//  1. the database's own consistency check passes;
//  2. the last stored checkpoint verifies under the log's key (verifier;
//     nil when the cell has no key yet, which is acceptable only for a log
//     that has never been checkpointed) and the log holds at least as many
//     events as it signs;
//  3. every event whose salt is kept still matches its leaf's commitment,
//     and the events' leaves reproduce the checkpoint's root hash;
//  4. every stored Merkle hash (the tiles) equals the one recomputed from
//     the events, and the tree head computed from the stored hashes is
//     the signed one.
//
// A failure of 1 to 3 is an [*IntegrityError]: the events themselves
// cannot be trusted, and the cell must not serve. A failure of 4 alone
// concerns derived data: Check rebuilds the stored hashes from the events
// (RebuildHashes), checks them again, and reports the rebuild in the
// result. Other errors (the store could not be read) are returned as they
// are.
//
// Check reads every event and every stored hash once (twice after a
// rebuild): its cost grows with the log, see doc/log.md.
func Check(ctx context.Context, st CheckStore, verifier note.Verifier) (*CheckResult, error) {
	if rep, err := st.CheckDatabase(ctx); err != nil {
		return nil, fmt.Errorf("database check: %w", err)
	} else if rep != "" {
		if len(rep) > maxDatabaseReport {
			rep = rep[:maxDatabaseReport] + "…"
		}
		return nil, &IntegrityError{Reason: "the database fails its consistency check", Event: -1, Database: rep}
	}
	res := &CheckResult{Checkpoint: -1}
	cpSize, signed, err := st.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if signed != nil {
		res.Checkpoint = cpSize
		ie := &IntegrityError{Checkpoint: signed, Size: cpSize, Event: -1}
		if verifier == nil {
			ie.Reason = "the log has a signed checkpoint but no key to verify it"
			return nil, ie
		}
		cp, err := checkpoint.Open(signed, verifier)
		if err != nil {
			ie.Reason = "the last stored checkpoint does not verify under the log's key: " + err.Error()
			if body, berr := checkpoint.Body(signed); berr == nil {
				if c, perr := checkpoint.Parse(body); perr == nil {
					ie.Size, ie.Signed = c.Size, c.Hash
				}
			}
			return nil, ie
		}
		ie.Size, ie.Signed = cp.Size, cp.Hash
		if cp.Size != cpSize {
			ie.Reason = fmt.Sprintf("the last checkpoint is stored as size %d but signs size %d", cpSize, cp.Size)
			return nil, ie
		}
		res.Root = cp.Hash
	}
	n, err := st.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	res.Size = n
	if n < res.Checkpoint {
		return nil, &IntegrityError{Reason: fmt.Sprintf("the log holds %d events, fewer than the %d its last checkpoint signs", n, res.Checkpoint),
			Checkpoint: signed, Size: res.Checkpoint, Signed: res.Root, Event: -1}
	}
	sc, err := scan(ctx, st, n, res.Checkpoint, true)
	if err != nil {
		return nil, err
	}
	if sc.badEvent >= 0 {
		return nil, &IntegrityError{Reason: "an event's stored content no longer matches its leaf's commitment",
			Checkpoint: signed, Size: res.Checkpoint, Signed: res.Root, Event: sc.badEvent,
			Recomputed: sc.root, HaveRecomputed: signed != nil}
	}
	if signed != nil && sc.root != res.Root {
		return nil, &IntegrityError{Reason: "the stored events disagree with the last signed checkpoint",
			Checkpoint: signed, Size: res.Checkpoint, Signed: res.Root, Recomputed: sc.root, HaveRecomputed: true, Event: -1}
	}
	headOK := true
	if signed != nil {
		h, err := merkle.TreeHash(res.Checkpoint, hashReader(ctx, st))
		headOK = err == nil && h == res.Root
	}
	if sc.bad == 0 && headOK {
		return res, nil
	}
	res.BadHashes, res.FirstBad = sc.bad, sc.firstBad
	if res.BadHashes == 0 {
		res.FirstBad = "the tree head computed from the stored hashes"
	}
	if err := st.RebuildHashes(ctx); err != nil {
		return nil, fmt.Errorf("rebuild the log's stored hashes: %w", err)
	}
	res.Rebuilt = true
	again, err := scan(ctx, st, n, res.Checkpoint, false)
	if err != nil {
		return nil, err
	}
	if again.bad != 0 {
		return nil, fmt.Errorf("the log's stored hashes still disagree with its events after a rebuild, first at %s", again.firstBad)
	}
	if signed != nil {
		h, err := merkle.TreeHash(res.Checkpoint, hashReader(ctx, st))
		if err != nil || h != res.Root {
			return nil, fmt.Errorf("the tree head from the rebuilt hashes is not the signed one (%v)", err)
		}
	}
	return res, nil
}

func hashReader(ctx context.Context, st CheckStore) merkle.HashReader {
	return merkle.HashReaderFunc(func(idx []int64) ([]merkle.Hash, error) {
		hs, err := st.ReadHashes(ctx, idx)
		if err != nil {
			return nil, err
		}
		out := make([]merkle.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, nil
	})
}

// scanned is what one pass over the events found.
type scanned struct {
	root     merkle.Hash // root of the events [0, at)
	badEvent int64       // first event not matching its leaf, or -1
	bad      int64       // stored hashes that disagree with the events
	firstBad string
}

// scan reads the events [0, n) in order, recomputes every stored hash
// from their leaves (a frontier of at most 64 hashes: O(log n) memory)
// and compares it with the store's; it returns the root of the first at
// leaves. With commitments, it also checks each event against its leaf.
func scan(ctx context.Context, st CheckStore, n, at int64, commitments bool) (*scanned, error) {
	sc := &scanned{badEvent: -1}
	var frontier [64]merkle.Hash
	if at == 0 {
		sc.root = merkle.EmptyRoot()
	}
	ids := make([]int64, 0, 2*checkChunk+64)
	want := make([]merkle.Hash, 0, 2*checkChunk+64)
	for start := int64(0); start < n; start += checkChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(start+checkChunk, n)
		evs, err := st.Events(ctx, start, end)
		if err != nil {
			return nil, err
		}
		if int64(len(evs)) != end-start {
			return nil, fmt.Errorf("events [%d, %d): %d found", start, end, len(evs))
		}
		ids, want = ids[:0], want[:0]
		for k, e := range evs {
			i := start + int64(k)
			if e.Index != i {
				return nil, fmt.Errorf("event %d missing (found %d in its place)", i, e.Index)
			}
			if commitments && sc.badEvent < 0 && !eventMatchesLeaf(e) {
				sc.badEvent = i
			}
			h := merkle.LeafHash(e.Leaf)
			ids = append(ids, merkle.StoredHashIndex(0, i))
			want = append(want, h)
			level := 0
			for idx := i; idx&1 == 1; idx >>= 1 {
				h = merkle.NodeHash(frontier[level], h)
				level++
				ids = append(ids, merkle.StoredHashIndex(level, idx>>1))
				want = append(want, h)
			}
			frontier[level] = h
			if i+1 == at {
				sc.root = rootOf(&frontier, at)
			}
		}
		got, err := st.ReadHashes(ctx, ids)
		if err != nil {
			// A stored hash that cannot be read (a tile missing or cut
			// short) disagrees like a wrong one.
			sc.bad += int64(len(ids))
			if sc.firstBad == "" {
				sc.firstBad = fmt.Sprintf("events [%d, %d): %v", start, end, err)
			}
			continue
		}
		for j, h := range got {
			if merkle.Hash(h) != want[j] {
				if sc.bad == 0 {
					sc.firstBad = describeHash(ids[j])
				}
				sc.bad++
			}
		}
	}
	return sc, nil
}

// rootOf returns the root of a tree of size leaves from its frontier: the
// complete subtrees at the set bits of size, folded from the right.
func rootOf(frontier *[64]merkle.Hash, size int64) merkle.Hash {
	var h merkle.Hash
	have := false
	for level := 0; level < 63; level++ {
		if size>>level&1 == 0 {
			continue
		}
		if !have {
			h, have = frontier[level], true
		} else {
			h = merkle.NodeHash(frontier[level], h)
		}
	}
	return h
}

// describeHash names a stored hash by its level and index.
func describeHash(id int64) string {
	// Invert StoredHashIndex by search: levels are few.
	for level := 0; level < 63; level++ {
		// StoredHashIndex(level, n) grows with n: binary search.
		lo, hi := int64(0), id+1
		for lo < hi {
			m := lo + (hi-lo)/2
			if merkle.StoredHashIndex(level, m) < id {
				lo = m + 1
			} else {
				hi = m
			}
		}
		n := lo
		if merkle.StoredHashIndex(level, n) == id {
			return fmt.Sprintf("hash level %d index %d (leaves %d-%d)", level, n, n<<level, (n+1)<<level-1)
		}
	}
	return fmt.Sprintf("stored hash %d", id)
}

// eventMatchesLeaf reports whether a stored event's content still matches
// its leaf. An erased subject's events keep no salt: nothing to check.
func eventMatchesLeaf(e domicile.StoredEvent) bool {
	if e.Salt == nil || e.Committed == nil {
		return true
	}
	l, err := leaf.Parse(e.Leaf)
	if err != nil {
		return false
	}
	return l.Verify(e.Salt, e.Committed)
}

// IsIntegrityError reports whether err is (or wraps) an [*IntegrityError].
func IsIntegrityError(err error) bool {
	var ie *IntegrityError
	return errors.As(err, &ie)
}
