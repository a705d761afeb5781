package cell

import (
	"context"

	"domicile"
	"domicile/keyring"
)

// PublicLog is the part of a cell's storage that is public by design: the
// log's leaves (salted commitments and non-personal metadata), its Merkle
// hashes and signed checkpoints, and small named values such as keys'
// public parts and witness state. Publishing it is not a transfer
// (invariant 7); it holds no subject's data, reference or event text.
type PublicLog interface {
	domicile.LogReader
	domicile.CheckpointStore
}

// publicLog narrows a cell store to its PublicLog, passing through the
// store's hash-cache hint so the log does not cache twice: a type
// assertion on it finds no other method of the store.
type publicLog struct{ st PublicLog }

func (p publicLog) LogSize(ctx context.Context) (int64, error) { return p.st.LogSize(ctx) }
func (p publicLog) ReadHashes(ctx context.Context, idx []int64) ([][32]byte, error) {
	return p.st.ReadHashes(ctx, idx)
}
func (p publicLog) Leaves(ctx context.Context, start, end int64) ([][]byte, error) {
	return p.st.Leaves(ctx, start, end)
}
func (p publicLog) PutCheckpoint(ctx context.Context, size int64, note []byte) error {
	return p.st.PutCheckpoint(ctx, size, note)
}
func (p publicLog) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	return p.st.LatestCheckpoint(ctx)
}
func (p publicLog) Meta(ctx context.Context, key string) ([]byte, error) { return p.st.Meta(ctx, key) }
func (p publicLog) PutMeta(ctx context.Context, key string, value []byte) error {
	return p.st.PutMeta(ctx, key, value)
}

// CachesHashes reports whether the underlying store keeps the hashes it
// has read in memory (tlog.HashCacher).
func (p publicLog) CachesHashes() bool {
	hc, ok := p.st.(interface{ CachesHashes() bool })
	return ok && hc.CachesHashes()
}

// PublicLog returns the public part of the cell's storage: what the
// running log, the log endpoints and verifiers read.
func (c *Cell) PublicLog() PublicLog { return publicLog{c.store} }

// CommitStats returns the cell store's group-commit counters, if it keeps
// them.
func (c *Cell) CommitStats() (domicile.CommitStats, bool) {
	st, ok := c.store.(domicile.CommitStatser)
	if !ok {
		return domicile.CommitStats{}, false
	}
	return st.CommitStats(), true
}

// Backup writes a consistent copy of the cell's store, while it serves,
// into dir (which must not exist; see domicile.Backuper). No key of the
// cell's custody is in it: custody is backed up apart, or not at all
// (doc/deploy.md, "Backups"). A store that cannot copy itself online (a
// PostgreSQL cell: PostgreSQL's own tools do) is ENotImplemented.
func (c *Cell) Backup(ctx context.Context, dir string) (domicile.BackupStats, error) {
	b, ok := c.store.(domicile.Backuper)
	if !ok {
		return domicile.BackupStats{}, domicile.Errorf(domicile.ENotImplemented, "cell %s's store has no online backup here: back up its PostgreSQL schema with pg_dump or a base backup (doc/postgres.md, Operations)", c.id)
	}
	return b.Backup(ctx, dir)
}

// MemoryStats returns the cell store's engine memory, if the store
// reports it (domicile.MemoryStatser).
func (c *Cell) MemoryStats() (domicile.MemoryStats, bool) {
	st, ok := c.store.(domicile.MemoryStatser)
	if !ok {
		return domicile.MemoryStats{}, false
	}
	return st.MemoryStats(), true
}

// Custody is what the deployment's admin does with a cell's key custody:
// status, rotating and retiring KEK versions, re-wrapping. No data key
// leaves it.
type Custody struct{ k *keyring.Keyring }

// Custody returns the cell's key custody for administration.
func (c *Cell) Custody() Custody { return Custody{c.keys} }

// CacheStats returns the data-key cache's size, hits and misses.
func (k Custody) CacheStats() (size int, hits, misses uint64) { return k.k.CacheStats() }

// KEKID names the cell's key-encryption key.
func (k Custody) KEKID() string { return k.k.KEKID() }

// Versions returns the current KEK version and every version in use.
func (k Custody) Versions(ctx context.Context) (uint32, []uint32, error) { return k.k.Versions(ctx) }

// Counts returns how many data keys each KEK version wraps.
func (k Custody) Counts(ctx context.Context) (map[uint32]int64, error) { return k.k.Counts(ctx) }

// Rotate introduces a new KEK version and returns it.
func (k Custody) Rotate(ctx context.Context) (uint32, error) { return k.k.Rotate(ctx) }

// RetireUnused retires every old KEK version no data key uses.
func (k Custody) RetireUnused(ctx context.Context) ([]uint32, error) { return k.k.RetireUnused(ctx) }

// Rewrap re-wraps every data key under an old KEK version to the current
// one, reporting progress.
func (k Custody) Rewrap(ctx context.Context, progress func(keyring.RewrapProgress)) (int64, error) {
	return k.k.Rewrap(ctx, progress)
}
