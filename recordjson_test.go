package domicile_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"domicile"
)

// FuzzRecordAppendJSON: Record.AppendJSON writes json.Marshal's bytes,
// whatever the stored body, ids and withheld fields.
func FuzzRecordAppendJSON(f *testing.F) {
	for _, s := range []string{`{"name":"李伟","note":"a b"}`, `{ "a": 1 }`, `{"h":"<b>&"}`, "{\"s\":\"\u2028\"}", `[1,2,{"x":null}]`, `"x"`, ``, `{"a":"\\"}`} {
		f.Add([]byte(s), "li", "profile", "main", int64(3), int64(1765000000123456789), "profile.phone")
	}
	f.Fuzz(func(t *testing.T, data []byte, subject, kind, id string, version, ns int64, withheld string) {
		if len(data) > 0 && !json.Valid(data) {
			return // a stored body is valid JSON
		}
		r := &domicile.Record{Subject: subject, Kind: kind, ID: id, Version: version, Data: data, Updated: time.Unix(0, ns).UTC()}
		if withheld != "" {
			r.Withheld = []string{withheld, "x"}
		}
		want, werr := json.Marshal(r)
		got, gerr := r.AppendJSON(nil)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: json.Marshal %v, AppendJSON %v", werr, gerr)
		}
		if werr == nil && string(got) != string(want) {
			t.Fatalf("AppendJSON:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}

func BenchmarkRecordJSON(b *testing.B) {
	data, _ := json.Marshal(map[string]any{"name": "李伟", "note": string(make([]byte, 0)) + "a message of some length, with words and, commas", "n": 12345})
	r := &domicile.Record{Subject: "li", Kind: "message", ID: "m-1", Version: 3, Data: data, Updated: time.Now().UTC()}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = r.AppendJSON(buf[:0])
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(r)
		}
	})
	// A 1 KiB body shaped as package bench's RecordBody(1024) writes them.
	const head, tail = `{"from":"bench","to":"bench","body":"`, `"}`
	r1k := *r
	r1k.Data = []byte(head + strings.Repeat("q0-Zx_8AbCdEfGhI", 64)[:1024-len(head)-len(tail)] + tail)
	b.Run("append-1k", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = r1k.AppendJSON(buf[:0])
		}
	})
}
