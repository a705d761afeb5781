package rights

import (
	"testing"
	"time"

	"domicile"
)

func TestOpenOf(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		deadline time.Time
		overdue  bool
	}{
		{"before the deadline", now.Add(time.Hour), false},
		{"at the deadline", now, false},
		{"after the deadline", now.Add(-time.Second), true},
	} {
		r := openOf("cn-gz1", domicile.PendingRequest{ID: "rq_1", Kind: "copy", State: "received", Received: now.AddDate(0, 0, -3), Deadline: tc.deadline}, now)
		if r.Overdue != tc.overdue || r.Cell != "cn-gz1" || r.Kind != Copy || r.State != Received {
			t.Errorf("%s: openOf = %+v, want overdue %v", tc.name, r, tc.overdue)
		}
	}
	rs := []OpenRequest{
		{Cell: "eu-fra1", ID: "b", Deadline: now.Add(2 * time.Hour)},
		{Cell: "eu-fra1", ID: "a", Deadline: now.Add(time.Hour)},
		{Cell: "cn-gz1", ID: "c", Deadline: now.Add(time.Hour)},
	}
	sortOpen(rs)
	if rs[0].ID != "c" || rs[1].ID != "a" || rs[2].ID != "b" {
		t.Errorf("sortOpen = %+v, want by deadline, then cell, then id", rs)
	}
}
