package witness

import (
	"bytes"
	"fmt"

	"domicile/checkpoint"
)

// MaxLogListBytes bounds a log list read by [ParseLogList], and MaxLogs
// the logs it may name.
const (
	MaxLogListBytes = 1 << 20
	MaxLogs         = 4096
)

// ParseLogList reads the list of logs a stand-alone witness cosigns: one
// log verifier key ("<origin>+<key ID>+<base64 key>", as `domicile cells
// --log-key` prints it) per line, whose name is the log's origin. Blank
// lines and lines starting with '#' are ignored; spaces around a key are
// not significant. A log listed twice, by the same or another key, is an
// error, as is a line that is not a verifier key; errors name the line.
func ParseLogList(b []byte) ([]string, error) {
	if len(b) > MaxLogListBytes {
		return nil, fmt.Errorf("witness: log list is over %d bytes", MaxLogListBytes)
	}
	var keys []string
	origins := map[string]int{}
	for i, line := range bytes.Split(b, []byte("\n")) {
		n := i + 1
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k := string(line)
		v, err := checkpoint.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("witness: log list line %d: not a log verifier key (<origin>+<key ID>+<key>)", n)
		}
		if prev, dup := origins[v.Name()]; dup {
			return nil, fmt.Errorf("witness: log list line %d: log %q is already listed on line %d", n, truncate(v.Name(), 64), prev)
		}
		if len(keys) == MaxLogs {
			return nil, fmt.Errorf("witness: log list line %d: more than %d logs", n, MaxLogs)
		}
		origins[v.Name()] = n
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("witness: the log list names no log")
	}
	return keys, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
