package rights

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// BundleFormat names the copy bundle format. A bundle is a ZIP archive:
//
//	README.txt                    what the bundle is and how to check it (en, zh-CN)
//	request.json                  the request it answers
//	records/<kind>/<id>.json      each record: kind, id, version, updated, data
//	objects/<name>                each file, as stored
//	objects.json                  the files' metadata (content type, size, SHA-256)
//	trail.json                    the subject's events, each with its salt, leaf and
//	                              inclusion proof against the signed checkpoint included
//	consents.json                 the subject's consents
//	transfers.json                the transfers abroad its events name
//	manifest.json                 the SHA-256 and size of every file above
//	SHA256SUMS                    the same, in sha256sum's format
//
// Record ids are path-escaped in file names (the file holds the real id).
// The manifest and SHA256SUMS come last and cover every other file, so
// "unzip bundle.zip && sha256sum -c SHA256SUMS" checks a bundle with
// standard tools. When the request gave an age recipient, the whole ZIP
// is age-encrypted to it (bundle.zip.age; "age -d -i key.txt").
const BundleFormat = "domicile-copy/1"

// Manifest is manifest.json.
type Manifest struct {
	Format  string         `json:"format"`
	Request string         `json:"request"`
	Kind    Kind           `json:"kind"`
	Subject string         `json:"subject"`
	Cell    string         `json:"cell"`
	Created time.Time      `json:"created"`
	Files   []ManifestFile `json:"files"`
}

// ManifestFile is one file of a bundle.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// bundleWriter writes a bundle's files, hashing each.
type bundleWriter struct {
	zw      *zip.Writer
	created time.Time
	files   []ManifestFile
}

func newBundleWriter(w io.Writer, created time.Time) *bundleWriter {
	return &bundleWriter{zw: zip.NewWriter(w), created: created}
}

// add writes one file from r.
func (b *bundleWriter) add(path string, r io.Reader) error {
	w, err := b.zw.CreateHeader(&zip.FileHeader{Name: path, Method: zip.Deflate, Modified: b.created})
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		return err
	}
	b.files = append(b.files, ManifestFile{Path: path, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// addJSON writes v as an indented JSON file.
func (b *bundleWriter) addJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return b.add(path, bytes.NewReader(append(data, '\n')))
}

// finish writes the manifest and SHA256SUMS and closes the archive.
func (b *bundleWriter) finish(m Manifest) error {
	m.Format, m.Files = BundleFormat, b.files
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	var sums bytes.Buffer
	for _, f := range b.files {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Path)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"manifest.json", append(data, '\n')}, {"SHA256SUMS", sums.Bytes()}} {
		w, err := b.zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: b.created})
		if err != nil {
			return err
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
	}
	return b.zw.Close()
}

// recordPath is the file name of a record in a bundle.
func recordPath(kind, id string) string {
	return "records/" + kind + "/" + url.PathEscape(id) + ".json"
}

// MaxVerifyFiles bounds the files VerifyBundle reads.
const MaxVerifyFiles = 1_000_000

// VerifyBundle checks a (decrypted) bundle of size bytes: that it has a
// manifest of format BundleFormat, that every file the manifest lists is
// there with its size and SHA-256, that SHA256SUMS says the same, and that
// no other file is in it. It returns the manifest. It is meant for
// recipients and tests.
func VerifyBundle(r io.ReaderAt, size int64) (*Manifest, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("rights: bundle: %v", err)
	}
	if len(zr.File) > MaxVerifyFiles {
		return nil, errors.New("rights: bundle: too many files")
	}
	byName := map[string]*zip.File{}
	for _, f := range zr.File {
		if byName[f.Name] != nil {
			return nil, fmt.Errorf("rights: bundle: %q appears twice", f.Name)
		}
		byName[f.Name] = f
	}
	read := func(name string, limit int64) ([]byte, error) {
		f := byName[name]
		if f == nil {
			return nil, fmt.Errorf("rights: bundle: no %s", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, limit))
	}
	mb, err := read("manifest.json", 64<<20)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil || m.Format != BundleFormat {
		return nil, errors.New("rights: bundle: malformed manifest")
	}
	listed := map[string]bool{"manifest.json": true, "SHA256SUMS": true}
	var sums strings.Builder
	for _, mf := range m.Files {
		f := byName[mf.Path]
		if f == nil || listed[mf.Path] {
			return nil, fmt.Errorf("rights: bundle: %q is listed but missing or listed twice", mf.Path)
		}
		listed[mf.Path] = true
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("rights: bundle: %s: %v", mf.Path, err)
		}
		if n != mf.Size || hex.EncodeToString(h.Sum(nil)) != mf.SHA256 {
			return nil, fmt.Errorf("rights: bundle: %s does not match its manifest", mf.Path)
		}
		fmt.Fprintf(&sums, "%s  %s\n", mf.SHA256, mf.Path)
	}
	for name := range byName {
		if !listed[name] {
			return nil, fmt.Errorf("rights: bundle: %q is not in the manifest", name)
		}
	}
	sb, err := read("SHA256SUMS", 64<<20)
	if err != nil {
		return nil, err
	}
	if string(sb) != sums.String() {
		return nil, errors.New("rights: bundle: SHA256SUMS differs from the manifest")
	}
	return &m, nil
}
