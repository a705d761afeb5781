package tlog

import (
	"context"
	"log/slog"
	"time"

	"domicile/witness"
)

// Cosigning has one cell's witness cosign the other cells' logs: every
// interval it offers each log's latest checkpoint, with a consistency
// proof from the size it last cosigned, and attaches the cosignature to
// that checkpoint. A refusal (a fork, a rollback, a bad proof) is logged
// with its evidence and the checkpoint stays uncosigned by this witness.
type Cosigning struct {
	Name     string // the witness's name, its cosignature key name
	Witness  *witness.Witness
	Logs     []*Log
	Interval time.Duration
	Logger   *slog.Logger
}

// Run cosigns until ctx ends.
func (c *Cosigning) Run(ctx context.Context) {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		for _, l := range c.Logs {
			if err := c.CosignOnce(ctx, l); err != nil && ctx.Err() == nil && c.Logger != nil {
				c.Logger.Error("witness refused a checkpoint", slog.String("witness", c.Name), slog.String("log", l.Origin()), slog.String("evidence", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CosignOnce offers l's latest checkpoint to the witness.
func (c *Cosigning) CosignOnce(ctx context.Context, l *Log) error {
	l.mu.Lock()
	signed, size := l.signed, l.size
	l.mu.Unlock()
	if signed == nil {
		return nil
	}
	last, ok, err := c.Witness.LastSize(ctx, l.Origin())
	if err != nil {
		return err
	}
	var proof [][]byte
	if ok && last > 0 && last < size {
		p, err := l.ProveConsistency(ctx, last, size)
		if err != nil {
			return err
		}
		for _, h := range p {
			proof = append(proof, append([]byte(nil), h[:]...))
		}
	}
	line, err := c.Witness.Cosign(ctx, signed, proof)
	if err != nil {
		return err
	}
	l.AddCosignature(c.Name, size, line)
	return nil
}
