package tlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"domicile/checkpoint"
	"domicile/witness"
)

// A Witness cosigns a log's checkpoints: the C2SP tlog-witness
// add-checkpoint operation. httpapi.WitnessClient is one over HTTP, and a
// *witness.Witness one in the same process.
type Witness interface {
	// AddCheckpoint offers signed with the RFC 6962 consistency proof
	// from old, the size of the last checkpoint the witness cosigned for
	// this log (0 if none, or if unknown), and returns its answer: note
	// signature lines, the cosignature among them. It returns a
	// *witness.ConflictError carrying the witness's size when old is not
	// that size.
	AddCheckpoint(ctx context.Context, old int64, proof [][]byte, signed []byte) ([]byte, error)
}

// A RemoteWitness is a witness a log submits its checkpoints to.
type RemoteWitness struct {
	// Name identifies the witness in logs (the deployment's name for it).
	Name string
	// Key verifies its cosignatures; answers without a valid one by this
	// key are refused.
	Key *checkpoint.CosignatureVerifier
	// Witness is how to reach it.
	Witness Witness
}

// Witnessing submits one log's checkpoints to its witnesses, with a
// consistency proof from the size each one last cosigned, verifies each
// answer against the witness's key, and attaches the cosignatures to the
// checkpoint (Log.AddCosignatures), which the log then serves. A witness
// that refuses or cannot be reached is logged once (and again when it
// recovers), and asked again with a backoff of up to MaxBackoff; the
// others are not held up by it.
type Witnessing struct {
	Log       *Log
	Witnesses []RemoteWitness
	// Interval between looks at the log for a new checkpoint; default
	// 500 ms, the log's own publishing interval.
	Interval time.Duration
	// Timeout bounds one request to a witness; default 10 s.
	Timeout time.Duration
	// MaxBackoff bounds the wait before asking a failing witness again;
	// default 30 s.
	MaxBackoff time.Duration
	Logger     *slog.Logger
	// Now is the clock of the backoff; default time.Now.
	Now func() time.Time
}

// remoteState is what Witnessing knows of one witness.
type remoteState struct {
	// old is the size the witness last cosigned, as far as known.
	old int64
	// done is the size of the last checkpoint it cosigned for us (-1).
	done int64
	// failures counts consecutive failures; next is when to try again;
	// lastErr is the last failure's errorKind, logged when it changes.
	failures int
	next     time.Time
	lastErr  string
}

// Run submits until ctx ends.
func (w *Witnessing) Run(ctx context.Context) {
	if w.Interval <= 0 {
		w.Interval = 500 * time.Millisecond
	}
	if w.Timeout <= 0 {
		w.Timeout = 10 * time.Second
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = 30 * time.Second
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	states := make([]*remoteState, len(w.Witnesses))
	for i := range states {
		states[i] = &remoteState{done: -1}
	}
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		w.round(ctx, states)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round offers the log's latest checkpoint to every witness that has not
// cosigned it and is not backing off, in parallel, and waits for them.
func (w *Witnessing) round(ctx context.Context, states []*remoteState) {
	w.Log.mu.Lock()
	size, signed := w.Log.size, w.Log.signed
	w.Log.mu.Unlock()
	if signed == nil {
		return
	}
	now := w.Now()
	var wg sync.WaitGroup
	for i, st := range states {
		if st.done == size || now.Before(st.next) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.report(ctx, w.Witnesses[i], st, w.submit(ctx, w.Witnesses[i], st, size, signed))
		}()
	}
	wg.Wait()
}

// submit offers (size, signed) to rw, and once more from the witness's
// size if it answers that the proof starts from the wrong size.
func (w *Witnessing) submit(ctx context.Context, rw RemoteWitness, st *remoteState, size int64, signed []byte) error {
	for range 2 {
		old := st.old
		if old > size {
			return &WitnessAheadError{WitnessSize: old, LogSize: size}
		}
		var proof [][]byte
		if old > 0 && old < size {
			p, err := w.Log.ProveConsistency(ctx, old, size)
			if err != nil {
				return fmt.Errorf("consistency proof from %d to %d: %w", old, size, err)
			}
			for _, h := range p {
				proof = append(proof, h[:])
			}
		}
		rctx, cancel := context.WithTimeout(ctx, w.Timeout)
		answer, err := rw.Witness.AddCheckpoint(rctx, old, proof, signed)
		cancel()
		var ce *witness.ConflictError
		if errors.As(err, &ce) {
			st.old = ce.Size
			continue
		}
		if err != nil {
			return err
		}
		if err := w.Log.AddCosignatures(rw.Key, size, answer); err != nil {
			return err
		}
		st.old, st.done = size, size
		return nil
	}
	return errors.New("the witness answered twice that the proof starts from the wrong size")
}

// WitnessAheadError reports a witness that has cosigned a larger tree of
// this log than the log has: the log lost leaves (restored from an old
// backup, say), or someone else signed checkpoints with its key. Either
// way the log's history as the witness saw it is no longer the log's.
type WitnessAheadError struct {
	WitnessSize, LogSize int64
}

func (e *WitnessAheadError) Error() string {
	return fmt.Sprintf("tlog: the witness has cosigned a tree of %d leaves for this log, larger than its %d: the log lost leaves, or its key signed another history", e.WitnessSize, e.LogSize)
}

// report logs a change in a witness's health and sets its backoff.
func (w *Witnessing) report(ctx context.Context, rw RemoteWitness, st *remoteState, err error) {
	attrs := []any{slog.String("log", w.Log.Origin()), slog.String("witness", rw.Name)}
	if err == nil {
		if st.failures > 0 {
			w.Logger.Info("witness cosigns again", attrs...)
		}
		st.failures, st.next, st.lastErr = 0, time.Time{}, ""
		return
	}
	if ctx.Err() != nil {
		return
	}
	st.failures++
	backoff := w.Interval << min(st.failures, 16)
	st.next = w.Now().Add(min(backoff, w.MaxBackoff))
	if kind := errorKind(err); kind != st.lastErr {
		st.lastErr = kind
		level := slog.LevelWarn
		if errors.As(err, new(*WitnessAheadError)) {
			level = slog.LevelError
		}
		w.Logger.Log(ctx, level, "witness did not cosign", append(attrs, slog.String("err", err.Error()))...)
	}
}

// errorKind is what must change in a witness's failure for it to be
// logged again: the text, except for an answer without our cosignature,
// whose text changes with every timestamp.
func errorKind(err error) string {
	var nc *NoCosignatureError
	if errors.As(err, &nc) {
		return "no cosignature"
	}
	return err.Error()
}
