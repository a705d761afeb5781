package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func nest(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// cases are texts with what encoding/json's Valid says of them, written
// out so that the table reads as the grammar; the tests check the
// expectation against json.Valid too.
var cases = []struct {
	text  string
	valid bool
}{
	// Empty, whitespace, trailing text.
	{"", false},
	{" ", false},
	{" \t\r\n", false},
	{"1", true},
	{" 1 ", true},
	{"\t\r\n1\t\r\n", true},
	{"\v1", false},
	{"\f1", false},
	{"1\x00", false},
	{"\u00a01", false},
	{"1 2", false},
	{"{}{}", false},
	{"{} x", false},
	{"[]]", false},
	{"\"a\"\"b\"", false},
	{"\xef\xbb\xbf{}", false}, // a byte order mark is not whitespace
	{"{}\xef\xbb\xbf", false},
	// Numbers.
	{"0", true},
	{"-0", true},
	{"-", false},
	{"--1", false},
	{"+1", false},
	{"01", false},
	{"-01", false},
	{"00", false},
	{"1.", false},
	{".1", false},
	{"1.5", true},
	{"-1.5e-3", true},
	{"1e5", true},
	{"1E+2", true},
	{"1e-2", true},
	{"1e", false},
	{"1e+", false},
	{"1.e5", false},
	{"1.0e5", true},
	{"0.0", true},
	{"0e0", true},
	{"0x10", false},
	{"1_000", false},
	{"123456789012345678901234567890", true},
	{"1e999999", true},
	{"NaN", false},
	{"Infinity", false},
	{"-Infinity", false},
	{"[1,-]", false},
	{"[01]", false},
	{"[1.]", false},
	{"[1e]", false},
	{"[-0,0.5,1e1]", true},
	{"{\"a\":-}", false},
	// Literals.
	{"true", true},
	{"false", true},
	{"null", true},
	{"tru", false},
	{"nul", false},
	{"fals", false},
	{"True", false},
	{"nulll", false},
	{"truefalse", false},
	{"[true,false,null]", true},
	{"[true false]", false},
	{"[truex]", false},
	// Strings and escapes.
	{`""`, true},
	{`"`, false},
	{`"abc`, false},
	{`"\"\\\/\b\f\n\r\t"`, true},
	{`"\u0041\u00e9\uD83D\uDE00\uFFFF\uabcd"`, true},
	{`"\uD800"`, true}, // a lone surrogate escape is accepted
	{`"\u"`, false},
	{`"\u12"`, false},
	{`"\u123g"`, false},
	{`"\U0041"`, false},
	{`"\x41"`, false},
	{`"\a"`, false},
	{`"\'"`, false},
	{`"\0"`, false},
	{`"\`, false},
	{`"\"`, false},
	{"\"a\x00b\"", false},
	{"\"a\tb\"", false},
	{"\"a\nb\"", false},
	{"\"a\x1fb\"", false},
	{"\"a\x7fb\"", true},
	{"\"a b\"", true},
	{"\"\xff\"", true},         // invalid UTF-8 is accepted
	{"\"\xc3\"", true},         // a truncated sequence too
	{"\"\xed\xa0\x80\"", true}, // an encoded surrogate too
	{"\"李伟\"", true},
	{"\"\u2028\u2029<>&\"", true},
	{"\xff", false},
	{"[\"a\xff\"]", true},
	{"\"0123456789abcdef\x01\"", false}, // a control character after a long run
	{"\"0123456789abcdef\\q\"", false},
	{"\"0123456789abcdef", false},
	{"\"0123456789abcdef\\\"", false},
	{"\"0123456789abcde\\\"\"", true},
	// Objects and arrays.
	{"{}", true},
	{"[]", true},
	{"{ }", true},
	{"[ ]", true},
	{"{", false},
	{"[", false},
	{"}", false},
	{"]", false},
	{"[}", false},
	{"{]", false},
	{"[1,]", false},
	{"[,1]", false},
	{"[1,,2]", false},
	{"[1 2]", false},
	{`{"a":1,}`, false},
	{`{,"a":1}`, false},
	{`{"a"}`, false},
	{`{"a":}`, false},
	{`{"a" 1}`, false},
	{`{"a"::1}`, false},
	{`{a:1}`, false},
	{`{1:1}`, false},
	{`{"a":1 "b":2}`, false},
	{`{"a":1,"a":2}`, true}, // a duplicate key is valid JSON
	{`{"a":[1,{"b":[]}],"c":{"d":{}}}`, true},
	{` { "a" : [ 1 , { "b" : [ ] } ] , "c" : { } } `, true},
	{"{\"a\"\t:\n1\r,\"b\" :2}", true},
	{`[{"a":1}]`, true},
	{`[{"a":1]]`, false},
	{`{"a":[1}}`, false},
	{`[[[]]`, false},
	{`[[]]]`, false},
	{`{"a":1}}`, false},
	// Nesting: encoding/json's limit is 10000 levels.
	{nest("[", "]", 64, ""), true},
	{nest("[", "]", 65, ""), true},
	{nest("[", "]", 129, "1"), true},
	{nest("[", "]", MaxDepth, ""), true},
	{nest("[", "]", MaxDepth+1, ""), false},
	{nest("[", "]", MaxDepth, "1"), true},
	{nest(`{"a":`, "}", MaxDepth, "1"), true},
	{nest(`{"a":`, "}", MaxDepth+1, "1"), false},
	{nest(`[{"a":`, "}]", MaxDepth/2, "{}"), false},
	{nest(`[{"a":`, "}]", MaxDepth/2, "1"), true},
	{nest(`[{"a":`, "}]", MaxDepth/2-1, "{}"), true},
	{nest("[", "]", MaxDepth+1, "")[:MaxDepth+1], false},
	{nest("[", "]", 70, "") + "]", false},
	{nest("[", "}", 70, ""), false},
	{nest(`{"a":`, "]", 70, "1"), false},
	{nest("[", "]", 200, "")[:300], false},
}

func TestValid(t *testing.T) {
	for _, tt := range cases {
		if got := json.Valid([]byte(tt.text)); got != tt.valid {
			t.Errorf("the table is wrong: json.Valid(%.40q) = %v", tt.text, got)
		}
		if got := Valid([]byte(tt.text)); got != tt.valid {
			t.Errorf("Valid(%.40q) = %v, want %v", tt.text, got, tt.valid)
		}
	}
}

// TestAllocs: Valid and Canonical allocate nothing, however deep the text.
func TestAllocs(t *testing.T) {
	for _, text := range []string{`{"a":[1,"x",true]}`, nest("[", "]", MaxDepth, ""), nest("[", "]", MaxDepth+1, ""), nest(`{"a":`, "}", MaxDepth, "1")} {
		b := []byte(text)
		if n := testing.AllocsPerRun(10, func() { Valid(b) }); n != 0 {
			t.Errorf("Valid(%.20q...) allocates %v times, want 0", text, n)
		}
		if n := testing.AllocsPerRun(10, func() { Canonical(b) }); n != 0 {
			t.Errorf("Canonical(%.20q...) allocates %v times, want 0", text, n)
		}
	}
}

// fuzzSeeds are the table's texts short enough for the fuzzer to mutate
// quickly (TestValid holds the longest, nested to the limit), and some
// nested beyond the Scanner's first 64 levels.
func fuzzSeeds() [][]byte {
	var out [][]byte
	for _, tt := range cases {
		if len(tt.text) < 1000 {
			out = append(out, []byte(tt.text))
		}
	}
	return append(out, []byte(nest(`[{"a":`, "}]", 40, `"x"`)), []byte(nest("[", "]", 129, "")))
}

// FuzzValid: Valid answers as json.Valid does.
func FuzzValid(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

// canonicalReference is Canonical by its definition: what
// encoding/json writes for the text as a json.RawMessage is the text.
func canonicalReference(b []byte) bool {
	out, err := json.Marshal(json.RawMessage(b))
	return err == nil && bytes.Equal(out, b)
}

func TestCanonical(t *testing.T) {
	for _, tt := range []struct {
		text string
		want bool
	}{
		{`{"a":[1,"x",true],"b":{"c":null}}`, true},
		{`{"name":"李伟","note":"a b\t\"\\\u003c"}`, true},
		{"", false},
		{`{"a":1,}`, false},
		{`{ "a":1}`, false},
		{`{"a": 1}`, false},
		{"{\"a\":1}\n", false},
		{"\n{}", false},
		{"[1,\t2]", false},
		{`{"h":"<b>"}`, false},
		{`{"h":"a&b"}`, false},
		{`{"h":"a>b"}`, false},
		{`{"<":1}`, false},
		{"{\"s\":\"\u2028\"}", false},
		{"{\"s\":\"\u2029\"}", false},
		{"{\"s\":\"\u2027\u202a\u20ac\"}", true},
		{"{\"s\":\"0123456789\u2028abcdef\"}", false},
		{"{\"s\":\"\xe2\x80\"}", true},
		{"{\"s\":\"\xff\"}", true},
		{"\xef\xbb\xbf{}", false},
		{nest("[", "]", 100, "1"), true},
		{nest("[", "]", MaxDepth+1, ""), false},
	} {
		if got := canonicalReference([]byte(tt.text)); got != tt.want {
			t.Errorf("the table is wrong: json.Marshal(json.RawMessage(%.40q)) gives it back: %v", tt.text, got)
		}
		if got := Canonical([]byte(tt.text)); got != tt.want {
			t.Errorf("Canonical(%.40q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

// FuzzCanonical: Canonical answers whether encoding/json writes the
// text unchanged as a json.RawMessage.
func FuzzCanonical(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	for _, s := range []string{`{"a":"<"}`, "[\"\u2028\"]", "[\"\xe2\x80\xa9\"]", `{"a": 1}`, `[1,"&"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Canonical(b), canonicalReference(b); got != want {
			t.Fatalf("Canonical(%q) = %v, json.Marshal says %v", b, got, want)
		}
	})
}

// token is a token as encoding/json's Decoder reads it, with the depth
// it leaves (keys are told apart from string values).
type token struct {
	kind  Kind
	value any
	depth int
}

// decoderTokens reads the tokens of valid text with json.Decoder.
func decoderTokens(t *testing.T, b []byte) []token {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []token
	var stack []bool // object?
	expectKey := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("json.Decoder on valid text %q: %v", b, err)
		}
		var k Kind
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				k, stack, expectKey = ObjectStart, append(stack, true), true
			case '[':
				k, stack, expectKey = ArrayStart, append(stack, false), false
			case '}', ']':
				k, stack = ObjectEnd, stack[:len(stack)-1]
				if v == ']' {
					k = ArrayEnd
				}
				expectKey = len(stack) > 0 && stack[len(stack)-1]
			}
			out = append(out, token{k, nil, len(stack)})
			continue
		case string:
			k = String
			if expectKey {
				k = Key
			}
		case json.Number:
			k = Number
		default:
			k = Literal
		}
		out = append(out, token{k, tok, len(stack)})
		expectKey = k != Key && len(stack) > 0 && stack[len(stack)-1]
	}
}

// FuzzScanner: the Scanner reads valid text as json.Decoder does (the
// same tokens at the same depths, the same strings and numbers), refuses
// invalid text, and its options refuse exactly what they say.
func FuzzScanner(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b, uint8(0))
	}
	f.Add([]byte(`{"a":"\u00e9","b\n":[1,-2.5e3,{"c":null}]}`), uint8(UTF8))
	f.Add([]byte("{\"a\":\"\xff\"}"), uint8(UTF8|Compact))
	f.Add([]byte(`{ "a" : "<" }`), uint8(NoHTML|Compact))
	f.Fuzz(func(t *testing.T, b []byte, o uint8) {
		opts := Options(o) & (UTF8 | Compact | NoHTML)
		var s Scanner
		s.Reset(b, opts)
		var got []token
		k := s.Next()
		for ; k > End; k = s.Next() {
			tok := token{k, nil, s.Depth()}
			raw := s.Bytes()
			switch k {
			case Key, String:
				var v string
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("string token %q: %v", raw, err)
				}
				tok.value = v
				if s.Escaped() != bytes.Contains(raw, []byte(`\`)) {
					t.Fatalf("string token %q: Escaped() = %v", raw, s.Escaped())
				}
			case Number:
				tok.value = json.Number(raw)
			case Literal:
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("literal token %q: %v", raw, err)
				}
				tok.value = v
			default:
				if want := map[Kind]string{ObjectStart: "{", ObjectEnd: "}", ArrayStart: "[", ArrayEnd: "]"}[k]; string(raw) != want {
					t.Fatalf("token %d is %q", k, raw)
				}
			}
			got = append(got, tok)
		}
		if again := s.Next(); again != k {
			t.Fatalf("Next after %d = %d", k, again)
		}
		want := json.Valid(b)
		if opts&UTF8 != 0 && !utf8.Valid(b) {
			want = false
		}
		if opts&Compact != 0 || opts&NoHTML != 0 {
			var buf bytes.Buffer
			if opts&Compact != 0 {
				if json.Compact(&buf, b) != nil {
					want = false
				}
			} else {
				buf.Write(b)
			}
			if opts&NoHTML != 0 {
				var esc bytes.Buffer
				json.HTMLEscape(&esc, buf.Bytes())
				buf = esc
			}
			if !bytes.Equal(buf.Bytes(), b) {
				want = false
			}
		}
		if (k == End) != want {
			t.Fatalf("Scanner(%q, %b) ends with %d, want End: %v", b, opts, k, want)
		}
		if k != End {
			return
		}
		wantTokens := decoderTokens(t, b)
		if len(got) != len(wantTokens) {
			t.Fatalf("Scanner(%q) read %d tokens, json.Decoder %d", b, len(got), len(wantTokens))
		}
		for i := range got {
			if got[i].kind != wantTokens[i].kind || got[i].depth != wantTokens[i].depth || got[i].value != wantTokens[i].value {
				t.Fatalf("Scanner(%q) token %d = %v, json.Decoder %v", b, i, got[i], wantTokens[i])
			}
		}
	})
}

// TestScannerDeep: a Scanner reads text nested to the limit (allocating
// the stack beyond 64 levels) and tells objects from arrays at every level.
func TestScannerDeep(t *testing.T) {
	text := nest(`[{"a":`, "}]", MaxDepth/2, "1")
	var s Scanner
	s.Reset([]byte(text), 0)
	maxDepth, keys := 0, 0
	k := s.Next()
	for ; k > End; k = s.Next() {
		maxDepth = max(maxDepth, s.Depth())
		if k == Key {
			keys++
		}
	}
	if k != End || maxDepth != MaxDepth || keys != MaxDepth/2 {
		t.Errorf("Scanner on %d levels: ends with %d, depth %d, %d keys", MaxDepth, k, maxDepth, keys)
	}
	// Reset reuses the stack.
	s.Reset([]byte(text[:len(text)-1]+"}"), 0)
	if k := s.run(); k != Invalid {
		t.Errorf("Scanner on %d levels closed by the wrong bracket: %d, want Invalid", MaxDepth, k)
	}
}

// benchBodies are record bodies: a 1 KiB one shaped as package bench's
// RecordBody(1024) writes them (which this package's tests cannot
// import: it imports the service), one of text in Chinese, and one of
// many small values.
func benchBodies() []struct {
	name string
	body []byte
} {
	const head, tail = `{"from":"bench","to":"bench","body":"`, `"}`
	b64 := strings.Repeat("q0-Zx_8AbCdEfGhI", 64)[:1024-len(head)-len(tail)]
	many, _ := json.Marshal(map[string]any{"n": []any{1, 2.5, -3e4, true, nil, "x", map[string]any{"a": 1, "b": []int{1, 2, 3}}}, "s": strings.Repeat(`a"b\`, 10), "t": []string{"alpha", "beta", "gamma", "delta"}})
	return []struct {
		name string
		body []byte
	}{
		{"record1k", []byte(head + b64 + tail)},
		{"chinese", []byte(`{"name":"李伟","note":"` + strings.Repeat("数据驻留与个人信息保护", 30) + `"}`)},
		{"values", many},
		{"numbers", []byte("[" + strings.Repeat("12,-3.5,1e3,0,", 64) + "7]")},
	}
}

func BenchmarkValid(b *testing.B) {
	for _, c := range benchBodies() {
		b.Run("body="+c.name+"/impl=jsonscan", func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if !Valid(c.body) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run("body="+c.name+"/impl=encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(c.body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func BenchmarkCanonical(b *testing.B) {
	for _, c := range benchBodies() {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				Canonical(c.body)
			}
		})
	}
}

// TestScannerOptions: each option refuses what it says, wherever in a
// string it is (in the first word, after a long run, in the last bytes),
// and nothing else.
func TestScannerOptions(t *testing.T) {
	long := strings.Repeat("abcdefgh", 3)
	for _, tt := range []struct {
		text string
		opts Options
		end  bool
	}{
		{`{"a":"b"}`, UTF8 | Compact | NoHTML, true},
		{"{\"a\":\"\xff\"}", 0, true},
		{"{\"a\":\"\xff\"}", UTF8, false},
		{"{\"a\":\"" + long + "\xff\"}", UTF8, false},
		{"{\"a\":\"" + long + "\xc3\"}", UTF8, false},
		{"{\"a\":\"" + long + "\xed\xa0\x80\"}", UTF8, false},
		{"{\"a\xff\":1}", UTF8, false},
		{"{\"a\":\"" + long + "李伟é\U0001F600\"}", UTF8, true},
		{"{\"a\":\"\xff\"}", Compact | NoHTML, true},
		{`{"a": "b"}`, Compact, false},
		{"{\"a\":\"b\"}\n", Compact, false},
		{`{"a" :"b"}`, Compact, false},
		{`["a" ,"b"]`, Compact, false},
		{`{"a": "b"}`, UTF8 | NoHTML, true},
		{`{"a":"a b"}`, Compact, true},
		{`{"a":"<"}`, NoHTML, false},
		{`{"a":"` + long + `>"}`, NoHTML, false},
		{`{"a":"` + long + `&"}`, NoHTML, false},
		{`{"&":1}`, NoHTML, false},
		{`{"a":"\u003c"}`, NoHTML, true},
		{`{"a":"<"}`, UTF8 | Compact, true},
		{"[\"\u2028\"]", NoHTML, false},
		{"[\"" + long + "\u2029\"]", NoHTML, false},
		{"[\"\u2028\"]", UTF8 | NoHTML, false},
		{"[\"" + long + "\u2029\"]", UTF8 | NoHTML, false},
		{"[\"" + long + "é\u2029\"]", UTF8 | NoHTML, false},
		{"[\"\u2027\u202a\"]", UTF8 | NoHTML, true},
		{"[\"\u2027\u202a\"]", NoHTML, true},
		{"[\"\u2028\"]", UTF8, true},
		{"[\"\xe2\x80\"]", NoHTML, true},
		{"[\"\xe2\x80\"]", UTF8 | NoHTML, false},
	} {
		var s Scanner
		s.Reset([]byte(tt.text), tt.opts)
		if got := s.run() == End; got != tt.end {
			t.Errorf("Scanner(%q, %03b) reads to the end: %v, want %v", tt.text, tt.opts, got, tt.end)
		}
	}
}
