package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"domicile/httpapi"
)

// RecordKind is the declared record kind the mixes write: "message" is in
// the embedded demo deployment, with fields from, to and body.
const RecordKind = "message"

// readKeys is the number of records per subject that Prepare writes for
// the mixes that read records; reads pick one of them at random.
const readKeys = 2

// writeKeys is the number of record ids per subject that writes spread
// over: a write creates a record or replaces one, as in real use.
const writeKeys = 64

// objectSubjects bounds how many subjects hold the objects that object
// mixes read and overwrite, so that large objects do not fill the disk.
const objectSubjects = 8

// Op is one kind of request in a mix. Do sends one request and returns
// the payload bytes it moved (up or down): through w.Lean if the op is
// Lean and the worker has one, through c otherwise.
type Op struct {
	Name   string
	Weight int
	Do     func(ctx context.Context, c *httpapi.Client, w *Worker) (int64, error)
	// Lean says Do sends through the worker's lean connection when it
	// has one.
	Lean bool
}

// Mix is a named workload: weighted operations and what they need written
// before the run starts. To add a mix, add one entry to Mixes.
type Mix struct {
	Name    string
	Summary string
	Ops     []Op
	// Prepare writes what the operations read (records, objects) before
	// the warm-up; nil if nothing is needed.
	Prepare func(ctx context.Context, c *httpapi.Client, p *Plan) error
}

// Plan is what a run's workers share: the subjects, the payloads and the
// names Prepare wrote. It is read-only once the run starts.
type Plan struct {
	// Subjects are the ids of the subjects the load spreads over.
	Subjects []string
	// Record is a JSON record body of the requested size.
	Record []byte
	// Object is the content objects are written with.
	Object []byte
	// Concurrency bounds Prepare's parallel requests.
	Concurrency int
}

// Worker is one load worker's state; each goroutine has its own.
type Worker struct {
	Plan *Plan
	Rand *mrand.Rand
	// Lean, if set, is the worker's connection for the Lean operations.
	Lean *LeanConn
}

func (w *Worker) subject() string { return w.Plan.Subjects[w.Rand.IntN(len(w.Plan.Subjects))] }

func (w *Worker) objectSubject() string {
	return w.Plan.Subjects[w.Rand.IntN(min(len(w.Plan.Subjects), objectSubjects))]
}

// Mixes is the table of workloads, by name.
var Mixes = mixTable(
	&Mix{Name: "write", Summary: "record writes (create or replace)", Ops: []Op{putRecord(100)}},
	&Mix{Name: "read", Summary: "record reads", Ops: []Op{getRecord(100)}, Prepare: prepareRecords},
	&Mix{Name: "80/20", Summary: "80% record reads, 20% record writes", Ops: []Op{getRecord(80), putRecord(20)}, Prepare: prepareRecords},
	&Mix{Name: "object-64k", Summary: "64 KiB objects, half up, half down", Ops: []Op{putObject(50), getObject(50)}, Prepare: prepareObjects(64 << 10)},
	&Mix{Name: "object-8m", Summary: "8 MiB objects, half up, half down", Ops: []Op{putObject(50), getObject(50)}, Prepare: prepareObjects(8 << 20)},
	&Mix{Name: "object-8m-up", Summary: "8 MiB object uploads", Ops: []Op{putObject(100)}, Prepare: prepareObjects(8 << 20)},
	&Mix{Name: "object-8m-down", Summary: "8 MiB object downloads", Ops: []Op{getObject(100)}, Prepare: prepareObjects(8 << 20)},
)

func mixTable(ms ...*Mix) map[string]*Mix {
	t := make(map[string]*Mix, len(ms))
	for _, m := range ms {
		t[m.Name] = m
	}
	return t
}

// clientName names the client that sends the mix's operations when
// workers have lean connections: lean for its Lean operations, net/http
// for the others.
func (m *Mix) clientName() string {
	lean, other := false, false
	for _, op := range m.Ops {
		lean, other = lean || op.Lean, other || !op.Lean
	}
	switch {
	case lean && other:
		return ClientLean + " and " + ClientNetHTTP
	case lean:
		return ClientLean
	}
	return ClientNetHTTP
}

