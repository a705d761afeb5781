package deploy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// Two witness verifier keys (from checkpoint.GenerateCosignerKey).
const (
	wkey1 = "w1.example+ec754ed1+BH0riOwLQ1F3Can/I+u0uxVjCgSXA9OuCuyBBz/HWYoi"
	wkey2 = "w2.example+0251abb5+BEFdztNVwgVzUixjbRDdXZ5c+m4x2NVogAOgEDKl9nYE"
)

const witnessBase = "cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\n  - id: eu-fra1\n    jurisdiction: EU\n    operator: Op\npolicy:\n  CN: [cn-gz1]\n  \"*\": [eu-fra1]\n"

func TestParseWitnesses(t *testing.T) {
	doc := witnessBase + "witness_wait: 3s\nwitnesses:\n" +
		"  - name: auditor\n    url: https://witness.auditor.example/\n    key: " + wkey1 + "\n    required: true\n" +
		"  - name: ngo\n    url: http://127.0.0.1:8711\n    key: " + wkey2 + "\n    cells: [eu-fra1]\n"
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []domicile.WitnessConfig{
		{Name: "auditor", URL: "https://witness.auditor.example/", Key: wkey1, Required: true},
		{Name: "ngo", URL: "http://127.0.0.1:8711", Key: wkey2, Cells: []string{"eu-fra1"}},
	}
	if diff := cmp.Diff(want, d.Witnesses); diff != "" {
		t.Errorf("Witnesses (-want +got):\n%s", diff)
	}
	if d.WitnessWait != 3*time.Second {
		t.Errorf("WitnessWait = %v, want 3s", d.WitnessWait)
	}
	if got := d.WitnessesOf("cn-gz1"); len(got) != 1 || got[0].Name != "auditor" {
		t.Errorf("WitnessesOf(cn-gz1) = %+v, want only auditor", got)
	}
	if got := d.WitnessesOf("eu-fra1"); len(got) != 2 {
		t.Errorf("WitnessesOf(eu-fra1) = %+v, want both", got)
	}
	if d := Default(); len(d.Witnesses) != 0 || d.WitnessWait != 0 {
		t.Errorf("the embedded default lists witnesses: %+v", d.Witnesses)
	}
}

// TestParseRefusesBadWitnesses: each mistake is refused at its line.
func TestParseRefusesBadWitnesses(t *testing.T) {
	w := func(fields string) string { return witnessBase + "witnesses:\n  - " + fields + "\n" }
	ok := "name: a\n    url: https://w.example/\n    key: " + wkey1
	tests := []struct {
		name, doc string
		line      int
		want      string
	}{
		{"not a list", witnessBase + "witnesses: {a: 1}\n", 11, "witnesses must be a list"},
		{"not a mapping", witnessBase + "witnesses: [a]\n", 11, "a witness must be a mapping"},
		{"no name", w("url: https://w.example/\n    key: " + wkey1), 12, "no name"},
		{"no url", w("name: a\n    key: " + wkey1), 12, `"a" has no url`},
		{"no key", w("name: a\n    url: https://w.example/"), 12, `"a" has no key`},
		{"bad name", w("name: A B\n    url: https://w.example/\n    key: " + wkey1), 12, "witness name"},
		{"ftp url", w("name: a\n    url: ftp://w.example/\n    key: " + wkey1), 13, "http:// or https://"},
		{"credentials in url", w("name: a\n    url: https://u:p@w.example/\n    key: " + wkey1), 13, "credentials"},
		{"query in url", w("name: a\n    url: https://w.example/?x=1\n    key: " + wkey1), 13, "no query"},
		{"no host", w("name: a\n    url: https:///x\n    key: " + wkey1), 13, "no host"},
		{"log key, not a witness key", w("name: a\n    url: https://w.example/\n    key: domicile/demo/cn-gz1+43b26bcd+AZPrpwHShr5xwu/9MoEVxBHtF6fOsVN9Mu5wN8ycsyQi"), 14, "not a cosignature verifier key"},
		{"required not a bool", w(ok + "\n    required: yes please"), 15, "true or false"},
		{"required quoted", w(ok + "\n    required: \"true\""), 15, "true or false"},
		{"unknown cell", w(ok + "\n    cells: [mars-1]"), 15, `witness cell "mars-1" is not a declared cell`},
		{"empty cells", w(ok + "\n    cells: []"), 15, "non-empty list"},
		{"cell twice", w(ok + "\n    cells: [cn-gz1, cn-gz1]"), 15, "listed twice"},
		{"unknown field", w(ok + "\n    weight: 2"), 15, `unknown witness key "weight"`},
		{"field twice", w(ok + "\n    name: b"), 15, "appears twice"},
		{"same name", w(ok) + "  - name: a\n    url: https://v.example/\n    key: " + wkey2 + "\n", 15, "declared twice"},
		{"same url", w(ok) + "  - name: b\n    url: https://w.example/\n    key: " + wkey2 + "\n", 15, "the same url"},
		{"same key", w(ok) + "  - name: b\n    url: https://v.example/\n    key: " + wkey1 + "\n", 15, "the same key"},
		{"wait too short", witnessBase + "witness_wait: 10ms\n", 11, "witness_wait"},
		{"wait not a duration", witnessBase + "witness_wait: soon\n", 11, "witness_wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Parse = %v, want a LineError", err)
			}
			if le.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error %q (line %d), want %q at line %d", err, le.Line, tt.want, tt.line)
			}
		})
	}
}
