package domicile

import (
	"context"
	"time"
)

// Census is what one cell holds, counted from its store's rows without
// opening anything: the data map of the console shows it. It names no
// one.
type Census struct {
	// Subjects counts the registered subjects (erased ones are gone).
	Subjects int64 `json:"subjects"`
	// Records and RecordBytes count the live records and the bytes of
	// their sealed bodies, as stored.
	Records     int64 `json:"records"`
	RecordBytes int64 `json:"record_bytes"`
	// Objects and ObjectBytes count the live objects and their sizes.
	Objects     int64 `json:"objects"`
	ObjectBytes int64 `json:"object_bytes"`
}

// Bytes is the census's stored bytes: record bodies and objects.
func (c Census) Bytes() int64 { return c.RecordBytes + c.ObjectBytes }

// PendingRequest is a rights request as a cell's store lists it across
// subjects: its clear fields, without the subject's reference or the
// sealed body.
type PendingRequest struct {
	ID, Kind, State    string
	Received, Deadline time.Time
}

// A Censuser counts what a cell store holds and lists the rights requests
// still open in it. Both cell stores are Censusers; a store that is not
// one leaves the console without its counts, and says so.
type Censuser interface {
	// Census counts the store's subjects, live records and objects.
	Census(ctx context.Context) (Census, error)
	// PendingRequests lists the requests whose state is none of final,
	// by deadline then id, at most limit.
	PendingRequests(ctx context.Context, final []string, limit int) ([]PendingRequest, error)
}
