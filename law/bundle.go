package law

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Limits on a rule set read from a directory or a bundle.
const (
	MaxBundleBytes   = 8 << 20 // largest bundle file, and largest total of a directory's rule files
	MaxRuleFiles     = 500     // most rule documents in one rule set
	MaxRuleFileBytes = 1 << 20 // largest single document
)

// SignatureFile is the name, inside a rule directory or bundle, of the
// signed note over the rule set's digest.
const SignatureFile = "signature"

// Loaded is a rule set read from a directory or a bundle, compiled and,
// when keys were given, with its signature verified.
type Loaded struct {
	Engine *Engine
	Path   string
	Bundle bool   // a bundle file, not a directory
	Signer string // name of the key that signed it ("" when unsigned)
}

// SignedText is the text of the signed note for a rule set: a line naming
// the version and a line with the digest.
func SignedText(r RuleSetRef) string {
	return "domicile rules " + r.Version + "\n" + r.Digest + "\n"
}

// Load reads a rule set from path: a directory holding vocabulary.yaml,
// rules/*.yaml and optionally a signature, or a bundle (a tar archive,
// gzip-compressed or not, holding the same files). It type-checks every
// document exactly as [New] does the embedded ones. A bundle must be signed
// by one of keys (note verifier keys); so must a directory when keys are
// given. An unsigned directory with no keys is accepted: a draft being
// written. Errors name the cause: the key that signed, a missing
// signature, a digest mismatch, the document and rule that do not check.
func Load(p string, keys []string) (*Loaded, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", p, err)
	}
	var files map[string][]byte
	if st.IsDir() {
		files, err = readRuleDir(p)
	} else {
		files, err = readBundle(p)
	}
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", p, err)
	}
	sig, signed := files[SignatureFile]
	delete(files, SignatureFile)
	if _, ok := files["vocabulary.yaml"]; !ok {
		return nil, fmt.Errorf("rules %s: no vocabulary.yaml", p)
	}
	l := &Loaded{Path: p, Bundle: !st.IsDir()}
	e, err := newEngineFiles(files)
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", p, err)
	}
	if len(keys) > 0 || l.Bundle || signed {
		if !signed {
			return nil, fmt.Errorf("rules %s: not signed: a bundle needs a %s file holding a signed note over its digest (%s)", p, SignatureFile, e.ruleSet.Digest)
		}
		if l.Signer, err = Verify(e.ruleSet, sig, keys); err != nil {
			return nil, fmt.Errorf("rules %s: %w", p, err)
		}
	}
	l.Engine = e
	return l, nil
}

