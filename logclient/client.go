// Package logclient verifies a domicile cell log from the outside, knowing
// only the specifications it is published under: C2SP tlog-tiles (HTTP
// layout), tlog-checkpoint and signed-note (checkpoints), tlog-cosignature
// (witnesses) and RFC 6962 (Merkle proofs), plus the leaf format of package
// domicile/leaf.
//
// A [Client] fetches the log's checkpoint and checks the log's signature
// and the required witnesses' cosignatures; checks that it is consistent
// with the checkpoint it trusted before (kept in a witness.State, such as a
// witness.FileState); fetches hash tiles and entry bundles to build proofs;
// and checks a subject's events: each leaf commits to its event, is the
// leaf served at its index, and is included under the checkpoint.
//
// Every failure that shows misbehaviour is a typed error carrying the
// evidence: [*ConsistencyError] (both signed checkpoints and the proof),
// [*TreeError] (the signed checkpoint and the served tiles that do not
// hash to it), [*LeafMismatchError], [*InclusionError], [*EntryError] and
// [*CommitmentError].
package logclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"domicile/checkpoint"
	"domicile/merkle"
)

// Config configures a [Client].
type Config struct {
	// URL is the log's tlog-tiles prefix, such as
	// "https://example.com/log/cn-gz1/".
	URL string
	// LogKey is the log's note verifier key; its name is the log's origin.
	LogKey string
	// WitnessKeys are cosignature/v1 verifier keys of witnesses whose
	// cosignatures are required on every checkpoint.
	WitnessKeys []string
	// WitnessQuorum, when positive, relaxes WitnessKeys: a checkpoint
	// must carry valid cosignatures by at least this many of them
	// (checkpoint.OpenQuorum) instead of by each. It may not exceed
	// len(WitnessKeys).
	WitnessQuorum int
	// HTTPClient makes the requests; the default has a 30 s timeout.
	HTTPClient *http.Client
	// MaxEntryBundleBytes bounds an entry bundle; default 1 MiB.
	MaxEntryBundleBytes int64
}

// A Client verifies one log. It is safe for concurrent use.
type Client struct {
	base      string
	log       note.Verifier
	witnesses []*checkpoint.CosignatureVerifier
	quorum    int
	hc        *http.Client
	maxBundle int64

	// mu guards cache, the raw bodies of fetched immutable resources
	// (tiles and bundles) by path. Cached data is re-authenticated on
	// every use, so caching never trusts anything.
	mu    sync.Mutex
	cache map[string][]byte
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("logclient: URL is required")
	}
	v, err := checkpoint.NewVerifier(cfg.LogKey)
	if err != nil {
		return nil, fmt.Errorf("logclient: log key: %w", err)
	}
	if cfg.WitnessQuorum < 0 || cfg.WitnessQuorum > len(cfg.WitnessKeys) {
		return nil, fmt.Errorf("logclient: a quorum of %d witnesses out of %d listed", cfg.WitnessQuorum, len(cfg.WitnessKeys))
	}
	c := &Client{base: cfg.URL, log: v, quorum: cfg.WitnessQuorum, hc: cfg.HTTPClient, maxBundle: cfg.MaxEntryBundleBytes, cache: map[string][]byte{}}
	if !strings.HasSuffix(c.base, "/") {
		c.base += "/"
	}
	for _, k := range cfg.WitnessKeys {
		w, err := checkpoint.NewCosignatureVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("logclient: witness key: %w", err)
		}
		c.witnesses = append(c.witnesses, w)
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.maxBundle <= 0 {
		c.maxBundle = 1 << 20
	}
	return c, nil
}

// Origin returns the log's origin, the name of its key.
func (c *Client) Origin() string { return c.log.Name() }

// fetchError is a failure to fetch a resource: not evidence of anything.
type fetchError struct {
	url    string
	status int
	err    error
}

func (e *fetchError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("logclient: GET %s: %v", e.url, e.err)
	}
	return fmt.Sprintf("logclient: GET %s: status %d", e.url, e.status)
}

func (e *fetchError) Unwrap() error { return e.err }

