// Package tlog runs a cell's transparency log: it publishes signed
// checkpoints (C2SP tlog-checkpoint) at least every second while the log
// grows, serves the log as C2SP tlog-tiles, and proves inclusion and
// consistency for subjects and auditors.
//
// Leaves are appended by the cell's store in the same transaction as the
// data they record (see domicile.Batch); this package only reads what was
// committed, so publishing never slows a write.
package tlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile"
	"domicile/checkpoint"
	"domicile/merkle"
)

// Store is what the log reads from a cell's store.
type Store interface {
	LogSize(ctx context.Context) (int64, error)
	ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	Leaves(ctx context.Context, start, end int64) ([][]byte, error)
	PutCheckpoint(ctx context.Context, size int64, note []byte) error
	LatestCheckpoint(ctx context.Context) (int64, []byte, error)
}

// Config configures a Log.
type Config struct {
	Store  Store
	Origin string
	// Signer signs checkpoints; its name must be Origin.
	Signer note.Signer
	// Verifier is the published verifier key (name+hash+base64).
	Verifier string
	// Interval between checks for growth; default 500ms (so a growing
	// log is checkpointed at least every second).
	Interval time.Duration
	Now      func() time.Time
}

// Log is safe for concurrent use.
type Log struct {
	cfg Config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// hmu guards hashes: stored hashes already read, which never change,
	// so proofs mostly read only their lowest levels from the store.
	hmu    sync.Mutex
	hashes map[int64]merkle.Hash

	// mu serializes signing and guards the fields below.
	mu     sync.Mutex
	size   int64
	signed []byte
	cosigs map[string][]byte // witness name -> cosignature line for size
}

// New returns a log; Start begins publishing.
func New(cfg Config) *Log {
	if cfg.Interval == 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Log{cfg: cfg, size: -1, cosigs: map[string][]byte{}, hashes: map[int64]merkle.Hash{}}
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.cfg.Origin }

// VerifierKey returns the log's note verifier key.
func (l *Log) VerifierKey() string { return l.cfg.Verifier }

// Start loads the latest checkpoint and publishes new ones in the
// background until Close.
func (l *Log) Start(ctx context.Context) error {
	size, signed, err := l.cfg.Store.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.size, l.signed = size, signed
	l.mu.Unlock()
	if _, err := l.Publish(ctx); err != nil {
		return err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(l.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-l.ctx.Done():
				return
			case <-t.C:
				l.Publish(l.ctx)
			}
		}
	}()
	return nil
}

// Close stops publishing.
func (l *Log) Close(ctx context.Context) error {
	if l.cancel != nil {
		l.cancel()
		l.wg.Wait()
	}
	return nil
}

// maxCachedHashes bounds the stored hashes a log keeps in memory (about
// 10 MB).
const maxCachedHashes = 1 << 17

// A HashCacher is a Store that keeps the hashes it has read in memory
// itself, as the SQLite cell store does; a Log then keeps no copy.
type HashCacher interface {
	CachesHashes() bool
}

