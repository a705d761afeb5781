package leaf

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testSalt = bytes.Repeat([]byte{0x5a}, SaltSize)

const testCommitted = `{"time":"2026-01-01T00:00:42Z","cell":"cn-gz1","subject":"s-7f3a","action":"read"}`

func testLeaf() Leaf {
	return Leaf{
		Time:       time.Date(2026, 1, 1, 0, 0, 42, 0, time.UTC),
		Action:     "read",
		Role:       "operator",
		Outcome:    "allowed",
		Commitment: Commit(testSalt, []byte(testCommitted)),
	}
}

func TestFormat(t *testing.T) {
	l := testLeaf()
	// The commitment computed independently with crypto/hmac.
	m := hmac.New(sha256.New, testSalt)
	m.Write([]byte(testCommitted))
	want := "domicile/v1 t=1767225600 a=read r=operator o=allowed c=" + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := string(Format(l)); got != want {
		t.Errorf("Format() = %q, want %q", got, want)
	}
	if got := l.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseRoundTrip(t *testing.T) {
	for _, action := range Actions {
		for _, role := range Roles {
			for _, outcome := range Outcomes {
				l := testLeaf()
				l.Action, l.Role, l.Outcome = action, role, outcome
				l.Time = time.Unix(1767225600+int64(len(action))*60, 0).UTC()
				b := Format(l)
				got, err := Parse(b)
				if err != nil {
					t.Fatalf("Parse(%q) error: %v", b, err)
				}
				if diff := cmp.Diff(l, got); diff != "" {
					t.Errorf("Parse(Format(l)) mismatch (-want +got):\n%s", diff)
				}
				if len(b) > MaxSize {
					t.Errorf("len(Format(l)) = %d, above MaxSize %d", len(b), MaxSize)
				}
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := string(Format(testLeaf()))
	c := good[strings.Index(good, "c="):]
	tests := map[string]string{
		"empty":                "",
		"trailing newline":     good + "\n",
		"leading space":        " " + good,
		"double space":         strings.Replace(good, " a=", "  a=", 1),
		"wrong version":        strings.Replace(good, "domicile/v1", "domicile/v2", 1),
		"fields reordered":     "domicile/v1 a=read t=1767225600 r=operator o=allowed " + c,
		"time not minute":      strings.Replace(good, "t=1767225600", "t=1767225601", 1),
		"time leading zero":    strings.Replace(good, "t=1767225600", "t=01767225600", 1),
		"time plus sign":       strings.Replace(good, "t=1767225600", "t=+1767225600", 1),
		"negative time":        strings.Replace(good, "t=1767225600", "t=-60", 1),
		"unknown action":       strings.Replace(good, "a=read", "a=peek", 1),
		"unknown role":         strings.Replace(good, "r=operator", "r=root", 1),
		"unknown outcome":      strings.Replace(good, "o=allowed", "o=maybe", 1),
		"uppercase outcome":    strings.Replace(good, "o=allowed", "o=Allowed", 1),
		"unpadded commitment":  strings.TrimRight(good, "="),
		"url base64":           "domicile/v1 t=60 a=read r=app o=denied c=" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)),
		"short commitment":     "domicile/v1 t=60 a=read r=app o=denied c=" + base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"extra field":          good + " x=1",
		"missing key":          strings.Replace(good, "r=operator", "operator", 1),
		"non-canonical base64": "domicile/v1 t=60 a=read r=app o=denied c=" + base64.StdEncoding.EncodeToString(make([]byte, 32))[:42] + "B=",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if l, err := Parse([]byte(in)); err == nil {
				t.Errorf("Parse(%q) = %+v, want error", in, l)
			} else if in != "" && strings.Contains(err.Error(), in) {
				t.Errorf("Parse(%q) error echoes input", in)
			}
		})
	}
}

func TestFormatRoundsDownToMinute(t *testing.T) {
	for _, sec := range []int{0, 1, 59} {
		l := testLeaf()
		l.Time = time.Date(2026, 1, 1, 0, 0, sec, 999, time.FixedZone("CST", 8*3600))
		got, err := Parse(Format(l))
		if err != nil {
			t.Fatal(err)
		}
		want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
		if !got.Time.Equal(want) || got.Time.Location() != time.UTC {
			t.Errorf("Parse(Format(time %ds)).Time = %v, want %v in UTC", sec, got.Time, want)
		}
	}
}

func TestFormatPanicsOnInvalid(t *testing.T) {
	l := testLeaf()
	l.Role = "root"
	defer func() {
		if recover() == nil {
			t.Error("Format(unknown role) did not panic")
		}
	}()
	Format(l)
}

