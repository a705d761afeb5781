package domicile

import (
	"errors"
	"time"
	"unicode/utf8"
)

// errEventTime is returned by AppendJSON for a time encoding/json cannot
// write either (a year outside 0-9999).
var errEventTime = errors.New("event: time outside the years 0-9999")

// AppendJSON appends e's JSON encoding to b: the same bytes as
// json.Marshal(e), written without reflection, since every access writes
// one event and its commitment covers these exact bytes. A test holds it
// to json.Marshal.
func (e Event) AppendJSON(b []byte) ([]byte, error) {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return b, errEventTime
	}
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","cell":`...)
	b = appendJSONString(b, e.Cell)
	if e.Subject != "" {
		b = append(b, `,"subject":`...)
		b = appendJSONString(b, e.Subject)
	}
	b = append(b, `,"role":`...)
	b = appendJSONString(b, string(e.Role))
	if e.Jurisdiction != "" {
		b = append(b, `,"jurisdiction":`...)
		b = appendJSONString(b, string(e.Jurisdiction))
	}
	if e.TokenID != "" {
		b = append(b, `,"token":`...)
		b = appendJSONString(b, e.TokenID)
	}
	b = append(b, `,"action":`...)
	b = appendJSONString(b, string(e.Action))
	b = append(b, `,"resource":`...)
	b = appendJSONString(b, e.Resource)
	b = append(b, `,"basis":`...)
	b = appendJSONString(b, e.Basis)
	if e.Reference != "" {
		b = append(b, `,"reference":`...)
		b = appendJSONString(b, e.Reference)
	}
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, string(e.Outcome))
	if e.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, e.Detail)
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json writes a string: quoted,
// with <, > and & escaped (its default HTML escaping), control characters,
// U+2028 and U+2029 escaped, and invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
