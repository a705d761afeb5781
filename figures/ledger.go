package figures

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	"domicile"
)

// PeopleYTD returns the distinct people whose non-sensitive (pi) and
// sensitive (spi) personal information a legal entity sent abroad from
// src in the year of counts (the counts of one entity and year, as the
// ledger's breakdown gives them): the DimTotal counts, which leave out
// transfers exempt on their own ground. They are the law engine's
// pi_individuals_ytd and sensitive_pi_individuals_ytd.
func PeopleYTD(counts []domicile.Count, src domicile.Jurisdiction) (pi, spi int64) {
	for _, c := range counts {
		if c.Source != src || c.Dim != domicile.DimTotal {
			continue
		}
		switch c.Class {
		case domicile.ClassPI:
			pi = c.N
		case domicile.ClassSPI:
			spi = c.N
		}
	}
	return pi, spi
}

// TransferRow is the transfers of one ledger year from one source under
// one mechanism to one destination.
type TransferRow struct {
	Year   int                   `json:"year"`
	Source domicile.Jurisdiction `json:"source"`
	// Mechanism is the registered mechanism's id, else the law's
	// mechanism name (domicile.TransferRecord.MechanismName); Kind is
	// the registered mechanism's kind.
	Mechanism   string                 `json:"mechanism"`
	Kind        domicile.MechanismKind `json:"mechanism_kind,omitempty"`
	Destination domicile.Jurisdiction  `json:"destination"`
	// Transfers counts the ledger's records (an export, a remote read
	// first counted, an imported group); Counted those of them counted
	// toward the thresholds.
	Transfers int64 `json:"transfers"`
	Counted   int64 `json:"counted_transfers"`
	// People and SensitivePeople are the distinct people whose
	// non-sensitive and sensitive personal information left by this route
	// in the year: the ledger's DimRoute counts.
	People          int64 `json:"people"`
	SensitivePeople int64 `json:"sensitive_people"`
}

// TransferRows returns the rows of the records of the years of counts,
// with people from counts (the breakdowns of those years), ordered by
// year, source, mechanism and destination. Records of other years are
// left out.
func TransferRows(records []domicile.TransferRecord, counts []domicile.Count) []TransferRow {
	type key struct {
		year      int
		src, dest domicile.Jurisdiction
		mech      string
	}
	years := map[int]bool{}
	people := map[key][2]int64{}
	for _, c := range counts {
		years[c.Year] = true
		if c.Dim != domicile.DimRoute {
			continue
		}
		mech, dest := splitRoute(c.Value)
		k := key{c.Year, c.Source, dest, mech}
		p := people[k]
		if c.Class == domicile.ClassSPI {
			p[1] = c.N
		} else {
			p[0] = c.N
		}
		people[k] = p
	}
	rows := map[key]*TransferRow{}
	for i := range records {
		r := &records[i]
		if !years[r.Year] {
			continue
		}
		k := key{r.Year, r.Source, r.Destination, r.MechanismName()}
		row := rows[k]
		if row == nil {
			p := people[k]
			row = &TransferRow{Year: r.Year, Source: r.Source, Mechanism: k.mech, Destination: r.Destination, People: p[0], SensitivePeople: p[1]}
			rows[k] = row
		}
		if r.Kind != "" {
			row.Kind = r.Kind
		}
		row.Transfers++
		if r.Counted {
			row.Counted++
		}
	}
	out := make([]TransferRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Year != b.Year:
			return a.Year < b.Year
		case a.Source != b.Source:
			return a.Source < b.Source
		case a.Mechanism != b.Mechanism:
			return a.Mechanism < b.Mechanism
		}
		return a.Destination < b.Destination
	})
	return out
}

// splitRoute undoes domicile.Route.
func splitRoute(v string) (mech string, dest domicile.Jurisdiction) {
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == '>' {
			return v[:i], domicile.Jurisdiction(v[i+1:])
		}
	}
	return v, ""
}

