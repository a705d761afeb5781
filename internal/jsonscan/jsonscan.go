// Package jsonscan checks JSON text without decoding it: the syntax
// exactly as encoding/json checks it ([Valid] answers as json.Valid
// does), faster and without allocating, and in the same pass what the
// service's hot paths also need to know: is the text already in the form
// encoding/json writes ([Canonical]), is its UTF-8 valid, what are its
// keys ([Scanner]).
//
// encoding/json's scanner calls a function per byte; a record body is
// mostly one long string, which this package skips eight bytes at a
// time. BenchmarkValid compares the two.
//
// # Grammar
//
// The grammar is RFC 8259's as encoding/json implements it: whitespace
// is space, tab, line feed and carriage return; a number is
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; a string refuses the
// bytes below 0x20 and escapes other than \" \\ \/ \b \f \n \r \t and
// \uXXXX, and accepts invalid UTF-8 (unless [UTF8] is asked for);
// containers nest at most 10000 deep; nothing but whitespace follows the
// value. A byte order mark is not whitespace.
package jsonscan

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// MaxDepth is how deep containers may nest, as in encoding/json (its
// scanner's maxNestingDepth): a document nested deeper is invalid.
const MaxDepth = 10000

// Valid reports whether data is valid JSON text. It answers exactly as
// encoding/json's Valid does, for every input, and does not allocate.
func Valid(data []byte) bool { return check(data, 0) }

// Canonical reports whether data is valid JSON text that encoding/json
// writes unchanged when it marshals it as a json.RawMessage: no
// whitespace outside strings, and none of what it escapes for HTML
// (<, >, & and the characters U+2028 and U+2029). It does not allocate.
func Canonical(data []byte) bool { return check(data, Compact|NoHTML) }

// check reports whether a Scanner reads data to its end, without
// allocating: a document nested more than 64 deep is read again with a
// stack for MaxDepth levels on the goroutine's stack.
func check(data []byte, opts Options) bool {
	s := Scanner{data: data, opts: opts, lean: true}
	switch s.run() {
	case End:
		return true
	case tooDeep:
		return checkDeep(data, opts)
	}
	return false
}

//go:noinline
func checkDeep(data []byte, opts Options) bool {
	var deep [deepWords]uint64
	s := Scanner{data: data, opts: opts, deep: &deep}
	return s.run() == End
}

// Options make a Scanner refuse more than encoding/json does.
type Options uint8

const (
	// UTF8 refuses invalid UTF-8 in strings (encoding/json accepts it
	// and decodes it as U+FFFD).
	UTF8 Options = 1 << iota
	// Compact refuses whitespace outside strings.
	Compact
	// NoHTML refuses the characters encoding/json escapes for HTML in
	// strings: <, >, &, U+2028 and U+2029.
	NoHTML
)

// Kind is the kind of a token.
type Kind uint8

// The kinds of tokens. Commas and colons are not tokens: the Scanner
// checks them between tokens.
const (
	// Invalid: the text is not valid JSON, or is refused by an option,
	// at or before this point. The Scanner says so from then on.
	Invalid Kind = iota
	// End: the text was valid, and has been read to its end.
	End
	ObjectStart // {
	ObjectEnd   // }
	ArrayStart  // [
	ArrayEnd    // ]
	// Key is an object member's name (a string, with its colon read).
	Key
	String // a string value, with its quotes
	Number // as written
	// Literal is true, false or null.
	Literal

	// tooDeep is Invalid for a document deeper than the stack the
	// Scanner may use without allocating (Valid's first attempt).
	tooDeep
)

// deepWords is how many words of bits hold the nesting beyond the
// Scanner's first 64 levels.
const deepWords = (MaxDepth - 64 + 63) / 64

// state is what the Scanner expects next.
type state uint8

const (
	stValue        state = iota // a value: at the start, after ':', after ',' in an array
	stValueOrClose              // after '[': a value or ']'
	stKeyOrClose                // after '{': a key or '}'
	stKey                       // after ',' in an object
	stAfter                     // after a value: ',', a close, or (at the top) the end
	stDone                      // End or Invalid was returned
)

// A Scanner reads JSON text token by token and checks its syntax as it
// goes, as encoding/json does. It does not decode: strings and numbers
// are reported as the bytes that spell them ([Scanner.Bytes]). The zero
// Scanner holds no text; [Scanner.Reset] gives it one. A Scanner does
// not allocate unless the text nests more than 64 deep.
//
// A Scanner is not safe for concurrent use.
type Scanner struct {
	data       []byte
	pos        int
	start, end int // the last token
	depth      int
	stack      uint64             // bit d-1: level d (1 to 64) is an object
	deep       *[deepWords]uint64 // the levels beyond 64, the same way
	opts       Options
	state      state
	done       Kind // what stDone answers
	escaped    bool // the last string held an escape
	lean       bool // answer tooDeep rather than allocate deep
}

// Reset makes s read data from its start, refusing what opts say.
func (s *Scanner) Reset(data []byte, opts Options) {
	*s = Scanner{data: data, opts: opts, deep: s.deep}
}

