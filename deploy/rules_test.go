package deploy

import (
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	base := defaultYAML
	const key = "counsel.example+1891b880+AXzhNu4wHi8Cijw5lFQV9fn+HDQhSTU/hyhuTXqvpVtQ"
	for _, tc := range []struct{ add, want string }{
		{"rules: {path: rules.bundle, keys: [\"" + key + "\"]}\n", ""},
		{"rules: {path: rules.bundle}\n", "at least one verifier key"},
		{"rules: {keys: [\"" + key + "\"]}\n", "path is required"},
		{"rules: {path: x, keys: [nonsense]}\n", "keys[0]"},
		{"rules: {path: x, keys: [\"" + key + "\"], colour: red}\n", "colour"},
	} {
		d, err := Parse(append(append([]byte{}, base...), []byte("\n"+tc.add)...))
		if tc.want == "" {
			if err != nil || d.Rules.Path != "rules.bundle" || len(d.Rules.Keys) != 1 {
				t.Errorf("%s: %v %+v", tc.add, err, d)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.add, err, tc.want)
		}
	}
}
