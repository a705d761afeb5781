package domicile

import (
	"encoding/json"
	"strconv"
	"time"

	"domicile/internal/jsonscan"
)

// AppendJSON appends r's JSON encoding to b: the same bytes as
// json.Marshal(r). Every read answers one record, and encoding/json
// rewrites its data (compacted, HTML-escaped) on every call; a stored
// body that is already in that form, as bodies sent compact are, is
// copied as it is. A test holds it to json.Marshal.
func (r *Record) AppendJSON(b []byte) ([]byte, error) {
	if y := r.Updated.Year(); y < 0 || y > 9999 || len(r.Data) > 0 && !canonicalRaw(r.Data) {
		// A body that needs rewriting, or a time json.Marshal refuses:
		// its answer, error included.
		out, err := json.Marshal(r)
		return append(b, out...), err
	}
	b = append(b, `{"subject":`...)
	b = appendJSONString(b, r.Subject)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, r.Kind)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, r.Version, 10)
	if len(r.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, r.Data...)
	}
	b = append(b, `,"updated":"`...)
	b = r.Updated.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if len(r.Withheld) > 0 {
		b = append(b, `,"withheld":[`...)
		for i, f := range r.Withheld {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// canonicalRaw reports whether raw is valid JSON that encoding/json
// would write unchanged as a json.RawMessage: no whitespace outside
// strings, and nothing it escapes for HTML (<, >, &, U+2028, U+2029).
// It is one pass over raw (jsonscan.Canonical).
func canonicalRaw(raw []byte) bool { return jsonscan.Canonical(raw) }
