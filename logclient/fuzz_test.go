package logclient

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseExport feeds ParseExport arbitrary bytes, seeded with a real
// export's shape: it must never panic, and an export it accepts must
// encode and parse back to the same events.
func FuzzParseExport(f *testing.F) {
	f.Add([]byte(`{"events":[{"leaf_index":7,"salt":"AQID","committed":"{\"a\":1}","leaf":"domicile/v1 t=60 a=read r=app o=allowed c=x"}],"next":"abc"}`))
	f.Add([]byte(`{"events":[]}`))
	f.Add([]byte(`{"events":[{"leaf_index":-1,"salt":null}]}`))
	f.Add([]byte(`{"events":[{"salt":"%%%"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseExport(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal of a parsed export: %v", err)
		}
		again, err := ParseExport(b)
		if err != nil {
			t.Fatalf("ParseExport(Marshal(ParseExport(%q))): %v", data, err)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("export changed in a round trip:\n%s\n%s", b, b2)
		}
	})
}
