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
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	// Required are the witnesses whose valid cosignatures a checkpoint
	// should carry before the log serves it (Cosigned): while a newer
	// checkpoint waits for them, the last one that carries them all is
	// served instead, for up to WitnessWait. Verifiers that demand these
	// cosignatures then never see a checkpoint without them just because
	// it is new. Empty: the latest checkpoint is served at once.
	Required []*checkpoint.CosignatureVerifier
	// WitnessWait bounds how long a newer checkpoint may wait for the
	// required cosignatures (default [DefaultWitnessWait]). After that the
	// log serves its latest checkpoint with the cosignatures it has, so a
	// verifier demanding the missing ones fails, naming them, rather than
	// seeing a log that silently stopped growing.
	WitnessWait time.Duration
}

// DefaultWitnessWait is the default of Config.WitnessWait.
const DefaultWitnessWait = 10 * time.Second

// maxPending bounds the recent checkpoints a log keeps to attach
// cosignatures to: a witness's answer for a checkpoint that a newer one
// replaced meanwhile still counts, so slow witnesses agree on one.
const maxPending = 16

// pending is a signed checkpoint and the cosignature lines gathered for
// it, by witness.
type pending struct {
	size   int64
	signed []byte
	cosigs map[string][]byte
	// at is when the log signed it.
	at time.Time
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

	// verifier is the log's own key, parsed by Start.
	verifier note.Verifier

	// mu serializes signing and guards the fields below.
	mu     sync.Mutex
	size   int64
	signed []byte
	// pend are the recent checkpoints, oldest first; the last one is
	// signed (size, signed). Entries are never shared outside mu.
	pend []*pending
	// witnessed is the latest checkpoint that carries every required
	// cosignature (with the cosignatures), or nil; waiting is when the
	// first checkpoint after it was signed (zero if there is none).
	witnessed *pending
	waiting   time.Time
}

// New returns a log; Start begins publishing.
func New(cfg Config) *Log {
	if cfg.Interval == 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WitnessWait <= 0 {
		cfg.WitnessWait = DefaultWitnessWait
	}
	return &Log{cfg: cfg, size: -1, hashes: map[int64]merkle.Hash{}}
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.cfg.Origin }

// VerifierKey returns the log's note verifier key.
func (l *Log) VerifierKey() string { return l.cfg.Verifier }

// Start loads the latest checkpoint and publishes new ones in the
// background until Close.
func (l *Log) Start(ctx context.Context) error {
	v, err := checkpoint.NewVerifier(l.cfg.Verifier)
	if err != nil {
		return fmt.Errorf("tlog: %w", err)
	}
	l.verifier = v
	size, signed, err := l.cfg.Store.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.size, l.signed = size, signed
	if signed != nil {
		l.pushLocked(size, signed)
	}
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
		l.pushLocked(n, signed)
	}
	return l.headLocked(l.pend[len(l.pend)-1])
}

// pushLocked makes (size, signed) the latest of the recent checkpoints.
func (l *Log) pushLocked(size int64, signed []byte) {
	if len(l.pend) == maxPending {
		l.pend = append(l.pend[:0], l.pend[1:]...)
	}
	p := &pending{size: size, signed: signed, cosigs: map[string][]byte{}, at: l.cfg.Now()}
	l.pend = append(l.pend, p)
	if l.waiting.IsZero() {
		l.waiting = p.at
	}
}

// Head is a signed checkpoint and what it says.
type Head struct {
	Size int64
	Root merkle.Hash
	// Signed is the signed note, with any cosignatures.
	Signed []byte
}

