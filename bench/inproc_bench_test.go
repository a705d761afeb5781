package bench

// In-process benchmarks of the record write and read paths without HTTP:
// through a cell (policy, custody, sealing, log events, store) and against
// the raw store, parallel, with 1 KiB records. Compare them as ratios:
//
//	go test -run '^$' -bench 'Cell|RawStore' -benchmem ./bench/
//
// The HTTP benchmarks run the whole service in-process (httpapi, router,
// cell, store), for profiling:
//
//	go test -run '^$' -bench HTTP -cpuprofile cpu.out ./bench/

import (
	"context"
	"crypto/sha256"
	"domicile/client"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"domicile"
	"domicile/cell"
	"domicile/deploy"
	"domicile/httpapi"
	"domicile/kms/filekms"
	"domicile/pebblestore"
	"domicile/residency"
	"domicile/sqlite"
)

// openCellStore opens the cell store the benchmarks run on: SQLite, or
// Pebble when DOMICILE_BENCH_STORE=pebble.
func openCellStore(b testing.TB, dir string) domicile.CellStore {
	b.Helper()
	var st domicile.CellStore
	var err error
	if os.Getenv("DOMICILE_BENCH_STORE") == "pebble" {
		st, err = pebblestore.Open(context.Background(), dir)
	} else {
		st, err = sqlite.Open(context.Background(), dir)
	}
	if err != nil {
		b.Fatal(err)
	}
	return st
}

const benchSubjects = 256

// concurrency × GOMAXPROCS goroutines run each parallel benchmark: enough
// concurrent commits for the store to group them, as under server load.
const concurrency = 16

var appActor = domicile.Actor{Role: domicile.RoleApp, Jurisdiction: "CN", Purpose: "service", TokenID: "tok_bench"}

func subjectKey(i int) cell.SubjectKey {
	id := "bench-" + strconv.Itoa(i)
	return cell.SubjectKey{ID: id, Ref: sha256.Sum256([]byte(id))}
}

// newBenchCell builds a cell as cmd/domicile's runtime does: SQLite store,
// SQLite custody store, file KEK.
func newBenchCell(b *testing.B) (*cell.Cell, domicile.CellStore) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	dep := deploy.Default()
	cc := dep.Cells[0]
	st := openCellStore(b, filepath.Join(dir, cc.ID))
	ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody"))
	if err != nil {
		b.Fatal(err)
	}
	kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", "kek.json"), ID: cc.ID + "/kek"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close(); ks.Close() })
	c := cell.New(cell.Config{Cell: cc, Deployment: dep, Store: st, KEK: kek, KeyStore: ks})
	for i := range benchSubjects {
		if _, err := c.CreateSubject(ctx, appActor, subjectKey(i), "CN"); err != nil {
			b.Fatal(err)
		}
	}
	return c, st
}

func newRawStore(b *testing.B) *sqlite.Store {
	b.Helper()
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// rawPut writes a record as the baseline does: read the version, commit
// one PutRecord, retry on a lost race.
func rawPut(ctx context.Context, st *sqlite.Store, ref domicile.SubjectRef, id string, body []byte) error {
	for {
		var cur int64
		if old, err := st.Record(ctx, ref, RecordKind, id); err == nil {
			cur = old.Version
		} else if !errors.Is(err, domicile.ErrNotFound) {
			return err
		}
		err := st.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{
			Record: domicile.StoredRecord{Ref: ref, Kind: RecordKind, ID: id, Version: cur + 1, Body: body}, Expect: cur}}})
		if !errors.Is(err, domicile.ErrVersionMismatch) {
			return err
		}
	}
}

// next hands each parallel goroutine distinct (subject, record) pairs.
var next atomic.Int64

func pair() (int, string) {
	n := int(next.Add(1))
	return n % benchSubjects, "w" + strconv.Itoa(n/benchSubjects%writeKeys)
}

