package httpapi

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"domicile"
)

// homeCache is the router's bounded cache of the directory: the keyed
// hash of a subject id (Directory.PersonKey) → the subject's home cell. It
// holds no raw id, and no reference: only what forwarding needs.
//
// A home changes only when a subject is registered (not cached until the
// directory has it), erased, or moved to another cell, and the router
// learns of none of them: they happen in the cells. An entry can
// therefore go stale, and that is made safe rather than prevented:
//
//   - erased, and not registered again: the cell the entry names answers
//     as any cell would for an id it does not know (it reads the
//     directory itself), which is the answer the router gives for an id
//     the directory does not know;
//   - registered again in another cell, or moved: the cell the entry
//     names does not hold the subject and answers 421 Misdirected
//     Request; the router drops the entry, reads the directory afresh and
//     sends the request once more (Proxy.bySubject).
//
// homeCache is safe for concurrent use.
type homeCache struct {
	max int
	// mu guards m.
	mu sync.Mutex
	m  map[domicile.SubjectRef]string
}

// homeCacheSize bounds the router's cache of homes: about 100 bytes an
// entry.
const homeCacheSize = 100_000

func newHomeCache(max int) *homeCache {
	return &homeCache{max: max, m: make(map[domicile.SubjectRef]string)}
}

// get returns the cached home cell under key, or "".
func (c *homeCache) get(key domicile.SubjectRef) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// put remembers that the subject under key lives in cell, evicting an
// arbitrary entry when the cache is full.
func (c *homeCache) put(key domicile.SubjectRef, cell string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = cell
}

// drop forgets the entry under key if it still names cell.
func (c *homeCache) drop(key domicile.SubjectRef, cell string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[key] == cell {
		delete(c.m, key)
	}
}

// len returns the number of entries.
func (c *homeCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// maxReplay bounds what the router keeps of a request body it forwards
// on a cached home, so that it can send it again to the right cell if the
// home was stale. Record writes fit; a larger upload sent to a stale home
// is answered 503 (nothing was done) rather than kept in memory.
const maxReplay = 64 << 10

// errReplayed is what the first attempt's transport reads from a body
// once the router has taken it back to send it again.
var errReplayed = errors.New("httpapi: the body is being sent to another cell")

// replayBody passes a request body through to the cell while keeping its
// first maxReplay bytes, so that a request the cell refused without
// acting on it (421) can be sent again. It is read by the transport's
// writing goroutine; replay stops that reader before handing the body
// over, so the inbound body is never read by two.
type replayBody struct {
	// mu guards every field, and is held during a read of src.
	mu      sync.Mutex
	src     io.ReadCloser
	kept    []byte
	over    bool // more than maxReplay bytes were read
	stopped bool
}

// Read reads from the inbound body, keeping what it read.
func (b *replayBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return 0, errReplayed
	}
	n, err := b.src.Read(p)
	if !b.over {
		if len(b.kept)+n > maxReplay {
			b.over, b.kept = true, nil
		} else {
			b.kept = append(b.kept, p[:n]...)
		}
	}
	return n, err
}

// Close does nothing: the inbound body belongs to the server, which
// closes it when the handler returns, and may still be sent again.
func (b *replayBody) Close() error { return nil }

// replay stops the first attempt's reads and returns the whole body to
// send again: what was read, then the rest. It returns false if more
// than maxReplay bytes had been read.
func (b *replayBody) replay() (io.ReadCloser, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	if b.over {
		return nil, false
	}
	return readCloser{io.MultiReader(bytes.NewReader(b.kept), b.src)}, true
}

// readCloser is a reader whose Close does nothing (the server closes the
// inbound body).
type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }
