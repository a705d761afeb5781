package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"domicile"
	"domicile/cell"
)

// maxReplayBytes bounds the part of a request body kept so that a request
// to a subject that moved to another cell while it was under way can be
// answered by the subject's new cell: a record's body, or nothing of an
// object's (a cell refuses a moved subject before it reads the body).
const maxReplayBytes = 1 << 20

// movedBody remembers what a handler read of a request body, up to
// maxReplayBytes, so that the request can be run once more.
type movedBody struct {
	r    io.ReadCloser
	buf  bytes.Buffer
	over bool
}

func (b *movedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if !b.over {
		if b.buf.Len()+n > maxReplayBytes {
			b.over = true
			b.buf = bytes.Buffer{}
		} else {
			b.buf.Write(p[:n])
		}
	}
	return n, err
}

func (b *movedBody) Close() error { return b.r.Close() }

// againIfMoved runs h, and once more if the subject it reached had moved
// to another cell (a migration switched its home while the request was
// under way) and nothing was answered yet: the second run locates the
// subject afresh, in its new cell.
func againIfMoved(h Handler, w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	var rb *movedBody
	if r.Body != nil && r.Body != http.NoBody {
		rb = &movedBody{r: r.Body}
		r.Body = rb
	}
	err := h(w, r, a)
	var moved *cell.MovedError
	if !errors.As(err, &moved) || started(w) {
		return err
	}
	if rb != nil {
		if rb.over {
			return err
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(rb.buf.Bytes()), rb.r), rb.r}
	}
	return h(w, r, a)
}

// contextTODO is the context of a metrics collection, which the
// prometheus collector interface does not pass.
func contextTODO() context.Context { return context.Background() }