// Bytes returns the bytes of the last token read: a string or key with
// its quotes, a number as written, true, false or null, or the bracket.
// It aliases the text.
func (s *Scanner) Bytes() []byte { return s.data[s.start:s.end] }

// Offset returns the index in the text of the last token's first byte.
func (s *Scanner) Offset() int { return s.start }

// Escaped reports whether the last string or key read held an escape
// (its bytes are then not its value).
func (s *Scanner) Escaped() bool { return s.escaped }

// Depth returns how many containers are open after the last token: an
// object's own ObjectStart leaves it 1 deeper, and its keys are read at
// that depth.
func (s *Scanner) Depth() int { return s.depth }

// run reads tokens until End or Invalid (or tooDeep).
func (s *Scanner) run() Kind { return s.scan(true) }

// Next reads the next token and returns its kind: End at the end of
// valid text, Invalid (from then on) at the first error.
func (s *Scanner) Next() Kind { return s.scan(false) }

// scan reads the next token, or if all every token to the end. The
// state it changes is kept in locals while it reads, and saved in s
// when it returns a token.
func (s *Scanner) scan(all bool) Kind {
	if s.state == stDone {
		return s.done
	}
	b, i, st, depth, stack := s.data, s.pos, s.state, s.depth, s.stack
	for {
		for i < len(b) && b[i] <= ' ' {
			if !isSpace(b[i]) || s.opts&Compact != 0 {
				return s.fail()
			}
			i++
		}
		if i >= len(b) {
			if st == stAfter && depth == 0 {
				s.pos, s.state, s.done, s.depth = i, stDone, End, 0
				return End
			}
			return s.fail()
		}
		start, c := i, b[i]
		var k Kind
		switch st {
		case stAfter:
			if depth == 0 {
				return s.fail() // something after the value
			}
			obj := stack>>(depth-1)&1 != 0
			if depth > 64 {
				obj = s.deepTop(depth)
			}
			switch {
			case c == ',':
				i++
				st = stValue
				if obj {
					st = stKey
				}
				continue
			case c == '}' && obj:
				k = ObjectEnd
			case c == ']' && !obj:
				k = ArrayEnd
			default:
				return s.fail()
			}
			depth--
			i++
		case stKeyOrClose, stKey:
			if c == '}' && st == stKeyOrClose {
				k, st = ObjectEnd, stAfter
				depth--
				i++
				break
			}
			if c != '"' {
				return s.fail()
			}
			if i = s.str(b, i+1); i < 0 {
				return s.fail()
			}
			s.start, s.end = start, i // before the colon
			for i < len(b) && b[i] <= ' ' {
				if !isSpace(b[i]) || s.opts&Compact != 0 {
					return s.fail()
				}
				i++
			}
			if i >= len(b) || b[i] != ':' {
				return s.fail()
			}
			i++
			if !all {
				s.pos, s.state, s.depth, s.stack = i, stValue, depth, stack
				return Key
			}
			st = stValue
			continue
		default: // stValue, stValueOrClose
			switch c {
			case ']':
				if st != stValueOrClose {
					return s.fail()
				}
				k, st = ArrayEnd, stAfter
				depth--
				i++
			case '{', '[':
				depth++
				if depth > MaxDepth {
					return s.fail()
				}
				obj := uint64(0)
				k, st = ArrayStart, stValueOrClose
				if c == '{' {
					obj = 1
					k, st = ObjectStart, stKeyOrClose
				}
				if depth <= 64 {
					stack = stack&^(1<<(depth-1)) | obj<<(depth-1)
				} else if !s.push(depth, obj) {
					s.state, s.done = stDone, tooDeep
					return tooDeep
				}
				i++
			case '"':
				if i = s.str(b, i+1); i < 0 {
					return s.fail()
				}
				k, st = String, stAfter
			case 't':
				if !hasWord(b, i, "true") {
					return s.fail()
				}
				k, st, i = Literal, stAfter, i+4
			case 'f':
				if !hasWord(b, i, "false") {
					return s.fail()
				}
				k, st, i = Literal, stAfter, i+5
			case 'n':
				if !hasWord(b, i, "null") {
					return s.fail()
				}
				k, st, i = Literal, stAfter, i+4
			default:
				// A number, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
				// read here rather than in a function: arrays of numbers
				// are as many calls.
				if c == '-' {
					if i++; i >= len(b) {
						return s.fail()
					}
					c = b[i]
				}
				switch {
				case c == '0':
					i++
				case '1' <= c && c <= '9':
					for i++; i < len(b) && isDigit(b[i]); i++ {
					}
				default:
					return s.fail()
				}
				if i < len(b) && b[i] == '.' {
					if i++; i >= len(b) || !isDigit(b[i]) {
						return s.fail()
					}
					for i++; i < len(b) && isDigit(b[i]); i++ {
					}
				}
				if i < len(b) && b[i]|0x20 == 'e' {
					if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
						i++
					}
					if i >= len(b) || !isDigit(b[i]) {
						return s.fail()
					}
					for i++; i < len(b) && isDigit(b[i]); i++ {
					}
				}
				k, st = Number, stAfter
			}
		}
		if !all {
			s.pos, s.state, s.depth, s.stack, s.start, s.end = i, st, depth, stack, start, i
			return k
		}
	}
}

