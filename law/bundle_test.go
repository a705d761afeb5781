package law

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// counselRule is a rule a bundle adds: it fires for any outbound transfer
// of personal information from mainland China.
const counselRule = `rules:
  - id: CN.COUNSEL.1
    jurisdiction: CN
    topic: transfer_mechanism
    instrument: "Counsel's memorandum"
    article: "para. 1"
    effective_from: "2026-01-01"
    condition: "cn_transfer && transfer_contains_pi"
    consequence: >-
      Record the transfer in the group's register.
    effects: {obligations: [retain_sharing_records_3y]}
    confidence: secondary
    sources: [NONE]
`

func keyPair(t testing.TB, name string) (signer, verifier string) {
	t.Helper()
	s, v, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// counselFiles are the embedded rules with counselRule added, version v.
func counselFiles(t testing.TB, version string, extra map[string]string) map[string][]byte {
	t.Helper()
	files, err := EmbeddedFiles()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for k, v := range files {
		out[k] = v
	}
	out["vocabulary.yaml"] = bytes.Replace(out["vocabulary.yaml"], []byte(`version: "2026-12-07"`), []byte(`version: "`+version+`"`), 1)
	out["rules/zz_counsel.yaml"] = []byte(counselRule)
	for k, v := range extra {
		out[k] = []byte(v)
	}
	return out
}

// writeBundle signs files with skey ("" for none) and writes a bundle.
func writeBundle(t testing.TB, files map[string][]byte, skey string) string {
	t.Helper()
	if skey != "" {
		// Sign the digest without compiling, so broken rule sets can be signed too.
		v, _ := loadVocabulary(files["vocabulary.yaml"])
		ref := RuleSetRef{Digest: digestFiles(files)}
		if v != nil {
			ref.Version = v.Version
		}
		sig, err := Sign(ref, skey)
		if err != nil {
			t.Fatal(err)
		}
		files[SignatureFile] = sig
	}
	var buf bytes.Buffer
	if err := WriteBundle(&buf, files); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rules.bundle")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBundleSignedAddsRule(t *testing.T) {
	skey, vkey := keyPair(t, "counsel.example")
	p := writeBundle(t, counselFiles(t, "2027-01-15", nil), skey)
	l, err := Load(p, []string{vkey})
	if err != nil {
		t.Fatal(err)
	}
	if l.Signer != "counsel.example" || !l.Bundle {
		t.Errorf("signer %q bundle %v", l.Signer, l.Bundle)
	}
	rs := l.Engine.RuleSet()
	if rs.Version != "2027-01-15" || rs == MustEngine(t).RuleSet() {
		t.Errorf("rule set %v", rs)
	}
	rep, err := l.Engine.Decide(Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(150000), "recipient_country": "US"}, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Fired, "CN.COUNSEL.1") || rep.RuleSet != rs {
		t.Errorf("counsel's rule did not fire (%v) or the report's rule set %v is not %v", rep.Fired, rep.RuleSet, rs)
	}
	for _, f := range rep.Findings {
		if f.RuleSet != rs {
			t.Errorf("finding %s carries rule set %v", f.Rule, f.RuleSet)
		}
	}
	// The same files give the same digest from a directory.
	dir := t.TempDir()
	files := counselFiles(t, "2027-01-15", nil)
	for n, b := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(n)), 0o755)
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	ld, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ld.Engine.RuleSet() != rs || ld.Signer != "" {
		t.Errorf("directory rule set %v signer %q, bundle %v", ld.Engine.RuleSet(), ld.Signer, rs)
	}
	if _, err := Load(dir, []string{vkey}); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("unsigned directory with keys listed: %v", err)
	}
}

