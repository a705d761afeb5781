package pebblestore

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"domicile"
	"domicile/internal/cmalloc"
)

// TestConfigSizes: the bound is the block cache's size, and a memtable is
// a quarter of it; a bound out of range is refused, and OpenConfig
// refuses it before it creates anything.
func TestConfigSizes(t *testing.T) {
	for _, tt := range []struct {
		bytes, cache, memtable int64
	}{
		{0, DefaultMemoryBytes, DefaultMemoryBytes / 4},
		{MinMemoryBytes, 16 << 20, 4 << 20},
		{100 << 20, 100 << 20, 25 << 20},
		{(64 << 20) + 3, (64 << 20) + 3, 16 << 20},
		{MaxMemoryBytes, MaxMemoryBytes, MaxMemoryBytes / 4},
	} {
		cache, memtable, err := Config{MemoryBytes: tt.bytes}.Sizes()
		if err != nil || cache != tt.cache || memtable != tt.memtable {
			t.Errorf("Config{%d}.Sizes() = %d, %d, %v; want %d, %d", tt.bytes, cache, memtable, err, tt.cache, tt.memtable)
		}
	}
	for _, bad := range []int64{-1, 1, MinMemoryBytes - 1, MaxMemoryBytes + 1, -MaxMemoryBytes} {
		if _, _, err := (Config{MemoryBytes: bad}).Sizes(); err == nil || !strings.Contains(err.Error(), "memory bound") {
			t.Errorf("Config{%d}.Sizes() error = %v, want a memory bound error", bad, err)
		}
		dir := filepath.Join(t.TempDir(), "cell")
		if s, err := OpenConfig(context.Background(), dir, Config{MemoryBytes: bad}); err == nil {
			s.Close()
			t.Errorf("OpenConfig with a bound of %d opened", bad)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("OpenConfig with a bound of %d created %s (%v)", bad, dir, err)
		}
	}
}

// TestMemoryFollowsConfig writes and reads more than the bound through
// stores opened with two bounds, and checks what MemoryStats reports
// against each: the memtables grow to a quarter of the bound each, and
// to no more than Pebble's queue and one kept for reuse; the block cache
// fills to what they leave; and the two together stay within the bound.
func TestMemoryFollowsConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 48 MiB")
	}
	const data = 48 << 20
	for _, bound := range []int64{MinMemoryBytes, 64 << 20} {
		s, err := OpenConfig(context.Background(), t.TempDir(), Config{MemoryBytes: bound})
		if err != nil {
			t.Fatal(err)
		}
		_, memtable, _ := Config{MemoryBytes: bound}.Sizes()
		st := s.MemoryStats()
		if st.Bound != bound || st.CacheCapacity != bound {
			t.Fatalf("bound %d: MemoryStats reports bound %d, cache capacity %d; want both %d", bound, st.Bound, st.CacheCapacity, bound)
		}
		// The cache evicts per shard as blocks arrive: it may be over by
		// a block or so per shard.
		within := func(st domicile.MemoryStats) {
			t.Helper()
			if st.CacheBytes+st.MemTableBytes > bound+bound/64 {
				t.Fatalf("bound %d: the block cache holds %d bytes and the memtables %d, over the bound", bound, st.CacheBytes, st.MemTableBytes)
			}
		}
		// Keys under a prefix the store does not use, 1 KiB values.
		val := make([]byte, 1<<10)
		var peakMem int64
		for i := range data / len(val) {
			key := binary.BigEndian.AppendUint64([]byte{0xff}, uint64(i))
			if err := s.db.Set(key, val, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			if i%256 == 0 {
				st := s.MemoryStats()
				within(st)
				peakMem = max(peakMem, st.MemTableBytes)
			}
		}
		if peakMem > (memTables+1)*memtable {
			t.Errorf("bound %d: memtables held %d bytes, over %d memtables of %d", bound, peakMem, memTables+1, memtable)
		}
		if peakMem < memtable {
			t.Errorf("bound %d: memtables held at most %d bytes after %d MiB written; want them grown to one of %d", bound, peakMem, data>>20, memtable)
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
		// Point reads of every key fill the cache.
		var peakCache int64
		for i := range data / len(val) {
			_, c, err := s.db.Get(binary.BigEndian.AppendUint64([]byte{0xff}, uint64(i)))
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if i%256 == 0 {
				st := s.MemoryStats()
				within(st)
				peakCache = max(peakCache, st.CacheBytes)
			}
		}
		if peakCache < bound/4 {
			t.Errorf("bound %d: the block cache held at most %d bytes reading %d MiB; want at least a quarter of the bound", bound, peakCache, data>>20)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReleaseMalloc: what Pebble's C allocations leave free once its
// cache is gone stays resident in glibc's arenas until releaseMalloc
// returns it.
func TestReleaseMalloc(t *testing.T) {
	if !cmalloc.Enabled {
		t.Skip("Pebble allocates in the Go heap in this build")
	}
	if testing.Short() {
		t.Skip("fills a 64 MiB cache")
	}
	s, err := OpenConfig(context.Background(), t.TempDir(), Config{MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 1<<10)
	const n = 48 << 10
	for i := range n {
		if err := s.db.Set(binary.BigEndian.AppendUint64([]byte{0xff}, uint64(i)), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, c, err := s.db.Get(binary.BigEndian.AppendUint64([]byte{0xff}, uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	cached := s.MemoryStats().CacheBytes
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory() // the Go heap's free pages, so that what changes next is C's
	before := rssAnon(t)
	releaseMalloc(true)
	after := rssAnon(t)
	// Without the trim nothing comes back; with it, about half to all of
	// the cache did (16-33 MiB of 32 here, least under the race detector,
	// whose allocations share the arenas): a quarter is the bar.
	if before-after < cached/4 {
		t.Errorf("releaseMalloc returned %d KiB of the %d KiB the closed store's cache had held (resident %d KiB before, %d after)",
			(before-after)>>10, cached>>10, before>>10, after>>10)
	}
}

// rssAnon returns the process's resident anonymous memory.
func rssAnon(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RssAnon:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no RssAnon in /proc/self/status")
	return 0
}
