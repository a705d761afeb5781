package domiciletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// TestKeyStore runs the conformance suite of domicile.KeyStore. open must
// return a new, empty store; the suite closes it.
func TestKeyStore(t *testing.T, open func(t *testing.T) domicile.KeyStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, k domicile.KeyStore)
	}{
		{"PutAndGet", testPutKey},
		{"PutKeys", testPutKeys},
		{"ReplaceKey", testReplaceKey},
		{"KeysBelow", testKeysBelow},
		{"CountByVersion", testCountByVersion},
		{"DeleteKeys", testDeleteKeys},
		{"Concurrent", testKeysConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := open(t)
			mustClose(t, k)
			tc.run(t, k)
		})
	}
}

func wrappedKey(ref domicile.SubjectRef, gen uint8, version uint32) domicile.WrappedKey {
	return domicile.WrappedKey{
		Ref: ref, Gen: gen, KEKVersion: version,
		Wrapped:     fmt.Appendf(nil, "wrapped %x/%d under v%d \x00\xff", ref[:4], gen, version),
		Fingerprint: fmt.Sprintf("fp-%x-%d", ref[:4], gen),
		Created:     t0.Add(time.Duration(gen) * time.Second),
	}
}

func mustPutKey(t *testing.T, k domicile.KeyStore, w domicile.WrappedKey) {
	t.Helper()
	if err := k.PutKey(context.Background(), w); err != nil {
		t.Fatalf("PutKey(%x/%d): %v", w.Ref[:4], w.Gen, err)
	}
}

func testPutKey(t *testing.T, k domicile.KeyStore) {
	ctx := context.Background()
	a := Ref("alice")
	w1, w2 := wrappedKey(a, 1, 1), wrappedKey(a, 2, 1)
	w2.KEKVersion = 4_000_000_000 // above int32
	mustPutKey(t, k, w1)
	mustPutKey(t, k, w2)
	for _, want := range []domicile.WrappedKey{w1, w2} {
		got, err := k.Key(ctx, want.Ref, want.Gen)
		if err != nil {
			t.Fatalf("Key(gen %d): %v", want.Gen, err)
		}
		if d := cmp.Diff(want, *got); d != "" {
			t.Errorf("Key(gen %d) mismatch (-want +got):\n%s", want.Gen, d)
		}
	}
	dup := wrappedKey(a, 1, 9)
	if err := k.PutKey(ctx, dup); err == nil {
		t.Errorf("PutKey of an existing (ref, gen) succeeded, want an error")
	}
	if got, err := k.Key(ctx, a, 1); err != nil || got.KEKVersion != 1 || !bytes.Equal(got.Wrapped, w1.Wrapped) {
		t.Errorf("after a duplicate PutKey, Key = %+v, %v; want it unchanged", got, err)
	}
	if _, err := k.Key(ctx, a, 3); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Key(missing gen) = %v, want ErrNotFound", err)
	}
	if _, err := k.Key(ctx, Ref("nobody"), 1); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Key(missing subject) = %v, want ErrNotFound", err)
	}
}

// testPutKeys stores keys in batches: a batch is stored whole, and one
// that holds a stored or repeated (ref, gen) stores none of its keys.
func testPutKeys(t *testing.T, k domicile.KeyStore) {
	ctx := context.Background()
	if err := k.PutKeys(ctx, nil); err != nil {
		t.Errorf("PutKeys(none) = %v, want nil", err)
	}
	var batch []domicile.WrappedKey
	for i := range 50 {
		batch = append(batch, wrappedKey(Ref(fmt.Sprint("batched ", i)), uint8(1+i%2), uint32(1+i%3)))
	}
	batch[7].KEKVersion = 4_000_000_000
	if err := k.PutKeys(ctx, batch); err != nil {
		t.Fatalf("PutKeys: %v", err)
	}
	for _, want := range batch {
		got, err := k.Key(ctx, want.Ref, want.Gen)
		if err != nil {
			t.Fatalf("Key(%x/%d) after PutKeys: %v", want.Ref[:4], want.Gen, err)
		}
		if d := cmp.Diff(want, *got); d != "" {
			t.Errorf("Key(%x/%d) after PutKeys (-want +got):\n%s", want.Ref[:4], want.Gen, d)
		}
	}
	fresh := func(name string) domicile.WrappedKey { return wrappedKey(Ref(name), 1, 1) }
	stored := batch[3]
	stored.Wrapped = []byte("another key")
	tests := []struct {
		name  string
		batch []domicile.WrappedKey
	}{
		{"a stored key last", []domicile.WrappedKey{fresh("new a"), fresh("new b"), stored}},
		{"a stored key first", []domicile.WrappedKey{stored, fresh("new a")}},
		{"a key twice", []domicile.WrappedKey{fresh("new a"), fresh("new b"), fresh("new a")}},
	}
	for _, tc := range tests {
		if err := k.PutKeys(ctx, tc.batch); !errors.Is(err, domicile.ErrVersionMismatch) {
			t.Errorf("%s: PutKeys = %v, want ErrVersionMismatch", tc.name, err)
		}
	}
	for _, name := range []string{"new a", "new b"} {
		if _, err := k.Key(ctx, Ref(name), 1); !errors.Is(err, domicile.ErrNotFound) {
			t.Errorf("Key(%s) after refused batches = %v, want ErrNotFound: a refused batch stores nothing", name, err)
		}
	}
	if got, err := k.Key(ctx, stored.Ref, stored.Gen); err != nil || !bytes.Equal(got.Wrapped, batch[3].Wrapped) {
		t.Errorf("Key of the stored key after refused batches = %+v, %v; want it unchanged", got, err)
	}
	want := map[uint32]int64{}
	for _, w := range batch {
		want[w.KEKVersion]++
	}
	if got, err := k.CountByVersion(ctx); err != nil || !cmp.Equal(want, got) {
		t.Errorf("CountByVersion after PutKeys = %v, %v; want %v", got, err, want)
	}
	// The bound: a full batch is stored, one more key is refused.
	full := make([]domicile.WrappedKey, domicile.MaxKeysPerBatch+1)
	for i := range full {
		full[i] = wrappedKey(Ref(fmt.Sprint("full ", i)), 1, 9)
	}
	if err := k.PutKeys(ctx, full); domicile.ErrorCode(err) != domicile.EInvalid {
		t.Errorf("PutKeys of %d keys = %v, want an %s error", len(full), err, domicile.EInvalid)
	}
	if err := k.PutKeys(ctx, full[:domicile.MaxKeysPerBatch]); err != nil {
		t.Fatalf("PutKeys of %d keys: %v", domicile.MaxKeysPerBatch, err)
	}
	if got, err := k.CountByVersion(ctx); err != nil || got[9] != domicile.MaxKeysPerBatch {
		t.Errorf("CountByVersion after a full batch = %v, %v; want %d keys under version 9", got, err, domicile.MaxKeysPerBatch)
	}
}