func TestBundleRefused(t *testing.T) {
	skey, vkey := keyPair(t, "counsel.example")
	other, _ := keyPair(t, "intruder.example")
	signedFiles := counselFiles(t, "2027-01-15", nil)
	tampered := writeBundle(t, signedFiles, skey)
	{ // change a rule after signing
		data, _ := os.ReadFile(tampered)
		files, err := ReadBundle(data)
		if err != nil {
			t.Fatal(err)
		}
		files["rules/zz_counsel.yaml"] = bytes.Replace(files["rules/zz_counsel.yaml"], []byte("group's register"), []byte("group's ledger"), 1)
		var buf bytes.Buffer
		WriteBundle(&buf, files)
		os.WriteFile(tampered, buf.Bytes(), 0o644)
	}
	for _, tc := range []struct {
		name string
		path string
		keys []string
		want string
	}{
		{"other key", writeBundle(t, counselFiles(t, "2027-01-15", nil), other), []string{vkey}, "intruder.example"},
		{"unsigned", writeBundle(t, counselFiles(t, "2027-01-15", nil), ""), []string{vkey}, "not signed"},
		{"no keys listed", writeBundle(t, counselFiles(t, "2027-01-15", nil), skey), nil, "no verifier keys"},
		{"changed after signing", tampered, []string{vkey}, "changed after signing"},
		{"type error", writeBundle(t, counselFiles(t, "x", map[string]string{"rules/zz_counsel.yaml": strings.Replace(counselRule, "cn_transfer && transfer_contains_pi", `pi_individuals_ytd == 'many'`, 1)}), skey), []string{vkey}, "CN.COUNSEL.1"},
		{"unknown fact", writeBundle(t, counselFiles(t, "x", map[string]string{"rules/zz_counsel.yaml": strings.Replace(counselRule, "cn_transfer && transfer_contains_pi", `cn_transfer && ships_by_sea`, 1)}), skey), []string{vkey}, "ships_by_sea"},
		{"unknown obligation", writeBundle(t, counselFiles(t, "x", map[string]string{"rules/zz_counsel.yaml": strings.Replace(counselRule, "retain_sharing_records_3y", "pay_tithe", 1)}), skey), []string{vkey}, "pay_tithe"},
		{"bad version", writeBundle(t, counselFiles(t, "a b", nil), skey), []string{vkey}, "version"},
		{"malformed key", writeBundle(t, counselFiles(t, "x", nil), skey), []string{"not-a-key"}, "not-a-key"},
		{"missing path", filepath.Join(t.TempDir(), "nope"), []string{vkey}, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path, tc.keys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestReadBundleRejects(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteBundle(&buf, map[string][]byte{"../etc/passwd": []byte("x")}); err == nil {
		t.Error("WriteBundle accepted a path outside the rule set")
	}
	for _, data := range [][]byte{[]byte("not a tar"), {0x1f, 0x8b, 0, 0}} {
		if _, err := ReadBundle(data); err == nil {
			t.Errorf("ReadBundle(%q) accepted", data)
		}
	}
}

// FuzzReadBundle fuzzes the bundle reader and the loaders behind it: no
// input may panic, and whatever loads has a well-formed digest.
func FuzzReadBundle(f *testing.F) {
	files, err := EmbeddedFiles()
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	WriteBundle(&buf, map[string][]byte{"vocabulary.yaml": files["vocabulary.yaml"], "rules/a.yaml": []byte(counselRule)})
	f.Add(buf.Bytes())
	f.Add([]byte("vocabulary.yaml"))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := ReadBundle(data)
		if err != nil {
			return
		}
		for n := range files {
			if !ruleFile(n) {
				t.Fatalf("ReadBundle returned %s", n)
			}
		}
		delete(files, SignatureFile)
		if _, ok := files["vocabulary.yaml"]; !ok {
			return
		}
		if e, err := newEngineFiles(files); err == nil && !strings.HasPrefix(e.RuleSet().Digest, "sha256:") {
			t.Fatalf("digest %q", e.RuleSet().Digest)
		}
	})
}

// FuzzLoadRuleDocument fuzzes the rule-document and vocabulary loaders with
// one document beside the embedded vocabulary, and a vocabulary on its own.
func FuzzLoadRuleDocument(f *testing.F) {
	f.Add([]byte(counselRule), []byte("schema_version: 1\nversion: x\nfacts: []\n"))
	f.Add([]byte("rules: []\n"), vocabularyYAML)
	f.Add([]byte(strings.Replace(counselRule, "cn_transfer", "cn_transfer ||", 1)), []byte("schema_version: 2\n"))
	f.Fuzz(func(t *testing.T, doc, vocab []byte) {
		newEngineFiles(map[string][]byte{"vocabulary.yaml": vocabularyYAML, "rules/a.yaml": doc})
		loadVocabulary(vocab)
	})
}