// HashReader returns a reader of the store's stored hashes. Unless the
// store caches them itself ([HashCacher]), hashes once read are kept
// (bounded): a stored hash never changes, and the upper levels are shared
// by every proof.
func (l *Log) HashReader(ctx context.Context) merkle.HashReader {
	if hc, ok := l.cfg.Store.(HashCacher); ok && hc.CachesHashes() {
		return merkle.HashReaderFunc(func(idx []int64) ([]merkle.Hash, error) {
			hs, err := l.cfg.Store.ReadHashes(ctx, idx)
			if err != nil {
				return nil, err
			}
			out := make([]merkle.Hash, len(hs))
			for i, h := range hs {
				out[i] = merkle.Hash(h)
			}
			return out, nil
		})
	}
	return merkle.HashReaderFunc(func(idx []int64) ([]merkle.Hash, error) {
		out := make([]merkle.Hash, len(idx))
		var miss []int64
		var at []int
		l.hmu.Lock()
		for i, id := range idx {
			if h, ok := l.hashes[id]; ok {
				out[i] = h
			} else {
				miss = append(miss, id)
				at = append(at, i)
			}
		}
		l.hmu.Unlock()
		if len(miss) == 0 {
			return out, nil
		}
		hs, err := l.cfg.Store.ReadHashes(ctx, miss)
		if err != nil {
			return nil, err
		}
		l.hmu.Lock()
		for j, h := range hs {
			out[at[j]] = merkle.Hash(h)
			if len(l.hashes) >= maxCachedHashes {
				for k := range l.hashes {
					delete(l.hashes, k)
					break
				}
			}
			l.hashes[miss[j]] = merkle.Hash(h)
		}
		l.hmu.Unlock()
		return out, nil
	})
}

// Publish signs and stores a checkpoint of the current size if the log
// grew, and returns the latest signed checkpoint.
func (l *Log) Publish(ctx context.Context) (*Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.cfg.Store.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	if n > l.size || l.signed == nil {
		root, err := merkle.TreeHash(n, l.HashReader(ctx))
		if err != nil {
			return nil, fmt.Errorf("tlog: tree hash at %d: %w", n, err)
		}
		signed, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: l.cfg.Origin, Size: n, Hash: root}, l.cfg.Signer)
		if err != nil {
			return nil, err
		}
		if err := l.cfg.Store.PutCheckpoint(ctx, n, signed); err != nil {
			return nil, err
		}
		l.size, l.signed = n, signed
		l.cosigs = map[string][]byte{}
	}
	return l.headLocked()
}

// Head is a signed checkpoint and what it says.
type Head struct {
	Size int64
	Root merkle.Hash
	// Signed is the signed note, with any cosignatures.
	Signed []byte
}

func (l *Log) headLocked() (*Head, error) {
	signed := l.signed
	if len(l.cosigs) > 0 {
		var lines [][]byte
		for _, c := range l.cosigs {
			lines = append(lines, c)
		}
		var err error
		signed, err = checkpoint.AddCosignatures(l.signed, lines...)
		if err != nil {
			return nil, err
		}
	}
	body, err := checkpoint.Body(l.signed)
	if err != nil {
		return nil, err
	}
	cp, err := checkpoint.Parse(body)
	if err != nil {
		return nil, err
	}
	return &Head{Size: cp.Size, Root: cp.Hash, Signed: signed}, nil
}

// Latest returns the latest checkpoint, publishing one first if the log
// grew since, so proofs are always against a current checkpoint.
func (l *Log) Latest(ctx context.Context) (*Head, error) { return l.Publish(ctx) }

// Cosigned returns the latest checkpoint as published, without signing a
// new one.
func (l *Log) Cosigned() (*Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signed == nil {
		return nil, errors.New("tlog: no checkpoint yet")
	}
	return l.headLocked()
}

// AddCosignature attaches a witness's cosignature line to the checkpoint
// of the given size, if it is still the latest.
func (l *Log) AddCosignature(witness string, size int64, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if size == l.size {
		l.cosigs[witness] = line
	}
}

// ProveInclusion returns the inclusion proof of leaf index in a tree of size.
func (l *Log) ProveInclusion(ctx context.Context, index, size int64) ([]merkle.Hash, error) {
	return merkle.ProveInclusion(index, size, l.HashReader(ctx))
}

// ProveConsistency returns the consistency proof between two sizes.
func (l *Log) ProveConsistency(ctx context.Context, size1, size2 int64) ([]merkle.Hash, error) {
	return merkle.ProveConsistency(size1, size2, l.HashReader(ctx))
}

// ErrBeyond is returned for a tile or proof beyond the published size.
var ErrBeyond = domicile.Errorf(domicile.ENotFound, "beyond the latest checkpoint")