func testReplaceKey(t *testing.T, k domicile.KeyStore) {
	ctx := context.Background()
	a := Ref("alice")
	w := wrappedKey(a, 1, 1)
	mustPutKey(t, k, w)
	re := w
	re.KEKVersion, re.Wrapped = 2, []byte("re-wrapped under v2")
	tests := []struct {
		name string
		key  domicile.WrappedKey
		from uint32
		want error
	}{
		{"from a version it is not under", re, 5, domicile.ErrVersionMismatch},
		{"from its version", re, 1, nil},
		{"again from the old version", re, 1, domicile.ErrVersionMismatch},
		{"a missing key", wrappedKey(Ref("nobody"), 1, 2), 1, domicile.ErrVersionMismatch},
	}
	cur := w
	for _, tc := range tests {
		err := k.ReplaceKey(ctx, tc.key, tc.from)
		if !errors.Is(err, tc.want) || (err != nil && tc.want == nil) {
			t.Fatalf("%s: ReplaceKey = %v, want %v", tc.name, err, tc.want)
		}
		if err == nil {
			cur.KEKVersion, cur.Wrapped = tc.key.KEKVersion, tc.key.Wrapped
		}
		got, err := k.Key(ctx, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(cur, *got); d != "" {
			t.Errorf("%s: Key after ReplaceKey (-want +got):\n%s", tc.name, d)
		}
	}
}

func sortKeys(ks []domicile.WrappedKey) {
	sort.Slice(ks, func(i, j int) bool {
		if c := bytes.Compare(ks[i].Ref[:], ks[j].Ref[:]); c != 0 {
			return c < 0
		}
		return ks[i].Gen < ks[j].Gen
	})
}

func testKeysBelow(t *testing.T, k domicile.KeyStore) {
	ctx := context.Background()
	var below []domicile.WrappedKey
	for i := range 20 {
		ref := Ref(fmt.Sprint("subject ", i))
		w := wrappedKey(ref, 1, uint32(1+i%4)) // versions 1..4
		mustPutKey(t, k, w)
		if w.KEKVersion < 3 {
			below = append(below, w)
		}
	}
	// A subject with two generations below, listed in (ref, gen) order.
	two := Ref("two generations")
	for _, gen := range []uint8{2, 1} {
		w := wrappedKey(two, gen, 1)
		mustPutKey(t, k, w)
		below = append(below, w)
	}
	sortKeys(below)

	got, err := k.KeysBelow(ctx, 3, domicile.SubjectRef{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(below, got); d != "" {
		t.Errorf("KeysBelow(3) (-want +got):\n%s", d)
	}
	if got, err := k.KeysBelow(ctx, 1, domicile.SubjectRef{}, 100); err != nil || len(got) != 0 {
		t.Errorf("KeysBelow(1) = %d keys, %v; want none", len(got), err)
	}
	// Pages after a cursor: the cursor is the last reference seen.
	var single []domicile.WrappedKey
	for _, w := range below {
		if w.Ref != two {
			single = append(single, w)
		}
	}
	for _, limit := range []int{1, 4} {
		var paged []domicile.WrappedKey
		var after domicile.SubjectRef
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("KeysBelow(limit %d) does not end", limit)
			}
			page, err := k.KeysBelow(ctx, 3, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range page {
				if w.Ref != two {
					paged = append(paged, w)
				}
			}
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].Ref
		}
		if d := cmp.Diff(single, paged); d != "" {
			t.Errorf("KeysBelow(3) in pages of %d (-want +got):\n%s", limit, d)
		}
	}
}

func testCountByVersion(t *testing.T, k domicile.KeyStore) {
	ctx := context.Background()
	if got, err := k.CountByVersion(ctx); err != nil || len(got) != 0 {
		t.Errorf("CountByVersion of an empty store = %v, %v; want empty", got, err)
	}
	want := map[uint32]int64{}
	for i := range 15 {
		v := uint32(1 + i%3)
		if i == 14 {
			v = 4_000_000_000
		}
		mustPutKey(t, k, wrappedKey(Ref(fmt.Sprint("s", i)), 1, v))
		want[v]++
	}
	got, err := k.CountByVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("CountByVersion (-want +got):\n%s", d)
	}
	w := wrappedKey(Ref("s0"), 1, 2)
	if err := k.ReplaceKey(ctx, w, 1); err != nil {
		t.Fatal(err)
	}
	want[1]--
	want[2]++
	if got, err := k.CountByVersion(ctx); err != nil || !cmp.Equal(want, got) {
		t.Errorf("CountByVersion after a re-wrap = %v, %v; want %v", got, err, want)
	}
}