// headLocked returns p with its cosignatures.
func (l *Log) headLocked(p *pending) (*Head, error) {
	signed, err := p.cosigned()
	if err != nil {
		return nil, err
	}
	body, err := checkpoint.Body(p.signed)
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

// cosigned returns the signed checkpoint with its cosignature lines, in
// the order of the witnesses' names.
func (p *pending) cosigned() ([]byte, error) {
	if len(p.cosigs) == 0 {
		return p.signed, nil
	}
	names := make([]string, 0, len(p.cosigs))
	for n := range p.cosigs {
		names = append(names, n)
	}
	slices.Sort(names)
	lines := make([][]byte, len(names))
	for i, n := range names {
		lines[i] = p.cosigs[n]
	}
	return checkpoint.AddCosignatures(p.signed, lines...)
}

// ErrNotWitnessed is returned by Cosigned while no checkpoint carries the
// required cosignatures yet and the latest has waited less than
// WitnessWait for them: the checkpoint is to be asked for again shortly.
var ErrNotWitnessed = &domicile.Error{Code: domicile.EUnavailable, Message: "no checkpoint carries the required witnesses' cosignatures yet", RetryAfter: 1}

// Cosigned returns the checkpoint the log serves, without signing a new
// one: the latest, with the cosignatures gathered for it, unless
// Config.Required lists witnesses and it lacks some of their
// cosignatures; then the latest checkpoint that carries them all, while
// the checkpoints after it have waited less than WitnessWait
// ([ErrNotWitnessed] if there is none yet).
func (l *Log) Cosigned() (*Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pend) == 0 {
		return nil, errors.New("tlog: no checkpoint yet")
	}
	latest := l.pend[len(l.pend)-1]
	if len(l.cfg.Required) == 0 || (l.witnessed != nil && l.witnessed.size == latest.size) {
		return l.headLocked(latest)
	}
	if l.cfg.Now().Sub(l.waiting) >= l.cfg.WitnessWait {
		return l.headLocked(latest)
	}
	if l.witnessed == nil {
		return nil, ErrNotWitnessed
	}
	return l.headLocked(l.witnessed)
}

// AddCosignature attaches a witness's cosignature line to the checkpoint
// of the given size, if it is one of the recent ones. The caller vouches
// for the line (an in-process witness); use AddCosignatures for lines
// from elsewhere.
func (l *Log) AddCosignature(witness string, size int64, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.pend {
		if p.size == size {
			p.cosigs[witness] = line
			l.witnessLocked(p)
			return
		}
	}
}

// NoCosignatureError reports a witness's answer that holds no valid
// cosignature by the witness's key: a witness that changed its key, or
// something else answering at its address.
type NoCosignatureError struct {
	// Name and KeyHash identify the key the cosignature had to verify
	// with.
	Name    string
	KeyHash uint32
	// Answer is what the witness answered (the start of it).
	Answer []byte
}

func (e *NoCosignatureError) Error() string {
	return fmt.Sprintf("tlog: the witness's answer holds no valid cosignature by its key %s+%08x (has it changed its key?); answer:\n%s", e.Name, e.KeyHash, e.Answer)
}

// AddCosignatures picks, from a witness's answer (note signature lines),
// the cosignature by key on the checkpoint of the given size, verifies it,
// and attaches it. It returns a [*NoCosignatureError] if the answer holds
// no valid cosignature by key; an answer for a checkpoint that is no
// longer one of the recent ones is dropped without error.
func (l *Log) AddCosignatures(key *checkpoint.CosignatureVerifier, size int64, answer []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var p *pending
	for _, q := range l.pend {
		if q.size == size {
			p = q
		}
	}
	if p == nil {
		return nil
	}
	for _, line := range bytes.SplitAfter(answer, []byte("\n")) {
		withLine, err := checkpoint.AddCosignatures(p.signed, line)
		if err != nil {
			continue
		}
		if _, err := checkpoint.Open(withLine, l.verifier, key); err == nil {
			p.cosigs[key.Name()+"+"+strconv.FormatUint(uint64(key.KeyHash()), 16)] = line
			l.witnessLocked(p)
			return nil
		}
	}
	if len(answer) > 1024 {
		answer = answer[:1024]
	}
	return &NoCosignatureError{Name: key.Name(), KeyHash: key.KeyHash(), Answer: answer}
}

// witnessLocked makes p the witnessed checkpoint if it carries every
// required cosignature and is not older than the one before.
func (l *Log) witnessLocked(p *pending) {
	if len(l.cfg.Required) == 0 || (l.witnessed != nil && p.size < l.witnessed.size) {
		return
	}
	signed, err := p.cosigned()
	if err != nil {
		return
	}
	if _, err := checkpoint.Open(signed, l.verifier, l.cfg.Required...); err != nil {
		return
	}
	l.witnessed = p
	l.waiting = time.Time{}
	for _, q := range l.pend {
		if q.size > p.size {
			l.waiting = q.at
			break
		}
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
