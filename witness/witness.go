// Package witness implements the cosigning logic of a transparency log
// witness (C2SP tlog-witness semantics, C2SP tlog-cosignature output),
// independent of transport and storage.
//
// A [Witness] holds its own cosigner key and, for each log it watches, the
// log's verifier key. For each log it remembers, in a [State], the last
// checkpoint it cosigned. It cosigns a new checkpoint only if the log
// signed it and it is consistent with that last one: never a smaller tree
// (rollback, [*RollbackError]), never a different root at the same size
// (fork, [*ForkError]), and only with a valid consistency proof
// ([*ProofError]). Because the state is durable ([NewFileState]), a log
// that forks is caught across restarts of the witness too.
//
// The first checkpoint seen from a log is trusted on first use.
package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"domicile/checkpoint"
	"domicile/merkle"
)

// LogState is what a witness remembers of a log: the last checkpoint it
// cosigned.
type LogState struct {
	// Checkpoint is the signed checkpoint, as received from the log.
	Checkpoint []byte
	// Size and Hash are the checkpoint's tree size and root hash.
	Size int64
	Hash merkle.Hash
}

// State stores the last cosigned checkpoint of each log, by origin.
//
// Implementations must be safe for concurrent use.
type State interface {
	// Load returns the state of the log with the given origin; ok is false
	// if there is none.
	Load(ctx context.Context, origin string) (st LogState, ok bool, err error)
	// Store records st as the state of origin. It MUST be durable when it
	// returns nil: a witness cosigns only after Store succeeds.
	Store(ctx context.Context, origin string, st LogState) error
}

// Config configures a [Witness].
type Config struct {
	// Cosigner is the witness's own key.
	Cosigner *checkpoint.Cosigner
	// Logs are the verifier keys ("<origin>+<key ID>+<key>") of the logs
	// the witness cosigns; each key's name is its log's origin.
	Logs []string
	// State keeps the last cosigned checkpoint of each log.
	State State
}

// A Witness cosigns checkpoints of known logs. It is safe for concurrent
// use; Cosign calls are serialized.
type Witness struct {
	cosigner *checkpoint.Cosigner
	state    State
	// lmu guards logs, which AddLog may extend while the witness serves.
	lmu  sync.RWMutex
	logs map[string]note.Verifier // by origin
	// added are the keys AddLog added, by origin.
	added map[string]string

	// mu serializes Cosign so that load, check and store are atomic.
	mu sync.Mutex
}

// New returns a witness for cfg.
func New(cfg Config) (*Witness, error) {
	if cfg.Cosigner == nil || cfg.State == nil {
		return nil, errors.New("witness: Cosigner and State are required")
	}
	w := &Witness{cosigner: cfg.Cosigner, state: cfg.State, logs: map[string]note.Verifier{}}
	for _, k := range cfg.Logs {
		v, err := checkpoint.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("witness: log key: %w", err)
		}
		if _, dup := w.logs[v.Name()]; dup {
			return nil, fmt.Errorf("witness: two keys for log %s", v.Name())
		}
		w.logs[v.Name()] = v
	}
	return w, nil
}

// log returns the verifier of the log with origin, if the witness
// cosigns it.
func (w *Witness) log(origin string) (note.Verifier, bool) {
	w.lmu.RLock()
	defer w.lmu.RUnlock()
	v, ok := w.logs[origin]
	return v, ok
}

// AddLog adds a log the witness cosigns, by its verifier key, while it
// serves: a cell process learns its sibling cells' log keys when it first
// reaches them. A key for a log the witness already cosigns under another
// key is refused: a log's key is pinned for the witness's life.
func (w *Witness) AddLog(key string) error {
	v, err := checkpoint.NewVerifier(key)
	if err != nil {
		return fmt.Errorf("witness: log key: %w", err)
	}
	w.lmu.Lock()
	defer w.lmu.Unlock()
	if _, ok := w.logs[v.Name()]; ok {
		if w.added[v.Name()] != key {
			return fmt.Errorf("witness: log %s already has another key", v.Name())
		}
		return nil
	}
	if w.added == nil {
		w.added = map[string]string{}
	}
	w.logs[v.Name()], w.added[v.Name()] = v, key
	return nil
}