func testDeleteKeys(t *testing.T, k domicile.KeyStore) {
	ctx := context.Background()
	a, b := Ref("alice"), Ref("bob")
	for gen := uint8(1); gen <= 3; gen++ {
		mustPutKey(t, k, wrappedKey(a, gen, 1))
	}
	mustPutKey(t, k, wrappedKey(b, 1, 1))
	if n, err := k.DeleteKeys(ctx, a); err != nil || n != 3 {
		t.Fatalf("DeleteKeys(alice) = %d, %v; want 3", n, err)
	}
	for gen := uint8(1); gen <= 3; gen++ {
		if _, err := k.Key(ctx, a, gen); !errors.Is(err, domicile.ErrNotFound) {
			t.Errorf("Key(alice, %d) after DeleteKeys = %v, want ErrNotFound", gen, err)
		}
	}
	if n, err := k.DeleteKeys(ctx, a); err != nil || n != 0 {
		t.Errorf("DeleteKeys(alice) again = %d, %v; want 0", n, err)
	}
	if _, err := k.Key(ctx, b, 1); err != nil {
		t.Errorf("Key(bob) after alice's deletion: %v", err)
	}
	if got, err := k.CountByVersion(ctx); err != nil || got[1] != 1 {
		t.Errorf("CountByVersion after DeleteKeys = %v, %v; want {1: 1}", got, err)
	}
	// A subject's key may be created again after erasure.
	mustPutKey(t, k, wrappedKey(a, 1, 2))
}

func testKeysConcurrent(t *testing.T, k domicile.KeyStore) {
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := Ref(fmt.Sprint("concurrent ", i))
			if err := k.PutKey(ctx, wrappedKey(ref, 1, 1)); err != nil {
				errs <- fmt.Errorf("PutKey %d: %w", i, err)
				return
			}
			w := wrappedKey(ref, 1, 2)
			if err := k.ReplaceKey(ctx, w, 1); err != nil {
				errs <- fmt.Errorf("replace key %d: %w", i, err)
			}
			if _, err := k.Key(ctx, ref, 1); err != nil {
				errs <- fmt.Errorf("key %d: %w", i, err)
			}
		}()
	}
	// Racing re-wraps of one key: exactly one wins.
	shared := Ref("shared")
	mustPutKey(t, k, wrappedKey(shared, 1, 1))
	var wins sync.WaitGroup
	won := make(chan int, n)
	for i := range n {
		wins.Add(1)
		go func() {
			defer wins.Done()
			w := wrappedKey(shared, 1, 2)
			w.Wrapped = fmt.Appendf(nil, "winner %d", i)
			switch err := k.ReplaceKey(ctx, w, 1); {
			case err == nil:
				won <- i
			case !errors.Is(err, domicile.ErrVersionMismatch):
				errs <- fmt.Errorf("racing ReplaceKey %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	wins.Wait()
	close(errs)
	close(won)
	for err := range errs {
		t.Error(err)
	}
	var winners []int
	for i := range won {
		winners = append(winners, i)
	}
	if len(winners) != 1 {
		t.Fatalf("%d racing re-wraps from version 1 succeeded, want exactly 1", len(winners))
	}
	got, err := k.Key(ctx, shared, 1)
	if err != nil || string(got.Wrapped) != fmt.Sprintf("winner %d", winners[0]) {
		t.Errorf("Key(shared) = %+v, %v; want the winner's %d", got, err, winners[0])
	}
	if c, err := k.CountByVersion(ctx); err != nil || c[2] != n+1 {
		t.Errorf("CountByVersion = %v, %v; want %d keys under version 2", c, err, n+1)
	}
}