func TestVerify(t *testing.T) {
	l := testLeaf()
	other := bytes.Clone(testSalt)
	other[0] ^= 1
	tests := []struct {
		name      string
		salt      []byte
		committed string
		want      bool
	}{
		{"matching", testSalt, testCommitted, true},
		{"other salt", other, testCommitted, false},
		{"destroyed salt", nil, testCommitted, false},
		{"short salt", testSalt[:31], testCommitted, false},
		{"edited event", testSalt, strings.Replace(testCommitted, "read", "list", 1), false},
		{"trailing byte", testSalt, testCommitted + " ", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Verify(tc.salt, []byte(tc.committed)); got != tc.want {
				t.Errorf("Verify(%s) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func TestNewSalt(t *testing.T) {
	s, err := NewSalt(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	if err != nil || len(s) != SaltSize {
		t.Errorf("NewSalt() = %x, %v; want %d bytes", s, err, SaltSize)
	}
	if _, err := NewSalt(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("NewSalt(failing reader) = nil error, want error")
	}
	if _, err := NewSalt(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("NewSalt(short reader) = nil error, want error")
	}
}

// TestTags: a leaf with tags is written in v2 and parses back to the same
// tags; one without is v1; non-canonical tag lists are refused.
func TestTags(t *testing.T) {
	l := testLeaf()
	l.Tags = []string{"remote", "support"}
	b := Format(l)
	if !strings.HasPrefix(string(b), "domicile/v2 t=1767225600 a=read r=operator o=allowed g=remote,support c=") {
		t.Fatalf("Format(tagged) = %q", b)
	}
	got, err := Parse(b)
	if err != nil || !slices.Equal(got.Tags, l.Tags) || !got.Has("remote") || got.Has("withdrawal") || !got.Verify(testSalt, []byte(testCommitted)) {
		t.Fatalf("Parse(%q) = %+v, %v", b, got, err)
	}
	all := testLeaf()
	all.Action, all.Role, all.Tags = "key-unwrap", "authority", Tags
	if b := Format(all); len(b) > MaxSize {
		t.Errorf("len(Format(every tag)) = %d, above MaxSize %d", len(b), MaxSize)
	}
	if !slices.IsSorted(Tags) {
		t.Errorf("Tags %v are not in ascending order", Tags)
	}
	good := string(b)
	c := good[strings.Index(good, "c="):]
	for name, in := range map[string]string{
		"v1 with tags":   strings.Replace(good, "domicile/v2", "domicile/v1", 1),
		"v2 empty tags":  "domicile/v2 t=1767225600 a=read r=operator o=allowed g= " + c,
		"v2 no tags":     "domicile/v2 t=1767225600 a=read r=operator o=allowed " + c,
		"unsorted":       strings.Replace(good, "g=remote,support", "g=support,remote", 1),
		"repeated":       strings.Replace(good, "g=remote,support", "g=remote,remote", 1),
		"unknown tag":    strings.Replace(good, "g=remote,support", "g=remote,vip", 1),
		"trailing comma": strings.Replace(good, "g=remote,support", "g=remote,support,", 1),
		"tags misplaced": "domicile/v2 t=1767225600 a=read r=operator g=remote o=allowed " + c,
	} {
		if l, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: Parse(%q) = %+v, want error", name, in, l)
		}
	}
	bad := testLeaf()
	bad.Tags = []string{"support", "remote"}
	if bad.Validate() == nil {
		t.Error("Validate(unsorted tags) = nil, want error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Format(testLeaf())))
	f.Add([]byte("domicile/v2 t=60 a=read r=operator o=allowed g=remote,support c=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	f.Add([]byte("domicile/v1 t=60 a=key-unwrap r=system o=denied c=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	f.Add([]byte("domicile/v1 t=61 a=read r=app o=denied c=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err != nil {
			return
		}
		if got := Format(l); !bytes.Equal(got, data) {
			t.Fatalf("Format(Parse(%q)) = %q: output different from input", data, got)
		}
	})
}

func ExampleLeaf_Verify() {
	salt := bytes.Repeat([]byte{7}, SaltSize) // in a cell: NewSalt(rand.Reader)
	event := []byte(`{"action":"read","subject":"s-1"}`)
	l := Leaf{
		Time:       time.Date(2026, 3, 1, 9, 30, 15, 0, time.UTC),
		Action:     "read",
		Role:       "subject",
		Outcome:    "allowed",
		Commitment: Commit(salt, event),
	}
	line := Format(l)
	parsed, err := Parse(line)
	fmt.Println(strings.Fields(string(line))[:5], err)
	fmt.Println(parsed.Verify(salt, event), parsed.Verify(salt, []byte(`{"action":"list"}`)))
	// Output:
	// [domicile/v1 t=1772357400 a=read r=subject o=allowed] <nil>
	// true false
}
