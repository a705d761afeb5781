package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits is the number of significant bits a Histogram keeps: each power
// of two is split into 2^subBits linear buckets, so a recorded value is
// reported within 1/128 (0.8%) of its true value.
const subBits = 7

const (
	subCount   = 1 << subBits
	numBuckets = (64 - subBits) * subCount
)

// Histogram is a log-linear histogram of durations in the manner of
// HdrHistogram: exact below 128 ns, then 128 linear buckets per power of
// two, covering every positive int64 of nanoseconds in 7296 counters. Its
// methods are safe for concurrent use: Record adds atomically, and a
// Snapshot taken while others record is a consistent-enough copy for a
// progress line.
type Histogram struct {
	counts [numBuckets]atomic.Int64
	total  atomic.Int64
	sum    atomic.Int64
	max    atomic.Int64
	min    atomic.Int64 // 0 means none recorded yet; values are stored +1
}

// bucketOf returns the bucket index of v (v ≥ 0).
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - 1 // ≥ subBits
	shift := exp - subBits
	mant := v >> shift // in [subCount, 2*subCount)
	return (shift+1)*subCount + int(mant-subCount)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	shift := i/subCount - 1
	mant := int64(i%subCount + subCount)
	lo = mant << shift
	hi = lo + (int64(1) << shift) - 1
	return lo, hi
}

// Record adds one observation. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if n := o.counts[i].Load(); n != 0 {
			h.counts[i].Add(n)
		}
	}
	if o.total.Load() == 0 {
		return
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
	if m := o.min.Load(); m != 0 && (h.min.Load() == 0 || m < h.min.Load()) {
		h.min.Store(m)
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() int64 { return h.total.Load() }

// Max returns the largest observation.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest observation, or 0 if there is none.
func (h *Histogram) Min() time.Duration {
	if m := h.min.Load(); m != 0 {
		return time.Duration(m - 1)
	}
	return 0
}

// Mean returns the mean observation, or 0 if there is none.
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value below or at which a fraction q (0 ≤ q ≤ 1) of
// the observations fall: the highest value of the bucket holding the
// ceil(q·n)-th smallest observation, clamped to the observed range, as
// HdrHistogram's ValueAtPercentile does. It returns 0 for an empty
// histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			_, hi := bucketRange(i)
			hi = min(hi, h.max.Load())
			return time.Duration(max(hi, h.Min().Nanoseconds()))
		}
	}
	return h.Max()
}

// Snapshot returns a copy of h.
func (h *Histogram) Snapshot() *Histogram {
	c := new(Histogram)
	c.Merge(h)
	return c
}