// MixNames returns the registered mix names, sorted.
func MixNames() []string {
	out := make([]string, 0, len(Mixes))
	for n := range Mixes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ObjectSize returns the object size a mix moves, or 0 for record mixes.
func (m *Mix) ObjectSize() int {
	switch {
	case strings.HasPrefix(m.Name, "object-64k"):
		return 64 << 10
	case strings.HasPrefix(m.Name, "object-8m"):
		return 8 << 20
	}
	return 0
}

func putRecord(weight int) Op {
	return Op{Name: "put-record", Weight: weight, Lean: true, Do: func(ctx context.Context, c *httpapi.Client, w *Worker) (int64, error) {
		s, id := w.subject(), "w"+strconv.Itoa(w.Rand.IntN(writeKeys))
		if w.Lean != nil {
			return w.Lean.PutRecord(ctx, s, RecordKind, id, w.Plan.Record)
		}
		_, err := c.PutRecord(ctx, s, RecordKind, id, rawJSON(w.Plan.Record), "")
		return int64(len(w.Plan.Record)), err
	}}
}

func getRecord(weight int) Op {
	return Op{Name: "get-record", Weight: weight, Lean: true, Do: func(ctx context.Context, c *httpapi.Client, w *Worker) (int64, error) {
		s, id := w.subject(), "r"+strconv.Itoa(w.Rand.IntN(readKeys))
		if w.Lean != nil {
			return w.Lean.GetRecord(ctx, s, RecordKind, id)
		}
		r, err := c.GetRecord(ctx, s, RecordKind, id)
		if err != nil {
			return 0, err
		}
		return int64(len(r.Data)), nil
	}}
}

func putObject(weight int) Op {
	return Op{Name: "put-object", Weight: weight, Do: func(ctx context.Context, c *httpapi.Client, w *Worker) (int64, error) {
		o := w.Plan.Object
		_, err := c.PutObject(ctx, w.objectSubject(), "p"+strconv.Itoa(w.Rand.IntN(4)), "application/octet-stream", bytes.NewReader(o), int64(len(o)))
		return int64(len(o)), err
	}}
}

func getObject(weight int) Op {
	return Op{Name: "get-object", Weight: weight, Do: func(ctx context.Context, c *httpapi.Client, w *Worker) (int64, error) {
		resp, err := c.GetObject(ctx, w.objectSubject(), "o0", "")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = fmt.Errorf("short object body: %d of %d bytes", n, resp.ContentLength)
		}
		return n, err
	}}
}

// rawJSON passes a JSON body through httpapi.Client unchanged.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// parallel runs f(i) for i in [0, n) with at most conc at once.
func parallel(ctx context.Context, n, conc int, f func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(conc, 1))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return f(ctx, i) })
	}
	return g.Wait()
}

func prepareRecords(ctx context.Context, c *httpapi.Client, p *Plan) error {
	return parallel(ctx, len(p.Subjects)*readKeys, p.Concurrency, func(ctx context.Context, i int) error {
		_, err := c.PutRecord(ctx, p.Subjects[i/readKeys], RecordKind, "r"+strconv.Itoa(i%readKeys), rawJSON(p.Record), "")
		if err != nil {
			return fmt.Errorf("prepare records: %w", err)
		}
		return nil
	})
}

func prepareObjects(size int) func(ctx context.Context, c *httpapi.Client, p *Plan) error {
	return func(ctx context.Context, c *httpapi.Client, p *Plan) error {
		n := min(len(p.Subjects), objectSubjects)
		return parallel(ctx, n, min(p.Concurrency, 4), func(ctx context.Context, i int) error {
			_, err := c.PutObject(ctx, p.Subjects[i], "o0", "application/octet-stream", bytes.NewReader(p.Object), int64(len(p.Object)))
			if err != nil {
				return fmt.Errorf("prepare objects: %w", err)
			}
			return nil
		})
	}
}

// RecordBody returns a JSON body of the "message" kind of exactly size
// bytes (at least 40), with random, incompressible content.
func RecordBody(size int) []byte {
	const head, tail = `{"from":"bench","to":"bench","body":"`, `"}`
	n := max(size-len(head)-len(tail), 1)
	raw := make([]byte, n)
	rand.Read(raw)
	s := base64.RawURLEncoding.EncodeToString(raw)[:n]
	return []byte(head + s + tail)
}

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newRand(seed uint64) *mrand.Rand { return mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