// LedgerDigest is the digest of the ledger's part a document counted:
// "sha256:" and the hex SHA-256 of each record's JSON (as the JSON
// evidence export writes it) followed by a newline, in the order given
// (the ledger's), then of each count's JSON and a newline, in the order
// given (the breakdown's). An auditor holding the evidence and the counts
// recomputes it.
func LedgerDigest(records []domicile.TransferRecord, counts []domicile.Count) string {
	h := sha256.New()
	for i := range records {
		b, _ := json.Marshal(&records[i])
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	for i := range counts {
		b, _ := json.Marshal(&counts[i])
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// YearPeople is [PeopleYTD] of one year and source.
type YearPeople struct {
	Year            int                   `json:"year"`
	Source          domicile.Jurisdiction `json:"source"`
	People          int64                 `json:"people"`
	SensitivePeople int64                 `json:"sensitive_people"`
}

// Ledger is what a document shows of the transfer ledger for some
// calendar years: each year's distinct people per source, its transfers
// by route, and the digest of what was counted.
type Ledger struct {
	Entity    string        `json:"entity"`
	Years     []int         `json:"years"`
	People    []YearPeople  `json:"people"`
	Transfers []TransferRow `json:"transfers"`
	// Records is how many transfer records were counted; Digest is
	// [LedgerDigest] of them and of the years' counts.
	Records int    `json:"records"`
	Digest  string `json:"digest"`
}

// LedgerOf builds the ledger figures of an entity's years from the
// records of those years (in the ledger's order) and the years'
// breakdowns (in year order, each as the ledger gives it).
func LedgerOf(entity string, years []int, records []domicile.TransferRecord, counts []domicile.Count) Ledger {
	l := Ledger{Entity: entity, Years: append([]int{}, years...), People: []YearPeople{}, Records: len(records)}
	sort.Ints(l.Years)
	type ys struct {
		year int
		src  domicile.Jurisdiction
	}
	seen := map[ys]bool{}
	var keys []ys
	for _, c := range counts {
		if k := (ys{c.Year, c.Source}); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].year != keys[j].year {
			return keys[i].year < keys[j].year
		}
		return keys[i].src < keys[j].src
	})
	for _, k := range keys {
		var year []domicile.Count
		for _, c := range counts {
			if c.Year == k.year {
				year = append(year, c)
			}
		}
		pi, spi := PeopleYTD(year, k.src)
		l.People = append(l.People, YearPeople{Year: k.year, Source: k.src, People: pi, SensitivePeople: spi})
	}
	l.Transfers = TransferRows(records, counts)
	l.Digest = LedgerDigest(records, counts)
	return l
}

// CompareLedger returns every figure of reported that differs from
// counted (recomputed from the same ledger), named as the report's JSON
// names it.
func CompareLedger(reported, counted Ledger) []Difference {
	var out []Difference
	if reported.Digest != counted.Digest {
		out = append(out, Difference{Figure: "ledger.digest", Ledger: true, Note: "the report says " + reported.Digest + ", the ledger's is " + counted.Digest})
	}
	if reported.Records != counted.Records {
		out = append(out, Difference{Figure: "ledger.records", Reported: reported.Records, Counted: counted.Records, Ledger: true})
	}
	type pk struct {
		y int
		s domicile.Jurisdiction
	}
	rp := map[pk]YearPeople{}
	for _, p := range reported.People {
		rp[pk{p.Year, p.Source}] = p
	}
	for _, p := range counted.People {
		r := rp[pk{p.Year, p.Source}]
		delete(rp, pk{p.Year, p.Source})
		name := "ledger.people[" + itoa(p.Year) + "," + string(p.Source) + "]"
		if r.People != p.People {
			out = append(out, Difference{Figure: name + ".people", Reported: int(r.People), Counted: int(p.People), Ledger: true})
		}
		if r.SensitivePeople != p.SensitivePeople {
			out = append(out, Difference{Figure: name + ".sensitive_people", Reported: int(r.SensitivePeople), Counted: int(p.SensitivePeople), Ledger: true})
		}
	}
	for k, r := range rp {
		out = append(out, Difference{Figure: "ledger.people[" + itoa(k.y) + "," + string(k.s) + "].people", Reported: int(r.People), Ledger: true})
	}
	type tk struct {
		y         int
		s, d      domicile.Jurisdiction
		mechanism string
	}
	rt := map[tk]TransferRow{}
	for _, t := range reported.Transfers {
		rt[tk{t.Year, t.Source, t.Destination, t.Mechanism}] = t
	}
	for _, t := range counted.Transfers {
		k := tk{t.Year, t.Source, t.Destination, t.Mechanism}
		r := rt[k]
		delete(rt, k)
		name := "ledger.transfers[" + itoa(t.Year) + "," + string(t.Source) + "," + t.Mechanism + ">" + string(t.Destination) + "]"
		for _, f := range []struct {
			n    string
			a, b int64
		}{{"transfers", r.Transfers, t.Transfers}, {"counted_transfers", r.Counted, t.Counted}, {"people", r.People, t.People}, {"sensitive_people", r.SensitivePeople, t.SensitivePeople}} {
			if f.a != f.b {
				out = append(out, Difference{Figure: name + "." + f.n, Reported: int(f.a), Counted: int(f.b), Ledger: true})
			}
		}
	}
	for k, r := range rt {
		out = append(out, Difference{Figure: "ledger.transfers[" + itoa(k.y) + "," + string(k.s) + "," + k.mechanism + ">" + string(k.d) + "].transfers", Reported: int(r.Transfers), Ledger: true})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Figure < out[j].Figure })
	return out
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
