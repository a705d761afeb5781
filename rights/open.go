package rights

import (
	"context"
	"sort"
	"time"

	"domicile"
	"domicile/cell"
)

// MaxOpenPerCell bounds the open requests listed per cell.
const MaxOpenPerCell = 1000

// OpenRequest is a rights request not yet answered (in no final state),
// as the console lists it: where it is, what was asked, and by when the
// law wants the answer. It names no subject.
type OpenRequest struct {
	Cell     string    `json:"cell"`
	ID       string    `json:"id"`
	Kind     Kind      `json:"kind"`
	State    State     `json:"state"`
	Received time.Time `json:"received"`
	Deadline time.Time `json:"deadline"`
	// Overdue is [Overdue] of the deadline at the time of listing.
	Overdue bool `json:"overdue"`
}

// Overdue reports whether an open request with deadline is overdue at
// now: the deadline has passed.
func Overdue(deadline, now time.Time) bool { return now.After(deadline) }

// FinalStates lists the states a request ends in.
var FinalStates = []State{Completed, Refused}

// OpenRequests lists the open requests of cells, by deadline then cell
// and id, at most MaxOpenPerCell from each. Uncounted names the cells
// whose store does not list them. The caller checks its reader (admin or
// auditor).
func OpenRequests(ctx context.Context, cells []*cell.Cell, now time.Time) (open []OpenRequest, uncounted []string, err error) {
	final := make([]string, len(FinalStates))
	for i, s := range FinalStates {
		final[i] = string(s)
	}
	open = []OpenRequest{}
	for _, c := range cells {
		rs, ok, err := c.PendingRequests(ctx, final, MaxOpenPerCell)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			uncounted = append(uncounted, c.ID())
			continue
		}
		for _, r := range rs {
			open = append(open, openOf(c.ID(), r, now))
		}
	}
	sortOpen(open)
	return open, uncounted, nil
}

func openOf(cellID string, r domicile.PendingRequest, now time.Time) OpenRequest {
	return OpenRequest{Cell: cellID, ID: r.ID, Kind: Kind(r.Kind), State: State(r.State), Received: r.Received.UTC(), Deadline: r.Deadline.UTC(),
		Overdue: Overdue(r.Deadline, now)}
}

func sortOpen(rs []OpenRequest) {
	less := func(a, b OpenRequest) bool {
		switch {
		case !a.Deadline.Equal(b.Deadline):
			return a.Deadline.Before(b.Deadline)
		case a.Cell != b.Cell:
			return a.Cell < b.Cell
		}
		return a.ID < b.ID
	}
	sort.SliceStable(rs, func(i, j int) bool { return less(rs[i], rs[j]) })
}
