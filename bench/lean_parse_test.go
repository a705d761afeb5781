package bench

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// validAnswers are well-formed answers that the lean client's parser
// must read as net/http does.
var validAnswers = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 201 Created\r\ncontent-length:  5 \r\nETag: \"v1\"\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 99\r\nTrailer: X-Sum\r\n\r\nA \r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nConnection: upgrade, Close\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\n\r\nuntil the end",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nContent-Length: 13\r\n\r\n{\"status\":1}\n",
}

// goRead reads data with net/http.ReadResponse, as a GET's answer.
func goRead(data []byte) (status int, body []byte, close bool, err error) {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
	if err != nil {
		return 0, nil, false, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, resp.Close, err
}

func leanRead(data []byte, lim limits) (response, error) {
	return readResponse(bufio.NewReaderSize(bytes.NewReader(data), leanLineBytes), nil, lim)
}

func TestReadResponseAsNetHTTP(t *testing.T) {
	for _, a := range validAnswers {
		status, body, close, err := goRead([]byte(a))
		if err != nil {
			t.Fatalf("net/http refuses %q: %v", a, err)
		}
		r, err := leanRead([]byte(a), limits{header: 4096, body: 4096})
		if err != nil {
			t.Errorf("%q: %v", a, err)
			continue
		}
		if r.status != status || !bytes.Equal(r.body, body) || r.close != close {
			t.Errorf("%q: status %d, body %q, close %v; net/http: %d, %q, %v", a, r.status, r.body, r.close, status, body, close)
		}
	}
}

// TestReadResponseStopsAtItsEnd: answers kept alive follow one another
// on a connection; each read leaves the next one whole.
func TestReadResponseStopsAtItsEnd(t *testing.T) {
	var all string
	var want []int
	for _, a := range validAnswers {
		if strings.Contains(a, "until the end") || strings.HasPrefix(a, "HTTP/1.0 200 OK\r\nTransfer") {
			continue // runs to the end of the connection
		}
		all += a
		r, err := leanRead([]byte(a), limits{header: 4096, body: 4096})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.status)
	}
	br := bufio.NewReaderSize(strings.NewReader(all), leanLineBytes)
	for i, st := range want {
		r, err := readResponse(br, nil, limits{header: 4096, body: 4096})
		if err != nil || r.status != st {
			t.Fatalf("answer %d: status %d, %v; want %d", i, r.status, err, st)
		}
	}
	if _, err := readResponse(br, nil, limits{header: 4096, body: 4096}); err != io.EOF {
		t.Errorf("after the last answer: %v, want io.EOF", err)
	}
}

// FuzzReadResponse: the parser never panics, never returns a body over
// its limit nor allocates past it, and reads what it accepts as
// net/http.ReadResponse does whenever that accepts it too.
func FuzzReadResponse(f *testing.F) {
	for _, a := range validAnswers {
		f.Add([]byte(a))
	}
	for _, a := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\n Folded: yes\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	} {
		f.Add([]byte(a))
	}
	lim := limits{header: 512, body: 1024}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := leanRead(data, lim)
		if len(r.body) > lim.body || cap(r.body) > lim.body+1 {
			t.Fatalf("body of %d bytes (capacity %d) over the %d-byte limit", len(r.body), cap(r.body), lim.body)
		}
		if err != nil {
			return
		}
		if r.status < 100 || r.status > 999 {
			t.Fatalf("status %d", r.status)
		}
		status, body, close, gerr := goRead(data)
		if gerr != nil {
			return
		}
		if r.status != status || !bytes.Equal(r.body, body) || r.close != close {
			t.Fatalf("status %d, body %q, close %v; net/http: %d, %q, %v", r.status, r.body, r.close, status, body, close)
		}
	})
}
