package domicile

// Tests of the hot path's hand-written encoders and scanners against the
// reflection-based code they replace.

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestEventAppendJSON holds AppendJSON to json.Marshal's bytes for any
// event: any strings (invalid UTF-8, controls, HTML characters, U+2028
// included), empty optional fields, any time in the years json accepts.
func TestEventAppendJSON(t *testing.T) {
	str := rapid.OneOf(rapid.String(), rapid.StringOf(rapid.SampledFrom([]rune("<>&\"\\\n\t\x00\x1f\u2028\u2029é中a"))),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }), rapid.Just(""))
	rapid.Check(t, func(t *rapid.T) {
		loc := time.FixedZone("z", rapid.IntRange(-14*3600, 14*3600).Draw(t, "offset"))
		e := Event{
			Time:         time.Unix(rapid.Int64Range(-62135596800, 253402300799).Draw(t, "sec"), rapid.Int64Range(0, 999999999).Draw(t, "ns")).In(loc),
			Cell:         str.Draw(t, "cell"),
			Subject:      str.Draw(t, "subject"),
			Role:         Role(str.Draw(t, "role")),
			Jurisdiction: Jurisdiction(str.Draw(t, "jurisdiction")),
			TokenID:      str.Draw(t, "token"),
			Action:       Action(str.Draw(t, "action")),
			Resource:     str.Draw(t, "resource"),
			Basis:        str.Draw(t, "basis"),
			Reference:    str.Draw(t, "reference"),
			Outcome:      Outcome(str.Draw(t, "outcome")),
			Detail:       str.Draw(t, "detail"),
		}
		want, werr := json.Marshal(e)
		got, gerr := e.AppendJSON(nil)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("AppendJSON error %v, json.Marshal error %v", gerr, werr)
		}
		if werr == nil && string(got) != string(want) {
			t.Fatalf("AppendJSON = %s\njson.Marshal = %s", got, want)
		}
	})
}

func BenchmarkEventJSON(b *testing.B) {
	e := Event{Time: time.Now().UTC(), Cell: "cn-gz1", Subject: "3f2a9c", Role: RoleApp, Jurisdiction: "CN", TokenID: "tok_abc", Action: ActRead, Resource: "record/message/m1", Basis: "service", Outcome: Allowed}
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(e)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf, _ = e.AppendJSON(buf[:0])
		}
	})
}

// TestKindCheckScan holds Kind.Check's byte scan to the decoding it
// replaces, on bodies of any shape.
func TestKindCheckScan(t *testing.T) {
	k := &Kind{Name: "k", Fields: map[string]Category{"a": "x", "b": "x", "é": "x", "a\"b": "x", "": "x"}}
	name := rapid.SampledFrom([]string{`"a"`, `"b"`, `"é"`, `"\u00e9"`, `"a\"b"`, `""`, `"c"`, `"a\\"`})
	val := rapid.SampledFrom([]string{`1`, `-2.5e3`, `"s"`, `"}\"]"`, `[1,{"a":[]}]`, `{}`, `null`, `true`, `{"x":"{"}`, ` [ ] `})
	ws := rapid.SampledFrom([]string{"", " ", "\n\t"})
	rapid.Check(t, func(t *rapid.T) {
		var body string
		switch rapid.IntRange(0, 9).Draw(t, "shape") {
		case 0:
			body = val.Draw(t, "scalar")
		case 1:
			body = `{"a":1,}`
		default:
			body = ws.Draw(t, "w0") + "{"
			for i := range rapid.IntRange(0, 5).Draw(t, "n") {
				if i > 0 {
					body += ","
				}
				body += ws.Draw(t, "w1") + name.Draw(t, "name") + ws.Draw(t, "w2") + ":" + ws.Draw(t, "w3") + val.Draw(t, "val") + ws.Draw(t, "w4")
			}
			body += "}" + ws.Draw(t, "w5")
		}
		got, gerr := k.Check([]byte(body))
		want, werr := k.checkDecoded([]byte(body))
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) || !slices.Equal(got, want) {
			t.Fatalf("Check(%s) = %q, %v; decoding gives %q, %v", body, got, gerr, want, werr)
		}
	})
}

func BenchmarkKindCheck(b *testing.B) {
	k := &Kind{Name: "message", Fields: map[string]Category{"body": "x", "from": "x", "to": "x"}}
	body := []byte(`{"body":"` + strings.Repeat("a", 1000) + `","from":"li","to":"wei"}`)
	b.Run("Scan", func(b *testing.B) {
		for b.Loop() {
			k.Check(body)
		}
	})
	b.Run("Decode", func(b *testing.B) {
		for b.Loop() {
			k.checkDecoded(body)
		}
	})
}
