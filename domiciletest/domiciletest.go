// Package domiciletest holds the conformance suites that every storage
// backend of domicile runs: [TestCellStore] for a cell's records, objects,
// blobs and log, [TestKeyStore] for the custody store of wrapped data keys,
// and [TestControlStore] for tokens and the subject directory.
//
// A backend calls each suite from its own tests with a function that opens
// a new, empty store for one subtest:
//
//	func TestConformance(t *testing.T) {
//		domiciletest.TestCellStore(t, func(t *testing.T) domicile.CellStore {
//			s, err := mystore.Open(context.Background(), t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite closes every store it opens (the open function registers with
// t.Cleanup whatever must happen after that, such as dropping a schema).
// Subtests run in parallel and several of them commit from many goroutines
// at once: run the suites under -race.
//
// # Contract pinned down by the suites
//
// Beyond the interface comments in package domicile, the suites hold every
// backend to the behaviour of the embedded SQLite store:
//
//   - Expectations compare with the stored version, tombstones included:
//     after a delete at version n, a write must expect n (not NoVersion)
//     and is version n+1, so versions never go back.
//   - Deleting a missing or already deleted record or object returns
//     ErrNotFound; any other failed expectation returns ErrVersionMismatch.
//   - Records and Objects order by byte order (as Go compares strings),
//     whatever the database's collation.
//   - Erasing a subject deletes its rows outright (reads return
//     ErrNotFound) and nulls Salt and Committed of its events, keeping
//     their leaves and the Merkle hashes.
//   - Leaves fails when [start, end) reaches past the log.
//   - LatestCheckpoint of a store without checkpoints returns size -1, a
//     nil note and no error.
package domiciletest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"domicile"
)

// t0 is the base of the times the suites store: a fixed instant with
// nanoseconds, so that lost precision shows.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// Ref returns a deterministic subject reference for a name, as the keyed
// hash of a subject id would be.
func Ref(name string) domicile.SubjectRef {
	return domicile.SubjectRef(sha256.Sum256([]byte("domiciletest subject " + name)))
}

// leafSeq numbers the leaves the suites make, so that no two are equal.
var leafSeq struct {
	sync.Mutex
	n uint64
}

// NewEntry returns a log entry for ref (zero for none) with a leaf, a
// committed event and a salt that are unique in the test binary.
func NewEntry(ref domicile.SubjectRef) *domicile.LogEntry {
	leafSeq.Lock()
	leafSeq.n++
	n := leafSeq.n
	leafSeq.Unlock()
	var salt [16]byte
	binary.BigEndian.PutUint64(salt[:], n)
	binary.BigEndian.PutUint64(salt[8:], ^n)
	return &domicile.LogEntry{
		Ref:       ref,
		Time:      t0.Add(time.Duration(n) * time.Millisecond),
		Leaf:      fmt.Appendf(nil, "leaf %d of %x", n, ref[:4]),
		Committed: fmt.Appendf(nil, `{"n":%d,"subject":"%x"}`, n, ref[:4]),
		Salt:      salt[:],
	}
}

// closeOnce closes c once, at the end of the test or when the test asks.
type closeOnce struct {
	once sync.Once
	c    interface{ Close() error }
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.c.Close() })
	return c.err
}

func mustClose(t *testing.T, c interface{ Close() error }) *closeOnce {
	t.Helper()
	co := &closeOnce{c: c}
	t.Cleanup(func() {
		if err := co.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return co
}
