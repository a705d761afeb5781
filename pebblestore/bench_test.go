package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"domicile"
	"domicile/domiciletest"
)

// benchSubjects is the number of subjects of the request-path
// benchmarks, as domicile bench uses.
const benchSubjects = 1000

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since start, a
// steadier figure than the time per operation on a machine others load.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// benchStore returns a store with benchSubjects subjects, each with one
// record of 1 KiB.
func benchStore(b *testing.B) (*Store, []domicile.SubjectRef) {
	b.Helper()
	ctx := context.Background()
	s := mustOpen(b, b.TempDir())
	b.Cleanup(func() { s.Close() })
	refs := make([]domicile.SubjectRef, benchSubjects)
	body := bytes.Repeat([]byte{0xa5}, 1024)
	for i := range refs {
		refs[i] = domiciletest.Ref(fmt.Sprint("bench-", i))
		domiciletest.MustCommit(b, ctx, s, &domicile.Batch{
			Ops: []domicile.Op{
				&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: refs[i], Jurisdiction: "CN"}},
				&domicile.PutRecord{Record: domicile.StoredRecord{Ref: refs[i], Kind: "message", ID: "m1", Version: 1, Body: body, Fields: []string{"text"}}, Expect: domicile.NoVersion},
			},
			Events: []*domicile.LogEntry{domiciletest.NewEntry(refs[i])},
		})
	}
	return s, refs
}

// BenchmarkRead1000Subjects reads records of 1000 subjects from parallel
// goroutines: the store's part of a read request.
func BenchmarkRead1000Subjects(b *testing.B) {
	s, refs := benchStore(b)
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ref := refs[next.Add(1)%benchSubjects]
			if _, err := s.Record(ctx, ref, "message", "m1"); err != nil {
				b.Errorf("Record: %v", err)
				return
			}
		}
	})
}

// benchWrites commits, from 32 goroutines, a new record and an event of
// one of 1000 subjects per batch: the store's part of a write request.
func benchWrites(b *testing.B) {
	s, refs := benchStore(b)
	ctx := context.Background()
	body := bytes.Repeat([]byte{0x5a}, 1024)
	var next atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			ref := refs[n%benchSubjects]
			r := domicile.StoredRecord{Ref: ref, Kind: "message", ID: strconv.FormatInt(n, 10), Version: 1, Body: body, Fields: []string{"text"}}
			if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{Record: r, Expect: domicile.NoVersion}}, Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)}}); err != nil {
				b.Errorf("Commit: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}

// BenchmarkWrite1000Subjects is benchWrites. (On a file system whose
// fsync is free, such as tmpfs, it measures the CPU a commit costs.)
func BenchmarkWrite1000Subjects(b *testing.B) { benchWrites(b) }

// BenchmarkRegister registers new subjects, each with its event, from
// parallel goroutines.
func BenchmarkRegister(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	defer s.Close()
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ref := domiciletest.Ref(fmt.Sprint("new-", next.Add(1)))
			if err := s.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}}}, Events: []*domicile.LogEntry{domiciletest.NewEntry(ref)}}); err != nil {
				b.Errorf("Commit: %v", err)
				return
			}
		}
	})
}

// BenchmarkErase erases subjects of ten records and ten events each,
// among 1000 others: the erasure and its compactions.
func BenchmarkErase(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	for i := range b.N {
		b.StopTimer()
		ref := domiciletest.Ref(fmt.Sprint("erased-", i))
		ops := []domicile.Op{&domicile.PutSubject{Subject: domicile.StoredSubject{Ref: ref, Jurisdiction: "CN"}}}
		var evs []*domicile.LogEntry
		for j := range 10 {
			ops = append(ops, &domicile.PutRecord{Record: domicile.StoredRecord{Ref: ref, Kind: "k", ID: fmt.Sprint(j), Version: 1, Body: []byte("x")}, Expect: domicile.NoVersion})
			evs = append(evs, domiciletest.NewEntry(ref))
		}
		domiciletest.MustCommit(b, ctx, s, &domicile.Batch{Ops: ops, Events: evs})
		b.StartTimer()
		domiciletest.MustCommit(b, ctx, s, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: ref}}, Events: []*domicile.LogEntry{domiciletest.NewEntry(domicile.SubjectRef{})}})
	}
}
