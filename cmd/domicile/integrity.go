package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile"
	"domicile/checkpoint"
	"domicile/tlog"
)

// cellCheck is the outcome of one cell's integrity check on open
// (tlog.Check): sound, tiles rebuilt, or refused.
type cellCheck struct {
	Cell string
	// Store is the cell's store as resolveCellStore chose it (zero when
	// it could not choose).
	Store  cellStorage
	Result *tlog.CheckResult
	// Err, when set, is why the cell refuses to serve: an
	// *tlog.IntegrityError with the evidence, or the failure to check.
	Err  error
	Took time.Duration
}

// openCheckedStore opens the store of cell cc under dir (SQLite or Pebble,
// or the PostgreSQL schema its store section names; resolveCellStore
// says which) and checks its log against its last signed checkpoint
// (tlog.Check), rebuilding tiles that disagree with the events. The
// outcome is appended to checks. A cell that fails the check, or whose
// store cannot be chosen (*storeChoiceError), is refused: its store is
// closed and openCheckedStore returns nil and no error, so that the rest
// of the deployment opens and serves. An error is returned only when the
// store cannot be opened at all, which fails the whole start as before.
func openCheckedStore(ctx context.Context, dir string, cc domicile.CellConfig, checks *[]cellCheck) (cellStore, cellStorage, error) {
	t0 := time.Now()
	ck := cellCheck{Cell: cc.ID}
	defer func() { ck.Took = time.Since(t0); *checks = append(*checks, ck) }()
	cs, err := resolveCellStore(dir, cc)
	if err != nil {
		ck.Err = err
		return nil, cs, nil
	}
	ck.Store = cs
	v, err := logVerifier(dir, cc.ID)
	if err != nil {
		ck.Err = err
		return nil, cs, nil
	}
	missing := &tlog.IntegrityError{Reason: "the cell's database is missing, but its log has a signing key: the cell has served before", Event: -1}
	if cs.Kind != kindPostgres && !cs.Exists && v != nil {
		// A log key exists only once the cell has served: an empty store
		// now would silently start the log over.
		missing.Reason = "the cell's " + cs.Kind + " store " + cs.Path + " is missing, but its log has a signing key: the cell has served before"
		ck.Err = missing
		return nil, cs, nil
	}
	st, err := openCellStore(ctx, dir, cc, cs)
	if err != nil {
		return nil, cs, fmt.Errorf("cell %s: %w", cc.ID, err)
	}
	if cs.Kind == kindPostgres && v != nil {
		// The schema is created when absent: one that holds no
		// checkpoint under a log key that has signed is a new or
		// emptied database, not this cell's.
		size, _, err := st.LatestCheckpoint(ctx)
		if err != nil {
			st.Close()
			return nil, cs, fmt.Errorf("cell %s: %w", cc.ID, err)
		}
		if size < 0 {
			missing.Reason = "the cell's PostgreSQL schema " + cc.Store.Schema + " holds no checkpoint, but its log has a signing key: the cell has served before"
			ck.Err = missing
			st.Close()
			return nil, cs, nil
		}
	}
	ck.Result, ck.Err = tlog.Check(ctx, st, v)
	if ck.Err != nil {
		st.Close()
		return nil, cs, nil
	}
	return st, cs, nil
}

// logVerifier returns the verifier of a cell's log key, kept with its
// custody (custody/<cell>/log.key: a signer line and a verifier line), or
// nil when the cell has none yet.
func logVerifier(dir, cellID string) (note.Verifier, error) {
	path := filepath.Join(dir, "custody", cellID, "log.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	_, vkey, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if !ok {
		return nil, fmt.Errorf("log key %s: want a signer key line and a verifier key line", path)
	}
	v, err := checkpoint.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("log key %s: %w", path, err)
	}
	return v, nil
}

// refuseCells tells the router which cells refuse to serve, so that it
// answers their subjects 503 with a problem naming the cell and why.
func (rt *runtime) refuseCells() {
	for _, ck := range rt.checks {
		if ck.Err != nil {
			rt.router.SetUnavailable(ck.Cell, refusal(ck.Err))
		}
	}
}

// refusal is the sentence a client is told about a refused cell: the
// reason, without the evidence (which the server log and `domicile check`
// show).
func refusal(err error) string {
	var ie *tlog.IntegrityError
	if errors.As(err, &ie) {
		return "its stored log failed the integrity check on open: " + ie.Reason
	}
	var se *storeChoiceError
	if errors.As(err, &se) {
		return "its data directory holds a store of another kind than the deployment file names, or of both embedded kinds (the server log names them)"
	}
	return "its integrity check on open could not run"
}

// logChecks writes each cell's integrity check to the server log: a
// rebuild as a warning, a refusal as an error with its evidence.
func logChecks(log *slog.Logger, checks []cellCheck) {
	for _, ck := range checks {
		switch {
		case errors.As(ck.Err, new(*storeChoiceError)):
			log.Error("cell refuses to serve: its store cannot be chosen", slog.String("cell", ck.Cell), slog.String("reason", ck.Err.Error()))
		case ck.Err != nil:
			log.Error("cell refuses to serve: integrity check failed", slog.String("cell", ck.Cell), slog.String("evidence", evidence(ck.Err)))
		case ck.Result.Rebuilt:
			log.Warn("cell log tiles disagreed with its events and were rebuilt", slog.String("cell", ck.Cell),
				slog.Int64("bad_hashes", ck.Result.BadHashes), slog.String("first_bad", ck.Result.FirstBad),
				slog.Int64("events", ck.Result.Size), slog.Int64("checkpoint", ck.Result.Checkpoint), slog.Duration("took", ck.Took))
		default:
			log.Info("cell log integrity checked", slog.String("cell", ck.Cell), slog.String("store", ck.Store.describe()), slog.Int64("events", ck.Result.Size),
				slog.Int64("checkpoint", ck.Result.Checkpoint), slog.Duration("took", ck.Took))
		}
	}
}

// evidence returns an error's evidence: an IntegrityError's with its
// signed checkpoint, or the error.
func evidence(err error) string {
	var ie *tlog.IntegrityError
	if errors.As(err, &ie) {
		return ie.Evidence()
	}
	return err.Error()
}