// Verifier returns the witness's cosignature verifier key.
func (w *Witness) Verifier() string { return w.cosigner.Verifier() }

// LastSize returns the size of the last checkpoint cosigned for the log
// origin (ok false if none), the size a consistency proof offered to Cosign
// must start from. A transport can return it to a log whose proof started
// elsewhere (tlog-witness answers 409 Conflict with it).
func (w *Witness) LastSize(ctx context.Context, origin string) (size int64, ok bool, err error) {
	if _, known := w.log(origin); !known {
		return 0, false, ErrUnknownLog
	}
	st, ok, err := w.state.Load(ctx, origin)
	if err != nil {
		return 0, false, fmt.Errorf("witness: load state: %w", err)
	}
	return st.Size, ok, nil
}

// ErrUnknownLog is returned by Cosign for a checkpoint whose origin is not
// one of the witness's logs. A server should answer 404.
var ErrUnknownLog = errors.New("witness: unknown log")

// ForkError reports two checkpoints of the same size with different roots,
// both signed by the log: proof that the log showed two histories.
type ForkError struct {
	// Old is the checkpoint the witness cosigned before; New the one it
	// was asked to cosign.
	Old, New []byte
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("witness: log fork: two signed checkpoints of the same size with different roots\n-- cosigned --\n%s-- offered --\n%s", e.Old, e.New)
}

// RollbackError reports a checkpoint smaller than the one the witness
// cosigned before.
type RollbackError struct {
	Old, New []byte
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("witness: log rollback: offered checkpoint is smaller than the one cosigned\n-- cosigned --\n%s-- offered --\n%s", e.Old, e.New)
}

// ProofError reports a consistency proof, from the last cosigned
// checkpoint to the offered one, that does not verify.
type ProofError struct {
	Old, New []byte
	Proof    [][]byte
	Err      error
}

func (e *ProofError) Error() string {
	return fmt.Sprintf("witness: consistency proof does not verify: %v\n-- cosigned --\n%s-- offered --\n%s", e.Err, e.Old, e.New)
}

// Unwrap returns the proof verification failure.
func (e *ProofError) Unwrap() error { return e.Err }

// MaxProofHashes bounds the consistency proof accepted by Cosign.
const MaxProofHashes = 128

// Cosign verifies the log's signature on signed, checks that it is
// consistent with the last checkpoint cosigned for its log (consistency is
// the RFC 6962 consistency proof from that checkpoint's size), stores it as
// the new state, and returns the witness's cosignature line
// ("— <name> <base64>\n") to append to the checkpoint.
//
// It returns [ErrMalformed], [ErrUnknownLog], a *checkpoint.SignatureError,
// [*RollbackError], [*ForkError] or [*ProofError] when it refuses.
func (w *Witness) Cosign(ctx context.Context, signed []byte, proof [][]byte) ([]byte, error) {
	return w.add(ctx, -1, signed, proof)
}

// ConflictError is returned by [Witness.AddCheckpoint] when the old size
// offered is not the size of the last checkpoint cosigned for the log
// (C2SP tlog-witness: 409 Conflict, with that size in the body). The log
// should send a consistency proof from Size instead.
type ConflictError struct {
	// Size is the size of the last checkpoint cosigned (0 if none).
	Size int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness: the last checkpoint cosigned for this log has size %d", e.Size)
}

// ErrMalformed is returned for a signed checkpoint that is not a signed
// note, or a checkpoint or proof over its limit ([checkpoint.MaxSignedSize],
// [MaxProofHashes]). A server should answer 400.
var ErrMalformed = errors.New("witness: malformed signed checkpoint, or checkpoint or proof too large")

