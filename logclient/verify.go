package logclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"domicile/checkpoint"
	"domicile/leaf"
	"domicile/merkle"
	"domicile/witness"
)

// An Event is one item of a subject's event export: the exact committed
// event bytes, the salt, the leaf that commits to them, and its index.
type Event struct {
	LeafIndex int64  `json:"leaf_index"`
	Salt      []byte `json:"salt"` // standard base64 in JSON
	Committed string `json:"committed"`
	Leaf      string `json:"leaf"`
}

// An Export is a subject's event export, `{"events": [...]}`. Other fields
// of the export are ignored.
type Export struct {
	Events []Event `json:"events"`
}

// MaxExportBytes bounds an export accepted by ParseExport.
const MaxExportBytes = 64 << 20

// ParseExport decodes a subject's event export.
func ParseExport(data []byte) (*Export, error) {
	if len(data) > MaxExportBytes {
		return nil, errors.New("logclient: export too large")
	}
	var e Export
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("logclient: malformed event export: %v", err)
	}
	return &e, nil
}

// CommitmentError reports an exported event whose leaf does not commit to
// its event under its salt (or is not a valid leaf).
type CommitmentError struct {
	Index  int64
	Leaf   string
	Reason string
}

func (e *CommitmentError) Error() string {
	return fmt.Sprintf("logclient: event at leaf %d: %s\n-- leaf --\n%s\n", e.Index, e.Reason, e.Leaf)
}

// LeafMismatchError reports that the log serves, at an event's index, a
// different leaf from the one the subject was given.
type LeafMismatchError struct {
	Checkpoint []byte
	Index      int64
	// Expected is the subject's leaf, Served the log's entry.
	Expected, Served []byte
}

func (e *LeafMismatchError) Error() string {
	return fmt.Sprintf("logclient: the log serves a different leaf at index %d\n-- expected --\n%s\n-- served --\n%s\n-- checkpoint --\n%s",
		e.Index, e.Expected, e.Served, e.Checkpoint)
}

// VerifyEvent checks one exported event against cp: its leaf commits to
// its event under its salt, the log serves that leaf at its index, and the
// leaf is included in cp's tree.
func (c *Client) VerifyEvent(ctx context.Context, cp *checkpoint.Signed, ev Event) error {
	l, err := leaf.Parse([]byte(ev.Leaf))
	if err != nil {
		return &CommitmentError{Index: ev.LeafIndex, Leaf: ev.Leaf, Reason: "malformed leaf"}
	}
	if !l.Verify(ev.Salt, []byte(ev.Committed)) {
		return &CommitmentError{Index: ev.LeafIndex, Leaf: ev.Leaf, Reason: "leaf does not commit to the event under its salt"}
	}
	if ev.LeafIndex < 0 || ev.LeafIndex >= cp.Size {
		return &InclusionError{Checkpoint: cp.Raw, Index: ev.LeafIndex, Leaf: []byte(ev.Leaf),
			Reason: fmt.Sprintf("index beyond the tree of %d leaves: the log's checkpoint does not include the event yet (a log waits for its witnesses' cosignatures; try again in a few seconds, and keep this evidence if it persists)", cp.Size)}
	}
	served, err := c.Entry(ctx, cp, ev.LeafIndex)
	if err != nil {
		return err
	}
	if !bytes.Equal(served, []byte(ev.Leaf)) {
		return &LeafMismatchError{Checkpoint: cp.Raw, Index: ev.LeafIndex, Expected: []byte(ev.Leaf), Served: served}
	}
	_, err = c.ProveInclusion(ctx, cp, ev.LeafIndex, served)
	return err
}

// EntryError reports an entry, served in an entry bundle, whose hash is not
// the leaf hash in the signed tree, or which is not a valid leaf.
type EntryError struct {
	Checkpoint []byte
	Index      int64
	Entry      []byte
	// TileHash is the authenticated leaf hash at Index.
	TileHash merkle.Hash
	Reason   string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("logclient: entry %d: %s (leaf hash in signed tree %s, hash of served entry %s)\n-- entry --\n%q\n-- checkpoint --\n%s",
		e.Index, e.Reason, e.TileHash, merkle.LeafHash(e.Entry), e.Entry, e.Checkpoint)
}

