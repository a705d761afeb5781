package domicile

import (
	"context"
	"time"
)

// StoredRequest is an individual's rights request (access, copy,
// portability, correction, deletion, explanation: PIPL Arts. 44-50, GDPR
// Arts. 15-22) as its subject's home cell keeps it. A request is personal
// data: its body (what was asked, the answer, the history) is sealed with
// the subject's data key like a record, and is crypto-shredded with the
// subject. The other fields are what the cell and its store need to find
// and order requests; none of them names the subject.
type StoredRequest struct {
	Ref SubjectRef
	// ID is the request's id ("rq_…"), unique in the cell.
	ID string
	// Kind and State are the request's kind and state (rights.Kind and
	// rights.State), kept in the clear so that open requests and their
	// deadlines can be counted without opening any.
	Kind, State string
	// Received is when the request was filed; Deadline when the law wants
	// it answered by.
	Received, Deadline time.Time
	// Version starts at 1 and grows by one with each change.
	Version int64
	// Body is the sealed request.
	Body    []byte
	Updated time.Time
}

// PutRequest writes Request if the current version is Expect
// (NoVersion for a new request). Request.Version must be Expect plus one.
type PutRequest struct {
	Request StoredRequest
	Expect  int64
}

func (*PutRequest) isOp() {}

// StoredReceipt is an erasure receipt a cell keeps after the subject is
// gone, so that the person can fetch it again by its id. It holds no
// personal data and no subject reference: its id is a random capability
// handed to the person once, and its body the receipt's JSON.
type StoredReceipt struct {
	ID   string
	Time time.Time
	// LogIndex is set by the store when it commits the erasure: the log
	// index of the batch's first event, the erase event.
	LogIndex int64
	Body     []byte
}

// RequestStore is the part of a cell store that keeps rights requests and
// erasure receipts. Both cell stores implement it; requests are written
// with PutRequest operations in a Batch and deleted with the subject by
// EraseSubject, which also stores the subject's receipt.
type RequestStore interface {
	// Request returns a subject's request, or ErrNotFound.
	Request(ctx context.Context, ref SubjectRef, id string) (*StoredRequest, error)
	// Requests lists a subject's requests by id, after the id after, at
	// most limit.
	Requests(ctx context.Context, ref SubjectRef, after string, limit int) ([]StoredRequest, error)
	// Receipt returns a stored erasure receipt, or ErrNotFound.
	Receipt(ctx context.Context, id string) (*StoredReceipt, error)
}