// push records level d (beyond 64) as an object or not. It reports
// false if it would have to allocate and s may not.
func (s *Scanner) push(d int, obj uint64) bool {
	if s.deep == nil {
		if s.lean {
			return false
		}
		s.deep = new([deepWords]uint64)
	}
	w, n := (d-65)>>6, uint((d-65)&63)
	s.deep[w] = s.deep[w]&^(1<<n) | obj<<n
	return true
}

// deepTop reports whether level d (beyond 64) is an object.
func (s *Scanner) deepTop(d int) bool {
	return s.deep[(d-65)>>6]>>uint((d-65)&63)&1 != 0
}

func (s *Scanner) fail() Kind {
	s.state, s.done = stDone, Invalid
	return Invalid
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// A string is skipped eight bytes at a time ("SIMD within a register"):
// each word is tested at once for a byte that needs a look (the closing
// quote, an escape, a control character, or what the options refuse),
// and only such a byte is looked at alone.
//
// The tests set the high bit of each byte that needs a look, from
// subtractions that borrow into it: b-1 (of b xor c, which is zero when
// b is c) and b-0x20 borrow only for a byte below 0x80 and, in the
// lowest such byte, only for a byte that matches. Higher bytes may be
// set by a borrow from below, so only the lowest set bit counts.
const (
	lo    = 0x0101010101010101
	hi    = 0x8080808080808080
	quote = '"' * lo
	bslsh = '\\' * lo
	ctl   = ' ' * lo
	lt    = '<' * lo
	gt    = '>' * lo
	amp   = '&' * lo
	e2    = 0xE2 * lo
)

// plain returns the high bits of the bytes of x that end a string's run
// of plain bytes: '"', '\\' and those below 0x20 (the lowest is exact).
func plain(x uint64) uint64 {
	return ((x ^ quote - lo) | (x ^ bslsh - lo) | (x - ctl)) &^ x & hi
}

func load(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i : i+8]) }

// skipPlain returns the index of the first byte from b[i] on that plain
// marks, or of one of the last 7 bytes.
func skipPlain(b []byte, i int) int {
	// Most strings are short, and most escapes close together: the first
	// word alone.
	if i+8 <= len(b) {
		if m := plain(load(b, i)); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for ; i+16 <= len(b); i += 16 {
		if plain(load(b, i))|plain(load(b, i+8)) != 0 {
			break
		}
	}
	for ; i+8 <= len(b); i += 8 {
		if m := plain(load(b, i)); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// skipASCII is skipPlain stopping at bytes from 0x80 too.
func skipASCII(b []byte, i int) int {
	if i+8 <= len(b) {
		x := load(b, i)
		if m := plain(x) | x&hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for ; i+16 <= len(b); i += 16 {
		x, y := load(b, i), load(b, i+8)
		if plain(x)|plain(y)|(x|y)&hi != 0 {
			break
		}
	}
	for ; i+8 <= len(b); i += 8 {
		x := load(b, i)
		if m := plain(x) | x&hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// skipHTML is skipPlain stopping at <, > and & and at the byte 0xE2
// (which begins U+2028 and U+2029) too, and at bytes from 0x80 if utf.
func skipHTML(b []byte, i int, utf bool) int {
	for ; i+8 <= len(b); i += 8 {
		x := load(b, i)
		m := ((x^quote-lo)|(x^bslsh-lo)|(x-ctl)|(x^lt-lo)|(x^gt-lo)|(x^amp-lo))&^x | (x^e2-lo)&x
		if utf {
			m |= x
		}
		if m &= hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// str returns the index just past the string whose contents start at
// b[i] (after its opening quote), or -1 if it is malformed or refused.
// It sets s.escaped.
func (s *Scanner) str(b []byte, i int) int {
	s.escaped = false
	utf, html := s.opts&UTF8 != 0, s.opts&NoHTML != 0
	for {
		switch {
		case html:
			i = skipHTML(b, i, utf)
		case utf:
			i = skipASCII(b, i)
		default:
			i = skipPlain(b, i)
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			s.escaped = true
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c < ' ':
			return -1
		case html && (c == '<' || c == '>' || c == '&'):
			return -1
		case c < utf8.RuneSelf:
			i++
		case utf:
			// A run of multi-byte characters, each valid and, if html,
			// neither U+2028 nor U+2029 (E2 80 A8 and E2 80 A9).
			for i < len(b) && b[i] >= utf8.RuneSelf {
				r, n := utf8.DecodeRune(b[i:])
				if r == utf8.RuneError && n == 1 || html && r&^1 == '\u2028' {
					return -1
				}
				i += n
			}
		case html && c == 0xE2 && len(b)-i >= 3 && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8:
			return -1
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
