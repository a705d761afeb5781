package domicile

import (
	"encoding/json"
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
