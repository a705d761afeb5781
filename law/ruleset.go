package law

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
)

// RuleSetRef identifies the rules an outcome came from: the version the
// vocabulary declares and the digest of the vocabulary and every rule
// document. Every report, finding and change report carries it.
type RuleSetRef struct {
	Version string `json:"version"`
	Digest  string `json:"digest"` // "sha256:" and 64 hex digits
}

// String is "VERSION (sha256:...)".
func (r RuleSetRef) String() string { return r.Version + " (" + r.Digest + ")" }

// RuleSet returns the version and digest of the engine's rules.
func (e *Engine) RuleSet() RuleSetRef { return e.ruleSet }

// ruleFiles returns the files of a rule set, by path: vocabulary.yaml and
// rules/*.yaml. Nothing else is part of a rule set.
func ruleFiles(vocab []byte, rules fs.FS) (map[string][]byte, error) {
	names, err := fs.Glob(rules, "rules/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("law: %v", err)
	}
	files := map[string][]byte{"vocabulary.yaml": vocab}
	for _, n := range names {
		b, err := fs.ReadFile(rules, n)
		if err != nil {
			return nil, fmt.Errorf("law: %v", err)
		}
		files[n] = b
	}
	return files, nil
}

// digestFiles is the SHA-256 of the files in path order, each written as
// its path, a NUL, its length in decimal, a NUL and its bytes: the same
// rules give the same digest from the binary, a directory or a bundle.
func digestFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(len(files[n]))))
		h.Write([]byte{0})
		h.Write(files[n])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