// get fetches base+path, reading at most max bytes.
func (c *Client) get(ctx context.Context, path string, max int64) ([]byte, error) {
	url := c.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &fetchError{url: url, err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &fetchError{url: url, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, &fetchError{url: url, status: resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, &fetchError{url: url, err: err}
	}
	if int64(len(b)) > max {
		return nil, &fetchError{url: url, err: fmt.Errorf("response larger than %d bytes", max)}
	}
	return b, nil
}

// getImmutable fetches a tile or bundle, through the cache.
func (c *Client) getImmutable(ctx context.Context, path string, max int64) ([]byte, error) {
	c.mu.Lock()
	b, ok := c.cache[path]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := c.get(ctx, path, max)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cache[path] = b
	c.mu.Unlock()
	return b, nil
}

// FetchCheckpoint fetches the log's current checkpoint and verifies the
// log's signature and every required cosignature.
func (c *Client) FetchCheckpoint(ctx context.Context) (*checkpoint.Signed, error) {
	b, err := c.get(ctx, "checkpoint", checkpoint.MaxSignedSize)
	if err != nil {
		return nil, err
	}
	return c.OpenCheckpoint(b)
}

// OpenCheckpoint verifies a signed checkpoint of this log, with the
// required cosignatures.
func (c *Client) OpenCheckpoint(signed []byte) (*checkpoint.Signed, error) {
	open := checkpoint.Open
	if c.quorum > 0 {
		open = func(msg []byte, log note.Verifier, ws ...*checkpoint.CosignatureVerifier) (*checkpoint.Signed, error) {
			return checkpoint.OpenQuorum(msg, log, c.quorum, ws...)
		}
	}
	s, err := open(signed, c.log, c.witnesses...)
	if err != nil {
		return nil, fmt.Errorf("logclient: %w", err)
	}
	return s, nil
}

// readTile fetches hash tile t, falling back to the full tile when a
// partial one is no longer served (tlog-tiles allows logs to delete
// partial tiles once the full tile exists).
func (c *Client) readTile(ctx context.Context, t merkle.Tile) ([]byte, error) {
	want := t.W * merkle.HashSize
	b, err := c.getImmutable(ctx, t.Path(), int64(want))
	var fe *fetchError
	if err != nil && t.W < merkle.TileWidth && errors.As(err, &fe) && fe.status == http.StatusNotFound {
		full := t
		full.W = merkle.TileWidth
		b, err = c.getImmutable(ctx, full.Path(), merkle.MaxTileBytes)
		if err == nil && len(b) == merkle.MaxTileBytes {
			b = b[:want]
		}
	}
	if err != nil {
		return nil, err
	}
	if len(b) != want {
		// Wrong length is served data that cannot be right; report it
		// as evidence along with the other tiles.
		return nil, &servedTileError{tile: ServedTile{Path: t.Path(), Data: b}}
	}
	return b, nil
}

type servedTileError struct{ tile ServedTile }

func (e *servedTileError) Error() string {
	return fmt.Sprintf("logclient: tile %s has %d bytes", e.tile.Path, len(e.tile.Data))
}

// tileReader implements tlog.TileReader over HTTP for one operation.
type tileReader struct {
	c   *Client
	ctx context.Context

	// mu guards last, the tiles returned by the last ReadTiles call.
	mu   sync.Mutex
	last []ServedTile
}

func (r *tileReader) Height() int { return merkle.TileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	errs := make([]error, len(tiles))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, tt := range tiles {
		t, err := merkle.FromTlogTile(tt)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			data[i], errs[i] = r.c.readTile(r.ctx, t)
		}()
	}
	wg.Wait()
	served := make([]ServedTile, len(tiles))
	for i, tt := range tiles {
		served[i] = ServedTile{Path: strings.Replace(tt.Path(), "tile/8/", "tile/", 1), Data: data[i]}
	}
	r.mu.Lock()
	r.last = served
	r.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return data, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// hashReader returns a HashReader of the tree of cp, fed by tiles fetched
// over HTTP and authenticated against cp's root hash. A tile set that does
// not hash to the root fails with a [*TreeError].
func (c *Client) hashReader(ctx context.Context, cp *checkpoint.Signed) merkle.HashReader {
	tr := &tileReader{c: c, ctx: ctx}
	thr := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, tr)
	return merkle.HashReaderFunc(func(indexes []int64) ([]merkle.Hash, error) {
		hs, err := thr.ReadHashes(indexes)
		if err == nil {
			return hs, nil
		}
		var fe *fetchError
		if errors.As(err, &fe) || ctx.Err() != nil {
			return nil, err
		}
		tr.mu.Lock()
		tiles := tr.last
		tr.mu.Unlock()
		var ste *servedTileError
		if errors.As(err, &ste) {
			tiles = []ServedTile{ste.tile}
		}
		return nil, &TreeError{Checkpoint: cp.Raw, Tiles: tiles, Err: err}
	})
}

// ServedTile is a tile as the log served it.
type ServedTile struct {
	Path string
	Data []byte
}

// TreeError reports tiles served by the log that do not hash to the root
// of its signed checkpoint: the served tree is not the signed one.
type TreeError struct {
	// Checkpoint is the signed checkpoint.
	Checkpoint []byte
	// Tiles are the served tiles that were checked against it.
	Tiles []ServedTile
	Err   error
}

func (e *TreeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "logclient: served tiles do not match the signed checkpoint (%v)\n-- checkpoint --\n%s-- tiles (path, length, SHA-256 of contents) --\n", e.Err, e.Checkpoint)
	for _, t := range e.Tiles {
		fmt.Fprintf(&b, "%s %d %x\n", t.Path, len(t.Data), sha256.Sum256(t.Data))
	}
	return b.String()
}

// Unwrap returns the underlying failure.
func (e *TreeError) Unwrap() error { return e.Err }

// ConsistencyError reports that a checkpoint is not an append-only
// extension of the one trusted before: a smaller tree (rollback or
// truncation), a different root at the same size (fork), or a consistency
// proof, built from the served tiles, that does not verify.
type ConsistencyError struct {
	// Old is the signed checkpoint trusted before, New the one served now.
	Old, New []byte
	// Proof is the consistency proof from Old to New, when one was built.
	Proof  []merkle.Hash
	Reason string
}