// walkEntries fetches every entry bundle of cp's tree in order and calls
// fn with each entry and the authenticated leaf hash at its index.
func (c *Client) walkEntries(ctx context.Context, cp *checkpoint.Signed, fn func(index int64, entry []byte, hash merkle.Hash) error) error {
	hr := c.hashReader(ctx, cp)
	for start := int64(0); start < cp.Size; start += merkle.TileWidth {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, _, err := merkle.EntryBundleFor(start, cp.Size)
		if err != nil {
			return err
		}
		entries, err := c.entryBundle(ctx, t)
		if err != nil {
			return err
		}
		idx := make([]int64, len(entries))
		for i := range entries {
			idx[i] = merkle.StoredHashIndex(0, start+int64(i))
		}
		hashes, err := hr.ReadHashes(idx)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if err := fn(start+int64(i), e, hashes[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkEntry returns the leaf of an entry, or an *EntryError when it is
// not the signed leaf at its index or not a domicile leaf.
func checkEntry(cp *checkpoint.Signed, index int64, e []byte, hash merkle.Hash) (leaf.Leaf, error) {
	if merkle.LeafHash(e) != hash {
		return leaf.Leaf{}, &EntryError{Checkpoint: cp.Raw, Index: index, Entry: e, TileHash: hash, Reason: "served entry is not the signed leaf"}
	}
	l, err := leaf.Parse(e)
	if err != nil {
		return leaf.Leaf{}, &EntryError{Checkpoint: cp.Raw, Index: index, Entry: e, TileHash: hash, Reason: "not a domicile leaf"}
	}
	return l, nil
}

// CheckEntries fetches every entry bundle of cp's tree and checks that each
// entry is a valid leaf whose hash is the authenticated leaf hash: a full
// audit of the log's contents, linear in its size. It returns all the
// failures found, joined.
func (c *Client) CheckEntries(ctx context.Context, cp *checkpoint.Signed) error {
	var errs []error
	err := c.walkEntries(ctx, cp, func(index int64, e []byte, hash merkle.Hash) error {
		if _, err := checkEntry(cp, index, e, hash); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// EachLeaf calls fn with every leaf of cp's tree, in index order, each
// authenticated against cp (its hash is the signed tree's leaf hash): what
// anyone needs to recount a document's figures from the log alone. It
// stops at the first entry that is not the signed leaf or not a valid leaf
// (an [*EntryError]), or at the first error fn returns.
func (c *Client) EachLeaf(ctx context.Context, cp *checkpoint.Signed, fn func(index int64, l leaf.Leaf) error) error {
	return c.walkEntries(ctx, cp, func(index int64, e []byte, hash merkle.Hash) error {
		l, err := checkEntry(cp, index, e, hash)
		if err != nil {
			return err
		}
		return fn(index, l)
	})
}

// Options selects what [Client.Verify] checks beyond the checkpoint.
type Options struct {
	// State holds the checkpoint trusted before, by origin; nil skips
	// the consistency check. Verify stores the new checkpoint in it once
	// it is shown consistent.
	State witness.State
	// Events are a subject's events to check.
	Events []Event
	// Entries makes Verify check every entry of the log (CheckEntries).
	Entries bool
}

// Result describes a verification that passed.
type Result struct {
	// Checkpoint is the verified checkpoint.
	Checkpoint *checkpoint.Signed
	// Previous is the checkpoint trusted before, or nil on first use.
	Previous *checkpoint.Signed
	// Events is the number of events verified.
	Events int
}

// Verify fetches and verifies the log's checkpoint, checks its consistency
// with the checkpoint in opts.State (trusting it on first use) and stores
// it there, then checks opts.Events and, if asked, every entry. It returns
// the result, or the first checkpoint failure, or all event and entry
// failures joined; failures are the typed errors of this package.
func (c *Client) Verify(ctx context.Context, opts Options) (*Result, error) {
	cp, err := c.FetchCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{Checkpoint: cp}
	if opts.State != nil {
		st, ok, err := opts.State.Load(ctx, c.Origin())
		if err != nil {
			return nil, fmt.Errorf("logclient: %w", err)
		}
		if ok {
			// Only the log's signature is rechecked: witnesses may have
			// changed since, and the old checkpoint was fully checked then.
			old, err := checkpoint.Open(st.Checkpoint, c.log)
			if err != nil {
				return nil, fmt.Errorf("logclient: trusted checkpoint in state no longer verifies: %w", err)
			}
			res.Previous = old
			if err := c.CheckConsistency(ctx, old, cp); err != nil {
				return nil, err
			}
		}
		if !ok || cp.Size > st.Size {
			if err := opts.State.Store(ctx, c.Origin(), witness.LogState{Checkpoint: cp.Raw, Size: cp.Size, Hash: cp.Hash}); err != nil {
				return nil, fmt.Errorf("logclient: %w", err)
			}
		}
	}
	var errs []error
	for _, ev := range opts.Events {
		if err := c.VerifyEvent(ctx, cp, ev); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Events++
	}
	if opts.Entries {
		if err := c.CheckEntries(ctx, cp); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}
