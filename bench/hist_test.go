package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRangeHoldsValue(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []int64{0, 1, 127, 128, 129, 255, 256, 257, 1<<20 - 1, 1 << 20, 1<<62 + 12345, 1<<63 - 1}
	for range 10000 {
		vals = append(vals, r.Int64N(int64(1)<<uint(r.IntN(62)+1)))
	}
	prevHi := int64(-1)
	for i := range numBuckets {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d (buckets must tile the range)", i, lo, prevHi+1)
		}
		prevHi = hi
	}
	for _, v := range vals {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("bucketOf(%d) = %d with range [%d, %d]", v, i, lo, hi)
		}
		if v >= subCount && float64(hi-lo) > float64(lo)/subCount {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its value", i, lo, hi, subCount)
		}
	}
}

func TestQuantileMatchesSortedReference(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{"lognormal", func(r *rand.Rand) time.Duration {
			return time.Duration(float64(time.Millisecond) * (r.NormFloat64()*0.8 + 1) * (r.NormFloat64()*0.8 + 1))
		}},
		{"bimodal", func(r *rand.Rand) time.Duration {
			if r.IntN(100) == 0 {
				return 200*time.Millisecond + time.Duration(r.Int64N(1e6))
			}
			return 100*time.Microsecond + time.Duration(r.Int64N(1e5))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var h Histogram
			var ref []time.Duration
			for range 20000 {
				d := max(tt.gen(r), 0)
				h.Record(d)
				ref = append(ref, d)
			}
			slices.Sort(ref)
			for _, q := range []float64{0, .5, .9, .99, .999, 1} {
				rank := max(int(float64(len(ref))*q+0.999999999), 1)
				want := ref[rank-1]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/subCount+1 {
					t.Errorf("Quantile(%v) = %v, want %v within 1/%d above", q, got, want, subCount)
				}
			}
			if h.Max() != ref[len(ref)-1] || h.Min() != ref[0] || h.Count() != int64(len(ref)) {
				t.Errorf("max %v min %v count %d, want %v %v %d", h.Max(), h.Min(), h.Count(), ref[len(ref)-1], ref[0], len(ref))
			}
		})
	}
}

func TestMergeEqualsRecordingAll(t *testing.T) {
	var a, b, all Histogram
	for i := range 5000 {
		d := time.Duration(i*i) * time.Microsecond / 7
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{.1, .5, .99, .999} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Max() != all.Max() || a.Min() != all.Min() || a.Mean() != all.Mean() {
		t.Errorf("merged summary differs: %v %v %v %v vs %v %v %v %v", a.Count(), a.Max(), a.Min(), a.Mean(), all.Count(), all.Max(), all.Min(), all.Mean())
	}
	var empty Histogram
	if empty.Quantile(.99) != 0 || empty.Mean() != 0 || empty.Min() != 0 {
		t.Error("empty histogram reports nonzero values")
	}
}