// Verify checks that sig is a note signed by one of keys over the text
// [SignedText] of r, and returns the signer's name.
func Verify(r RuleSetRef, sig []byte, keys []string) (string, error) {
	if len(keys) == 0 {
		return "", errors.New("signed, but no verifier keys are listed to check the signature against")
	}
	var vs []note.Verifier
	for _, k := range keys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return "", fmt.Errorf("verifier key %q: %v", k, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(sig, note.VerifierList(vs...))
	if err != nil {
		var unk *note.UnknownVerifierError
		var ver *note.InvalidSignatureError
		switch {
		case errors.As(err, &unk):
			return "", fmt.Errorf("signed by key %s+%08x, which is not among the listed verifier keys", unk.Name, unk.KeyHash)
		case errors.As(err, &ver):
			return "", fmt.Errorf("bad signature by key %s+%08x: the signature does not verify", ver.Name, ver.Hash)
		}
		var un *note.UnverifiedNoteError
		if errors.As(err, &un) {
			var by []string
			for _, s := range un.Note.UnverifiedSigs {
				by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			if len(by) == 0 {
				return "", errors.New("the signature file carries no signature")
			}
			return "", fmt.Errorf("signed by key %s, which is not among the listed verifier keys", strings.Join(by, ", "))
		}
		return "", fmt.Errorf("signature file is not a signed note: %v", err)
	}
	if n.Text != SignedText(r) {
		return "", fmt.Errorf("signed by %s over %q, but the rules are %s: the bundle was changed after signing", n.Sigs[0].Name, strings.TrimSpace(n.Text), r)
	}
	return n.Sigs[0].Name, nil
}

// Sign returns the signed note over r's text with signer key skey
// (a note signer key, as note.GenerateKey makes).
func Sign(r RuleSetRef, skey string) ([]byte, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("signer key: %v", err)
	}
	return note.Sign(&note.Note{Text: SignedText(r)}, s)
}

// ruleFile reports whether name (slash-separated) belongs to a rule set.
func ruleFile(name string) bool {
	if name == "vocabulary.yaml" || name == SignatureFile {
		return true
	}
	ok, _ := path.Match("rules/*.yaml", name)
	return ok
}

type budget struct{ files, bytes int }

func (b *budget) add(name string, n int64) error {
	b.files++
	b.bytes += int(n)
	switch {
	case n > MaxRuleFileBytes:
		return fmt.Errorf("%s is larger than %d bytes", name, MaxRuleFileBytes)
	case b.files > MaxRuleFiles+2:
		return fmt.Errorf("more than %d rule documents", MaxRuleFiles)
	case b.bytes > MaxBundleBytes:
		return fmt.Errorf("rule files total more than %d bytes", MaxBundleBytes)
	}
	return nil
}

func readRuleDir(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	var b budget
	names := []string{"vocabulary.yaml", SignatureFile}
	docs, err := filepath.Glob(filepath.Join(dir, "rules", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		names = append(names, "rules/"+filepath.Base(d))
	}
	for _, n := range names {
		fp := filepath.Join(dir, filepath.FromSlash(n))
		st, err := os.Lstat(fp)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", n)
		}
		if err := b.add(n, st.Size()); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(fp)
		if err != nil {
			return nil, err
		}
		files[n] = data
	}
	return files, nil
}

func readBundle(name string) (map[string][]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBundleBytes {
		return nil, fmt.Errorf("bundle is larger than %d bytes", MaxBundleBytes)
	}
	return ReadBundle(data)
}

// ReadBundle returns the rule set files of a bundle: a tar archive,
// gzip-compressed or not. Entries other than vocabulary.yaml,
// rules/*.yaml and signature are an error, so that nothing in a signed
// bundle goes unchecked.
func ReadBundle(data []byte) (map[string][]byte, error) {
	var r io.Reader = bytes.NewReader(data)
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("bundle: %v", err)
		}
		r = io.LimitReader(zr, MaxBundleBytes+1)
	}
	tr := tar.NewReader(r)
	files := map[string][]byte{}
	var b budget
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bundle: not a tar archive: %v", err)
		}
		name := strings.TrimPrefix(path.Clean(h.Name), "./")
		if h.Typeflag == tar.TypeDir {
			if name == "rules" || name == "." {
				continue
			}
			return nil, fmt.Errorf("bundle: unexpected directory %s", h.Name)
		}
		if h.Typeflag != tar.TypeReg || !ruleFile(name) {
			return nil, fmt.Errorf("bundle: unexpected entry %s (a bundle holds vocabulary.yaml, rules/*.yaml and %s)", h.Name, SignatureFile)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("bundle: %s appears twice", name)
		}
		if err := b.add(name, h.Size); err != nil {
			return nil, fmt.Errorf("bundle: %v", err)
		}
		body, err := io.ReadAll(io.LimitReader(tr, MaxRuleFileBytes+1))
		if err != nil {
			return nil, fmt.Errorf("bundle: %s: %v", name, err)
		}
		files[name] = body
	}
	return files, nil
}

// WriteBundle writes files (by path) as a gzip-compressed tar archive in
// path order, with fixed metadata so the same files give the same bytes.
func WriteBundle(w io.Writer, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		if !ruleFile(n) {
			return fmt.Errorf("bundle: %s is not a rule set file", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// Files returns the files of the engine's rule set by path, for writing a
// bundle. The caller must not modify them.
func (e *Engine) Files() map[string][]byte { return e.files }

// EmbeddedFiles returns the embedded rule set's files by path, the start
// of a bundle counsel edits.
func EmbeddedFiles() (map[string][]byte, error) { return ruleFiles(vocabularyYAML, ruleFS) }