func (e *ConsistencyError) Error() string {
	s := fmt.Sprintf("logclient: log is not consistent with the checkpoint trusted before: %s\n-- trusted --\n%s-- served --\n%s", e.Reason, e.Old, e.New)
	if e.Proof != nil {
		s += "-- consistency proof --\n" + merkle.FormatProof(e.Proof) + "\n"
	}
	return s
}

// CheckConsistency checks that the tree of new extends the tree of old,
// building the consistency proof from tiles of new's tree.
func (c *Client) CheckConsistency(ctx context.Context, old, new *checkpoint.Signed) error {
	fail := func(reason string, proof []merkle.Hash) error {
		return &ConsistencyError{Old: old.Raw, New: new.Raw, Proof: proof, Reason: reason}
	}
	switch {
	case old.Origin != new.Origin:
		return fmt.Errorf("logclient: checkpoints of different logs %q and %q", old.Origin, new.Origin)
	case new.Size < old.Size:
		return fail(fmt.Sprintf("tree shrank from %d to %d leaves (rollback or truncation)", old.Size, new.Size), nil)
	case new.Size == old.Size && new.Hash != old.Hash:
		return fail(fmt.Sprintf("two roots for %d leaves (fork)", new.Size), nil)
	case new.Size == old.Size:
		return nil
	}
	proof, err := merkle.ProveConsistency(old.Size, new.Size, c.hashReader(ctx, new))
	if err != nil {
		var te *TreeError
		if errors.As(err, &te) {
			return te
		}
		return fmt.Errorf("logclient: build consistency proof: %w", err)
	}
	if err := merkle.VerifyConsistency(proof, old.Size, new.Size, old.Hash, new.Hash); err != nil {
		return fail("consistency proof does not verify (history rewritten)", proof)
	}
	return nil
}

// InclusionError reports a leaf whose inclusion proof under a signed
// checkpoint does not verify.
type InclusionError struct {
	Checkpoint []byte
	Index      int64
	// Leaf is the leaf checked.
	Leaf   []byte
	Proof  []merkle.Hash
	Reason string
}

func (e *InclusionError) Error() string {
	return fmt.Sprintf("logclient: leaf %d is not included in the signed checkpoint: %s\n-- leaf --\n%s\n-- checkpoint --\n%s-- inclusion proof --\n%s\n",
		e.Index, e.Reason, e.Leaf, e.Checkpoint, merkle.FormatProof(e.Proof))
}

// ProveInclusion builds, from served tiles, the inclusion proof of leaf
// index under cp and checks it against entry's leaf hash.
func (c *Client) ProveInclusion(ctx context.Context, cp *checkpoint.Signed, index int64, entry []byte) ([]merkle.Hash, error) {
	if index < 0 || index >= cp.Size {
		return nil, &InclusionError{Checkpoint: cp.Raw, Index: index, Leaf: entry, Reason: fmt.Sprintf("index beyond the tree of %d leaves", cp.Size)}
	}
	proof, err := merkle.ProveInclusion(index, cp.Size, c.hashReader(ctx, cp))
	if err != nil {
		var te *TreeError
		if errors.As(err, &te) {
			return nil, te
		}
		return nil, fmt.Errorf("logclient: build inclusion proof: %w", err)
	}
	if err := merkle.VerifyInclusion(proof, index, cp.Size, merkle.LeafHash(entry), cp.Hash); err != nil {
		return nil, &InclusionError{Checkpoint: cp.Raw, Index: index, Leaf: entry, Proof: proof, Reason: "proof does not verify"}
	}
	return proof, nil
}

// EntryBundle fetches and decodes entry bundle t.
func (c *Client) entryBundle(ctx context.Context, t merkle.Tile) ([][]byte, error) {
	b, err := c.getImmutable(ctx, t.Path(), c.maxBundle)
	var fe *fetchError
	partialGone := err != nil && t.W < merkle.TileWidth && errors.As(err, &fe) && fe.status == http.StatusNotFound
	if partialGone {
		full := t
		full.W = merkle.TileWidth
		b, err = c.getImmutable(ctx, full.Path(), c.maxBundle)
	}
	if err != nil {
		return nil, err
	}
	entries, err := merkle.DecodeEntryBundle(b)
	if partialGone && err == nil && len(entries) == merkle.TileWidth {
		entries = entries[:t.W]
	}
	if err != nil || len(entries) != t.W {
		return nil, fmt.Errorf("logclient: malformed entry bundle %s", t.Path())
	}
	return entries, nil
}

// Entry returns the entry served at index, from its entry bundle. The
// entry is not yet authenticated: check it with ProveInclusion.
func (c *Client) Entry(ctx context.Context, cp *checkpoint.Signed, index int64) ([]byte, error) {
	t, pos, err := merkle.EntryBundleFor(index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("logclient: %w", err)
	}
	entries, err := c.entryBundle(ctx, t)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(entries[pos]), nil
}