func BenchmarkCellPutRecord(b *testing.B) {
	c, _ := newBenchCell(b)
	body := RecordBody(1024)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			s, id := pair()
			if _, err := c.PutRecord(ctx, appActor, subjectKey(s), RecordKind, id, body, domicile.AnyVersion); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCellGetRecord(b *testing.B) {
	c, _ := newBenchCell(b)
	ctx := context.Background()
	body := RecordBody(1024)
	for i := range benchSubjects {
		if _, err := c.PutRecord(ctx, appActor, subjectKey(i), RecordKind, "r0", body, domicile.AnyVersion); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(body)))
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, _ := pair()
			if _, err := c.GetRecord(ctx, appActor, subjectKey(s), RecordKind, "r0"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRawStorePut(b *testing.B) {
	st := newRawStore(b)
	body := RecordBody(1024)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			s, id := pair()
			if err := rawPut(ctx, st, subjectKey(s).Ref, id, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRawStoreGet(b *testing.B) {
	st := newRawStore(b)
	ctx := context.Background()
	body := RecordBody(1024)
	for i := range benchSubjects {
		if err := rawPut(ctx, st, subjectKey(i).Ref, "r0", body); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(body)))
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, _ := pair()
			if _, err := st.Record(ctx, subjectKey(s).Ref, RecordKind, "r0"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// newHTTPService runs the whole service in-process on an httptest server,
// wired as cmd/domicile's runtime wires it, and returns an app client and
// the subject ids registered.
func newHTTPService(b testing.TB) (*httpapi.Client, []string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	dep := deploy.Default()
	control, err := sqlite.OpenControl(ctx, filepath.Join(dir, "control"))
	if err != nil {
		b.Fatal(err)
	}
	var cells []*cell.Cell
	for _, cc := range dep.Cells {
		st := openCellStore(b, filepath.Join(dir, cc.ID))
		ks, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "custody", cc.ID))
		if err != nil {
			b.Fatal(err)
		}
		kek, err := filekms.Open(ctx, filekms.Config{Path: filepath.Join(dir, "custody", cc.ID, "kek.json"), ID: cc.ID + "/kek"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close(); ks.Close() })
		cells = append(cells, cell.New(cell.Config{Cell: cc, Deployment: dep, Store: st, KEK: kek, KeyStore: ks}))
	}
	router := residency.New(dep, cells, control, []byte("0123456789abcdef0123456789abcdef"))
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Router: router, Control: control, Logger: slog.New(slog.DiscardHandler)}))
	b.Cleanup(func() { srv.Close(); control.Close() })
	secret, _, err := httpapi.IssueToken(ctx, control, domicile.Token{Role: domicile.RoleApp, Jurisdiction: "CN"}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	c := &httpapi.Client{Client: client.Client{BaseURL: srv.URL, Token: secret, Purpose: "service", HTTP: NewHTTPClient(64)}}
	p := &Plan{Record: RecordBody(1024), Concurrency: 16}
	for i := range benchSubjects {
		p.Subjects = append(p.Subjects, fmt.Sprintf("bench-%d", i))
	}
	if err := parallel(ctx, len(p.Subjects), 16, func(ctx context.Context, i int) error {
		_, err := c.CreateSubject(ctx, p.Subjects[i], "CN", "")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if err := prepareRecords(ctx, c, p); err != nil {
		b.Fatal(err)
	}
	return c, p.Subjects
}

func benchHTTP(b *testing.B, op Op) {
	c, subjects := newHTTPService(b)
	p := &Plan{Subjects: subjects, Record: RecordBody(1024)}
	var seed atomic.Uint64
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &Worker{Plan: p, Rand: newRand(seed.Add(1))}
		for pb.Next() {
			if _, err := op.Do(context.Background(), c, w); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkHTTPPutRecord(b *testing.B) { benchHTTP(b, putRecord(1)) }
func BenchmarkHTTPGetRecord(b *testing.B) { benchHTTP(b, getRecord(1)) }
