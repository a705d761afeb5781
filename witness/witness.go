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
	logs     map[string]note.Verifier // by origin

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

// Verifier returns the witness's cosignature verifier key.
func (w *Witness) Verifier() string { return w.cosigner.Verifier() }

// LastSize returns the size of the last checkpoint cosigned for the log
// origin (ok false if none), the size a consistency proof offered to Cosign
// must start from. A transport can return it to a log whose proof started
// elsewhere (tlog-witness answers 409 Conflict with it).
func (w *Witness) LastSize(ctx context.Context, origin string) (size int64, ok bool, err error) {
	if _, known := w.logs[origin]; !known {
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
// It returns [ErrUnknownLog], a *checkpoint.SignatureError,
// [*RollbackError], [*ForkError] or [*ProofError] when it refuses.
func (w *Witness) Cosign(ctx context.Context, signed []byte, proof [][]byte) ([]byte, error) {
	if len(signed) > checkpoint.MaxSignedSize || len(proof) > MaxProofHashes {
		return nil, errors.New("witness: request too large")
	}
	body, err := checkpoint.Body(signed)
	if err != nil {
		return nil, errors.New("witness: malformed signed checkpoint")
	}
	origin, _, _ := bytes.Cut(body, []byte("\n"))
	v, ok := w.logs[string(origin)]
	if !ok {
		return nil, ErrUnknownLog
	}
	cp, err := checkpoint.Open(signed, v)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	old, ok, err := w.state.Load(ctx, cp.Origin)
	if err != nil {
		return nil, fmt.Errorf("witness: load state: %w", err)
	}
	if ok {
		switch {
		case cp.Size < old.Size:
			return nil, &RollbackError{Old: old.Checkpoint, New: cp.Raw}
		case cp.Size == old.Size && cp.Hash != old.Hash:
			return nil, &ForkError{Old: old.Checkpoint, New: cp.Raw}
		case cp.Size > old.Size:
			hs, err := merkle.HashesFromBytes(proof)
			if err != nil {
				return nil, &ProofError{Old: old.Checkpoint, New: cp.Raw, Proof: proof, Err: err}
			}
			if err := merkle.VerifyConsistency(hs, old.Size, cp.Size, old.Hash, cp.Hash); err != nil {
				return nil, &ProofError{Old: old.Checkpoint, New: cp.Raw, Proof: proof, Err: err}
			}
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