// ErrOldSize is returned by [Witness.AddCheckpoint] when the old size is
// larger than the offered checkpoint's size (C2SP tlog-witness: 400).
var ErrOldSize = errors.New("witness: old size is larger than the checkpoint's size")

// AddCheckpoint is the C2SP tlog-witness add-checkpoint operation: it
// cosigns signed given a consistency proof from old, which must be the size
// of the last checkpoint cosigned for the log (0 if none). The check of old
// against the stored state and the update of the state are atomic, as the
// specification requires.
//
// Besides the refusals of [Witness.Cosign], it returns [ErrOldSize] when
// old is larger than the checkpoint, and a [*ConflictError] carrying the
// witness's size when old is not that size. A proof from old 0 must be
// empty, and a checkpoint of size 0 must have the empty tree's root
// ([*ProofError] otherwise).
//
// Its signature is that of tlog.Witness, so a log can submit to a witness
// in the same process as to one over HTTP.
func (w *Witness) AddCheckpoint(ctx context.Context, old int64, proof [][]byte, signed []byte) ([]byte, error) {
	if old < 0 {
		return nil, ErrOldSize
	}
	return w.add(ctx, old, signed, proof)
}

// add cosigns signed. old is the size the caller's proof starts from, or
// -1 for "the size last cosigned, whatever it is" (Cosign).
func (w *Witness) add(ctx context.Context, old int64, signed []byte, proof [][]byte) ([]byte, error) {
	if len(signed) > checkpoint.MaxSignedSize || len(proof) > MaxProofHashes {
		return nil, ErrMalformed
	}
	body, err := checkpoint.Body(signed)
	if err != nil {
		return nil, ErrMalformed
	}
	origin, _, _ := bytes.Cut(body, []byte("\n"))
	v, ok := w.log(string(origin))
	if !ok {
		return nil, ErrUnknownLog
	}
	cp, err := checkpoint.Open(signed, v)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	if old > cp.Size {
		return nil, ErrOldSize
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	st, seen, err := w.state.Load(ctx, cp.Origin)
	if err != nil {
		return nil, fmt.Errorf("witness: load state: %w", err)
	}
	if old >= 0 && old != st.Size {
		return nil, &ConflictError{Size: st.Size}
	}
	switch {
	case seen && cp.Size < st.Size:
		return nil, &RollbackError{Old: st.Checkpoint, New: cp.Raw}
	case seen && cp.Size == st.Size && cp.Hash != st.Hash:
		return nil, &ForkError{Old: st.Checkpoint, New: cp.Raw}
	case cp.Size == 0 && cp.Hash != merkle.EmptyRoot(),
		old == 0 && len(proof) > 0,
		seen && cp.Size == st.Size && len(proof) > 0:
		// A tree of size 0 has one root, and a proof from it, or between
		// equal sizes, is empty (RFC 6962, tlog-witness): anything else
		// is not a proof of consistency.
		return nil, &ProofError{Old: st.Checkpoint, New: cp.Raw, Proof: proof, Err: errors.New("a proof from size 0 or between equal sizes must be empty, and the root of size 0 is the empty tree's")}
	case !seen:
		// First sight of this log: trusted on first use.
	case cp.Size > st.Size:
		hs, err := merkle.HashesFromBytes(proof)
		if err != nil {
			return nil, &ProofError{Old: st.Checkpoint, New: cp.Raw, Proof: proof, Err: err}
		}
		if err := merkle.VerifyConsistency(hs, st.Size, cp.Size, st.Hash, cp.Hash); err != nil {
			return nil, &ProofError{Old: st.Checkpoint, New: cp.Raw, Proof: proof, Err: err}
		}
	}
	if err := w.state.Store(ctx, cp.Origin, LogState{Checkpoint: cp.Raw, Size: cp.Size, Hash: cp.Hash}); err != nil {
		return nil, fmt.Errorf("witness: store state: %w", err)
	}
	line, err := checkpoint.Cosign(body, w.cosigner)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	return line, nil
}
