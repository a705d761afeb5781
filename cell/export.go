package cell

import (
	"context"
	"encoding/json"
	"errors"

	"domicile"
)

// exportPage is how many records an export reads from the store at once.
const exportPage = 200

// Export opens the live records of subject s of the kinds in fields and
// returns them minimised: each record keeps only the fields fields names
// for its kind. It is the cell's side of an allowed transfer: the gateway
// has decided it; the cell logs one export event for the subject (with
// detail, e.g. the transfer id and mechanism), durable before any record
// reaches emit. A subject with no such record still gets its event, so
// the trail shows that the subject was part of the transfer. It returns
// the number of records emitted.
//
// Export holds one subject's records in memory at a time.
func (c *Cell) Export(ctx context.Context, a domicile.Actor, s SubjectKey, fields map[string][]string, detail string, emit func(*domicile.Record) error) (int, error) {
	res := "export"
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActExport); err != nil {
		return 0, c.deny(ctx, r, domicile.ActExport, res, err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return 0, err
	}
	var out []*domicile.Record
	for kind, keep := range fields {
		if c.deployment().Kind(kind) == nil {
			return 0, &domicile.Error{Code: domicile.EInvalid, Field: "fields", Message: "unknown record kind " + quote(kind)}
		}
		afterKind, afterID := "", ""
		for {
			rows, err := c.store.Records(ctx, s.Ref, kind, afterKind, afterID, exportPage)
			if err != nil {
				return 0, err
			}
			for i := range rows {
				if rows[i].Body == nil {
					continue
				}
				rec, err := c.open(ctx, r, sub, &rows[i])
				if err != nil {
					return 0, c.deny(ctx, r, domicile.ActExport, res, err)
				}
				rec.Data, err = minimise(rec.Data, keep)
				if err != nil {
					return 0, err
				}
				out = append(out, rec)
			}
			if len(rows) < exportPage {
				break
			}
			afterKind, afterID = rows[len(rows)-1].Kind, rows[len(rows)-1].ID
		}
	}
	r.events = append(r.events, c.event(r, domicile.ActExport, res, domicile.Allowed, detail))
	if _, err := c.commit(ctx, r); err != nil {
		return 0, logFailure(err)
	}
	for _, rec := range out {
		if err := emit(rec); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

// minimise keeps only the named fields of a JSON object.
func minimise(data []byte, keep []string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errors.New("cell: export: stored record is not a JSON object")
	}
	out := make(map[string]json.RawMessage, len(keep))
	for _, f := range keep {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return json.Marshal(out)
}
