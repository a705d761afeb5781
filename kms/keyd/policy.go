package keyd

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // policies name IANA time zones; custodian hosts may lack zoneinfo

	"go.yaml.in/yaml/v3"

	"domicile/kms"
)

// Limits on a policy file.
const (
	// MaxPolicyBytes is the largest policy file ParsePolicy accepts.
	MaxPolicyBytes = 1 << 20
	// MaxClauses is the largest number of clauses in a policy.
	MaxClauses = 1000
	// maxListItems bounds each matcher list.
	maxListItems = 256
)

// Effect is what a matching clause decides.
type Effect string

// Effects a clause may have.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Key administration operations a policy may open to cells.
const (
	OpRotate = "rotate"
	OpRetire = "retire"
)

// ServiceWildcard, in a clause's reasons, matches every "service:<purpose>".
const ServiceWildcard = kms.ServiceReasonPrefix + "*"

// Policy is the custodian's rule set. Clauses are tried in order; the first
// whose matchers all match decides; when none matches, the answer is deny.
type Policy struct {
	// KeyAdmin lists the key administration operations (OpRotate, OpRetire)
	// that authenticated cells may perform. Default: none.
	KeyAdmin []string
	// Clauses are tried in order.
	Clauses []Clause
}

// Clause is one rule of a policy. Every matcher that is set must match; an
// unset matcher matches everything. Lists match if any element matches.
type Clause struct {
	// Name identifies the clause in decisions and logs. Unique in a policy.
	Name string
	// Effect is Allow or Deny.
	Effect Effect
	// Roles matches Access.Role.
	Roles []string
	// Reasons matches Access.Reason; ServiceWildcard matches any app purpose.
	Reasons []string
	// ReferenceRequired, when true, matches only an access with a Reference.
	ReferenceRequired bool
	// Cells matches Access.Cell.
	Cells []string
	// Jurisdictions matches Access.Jurisdiction.
	Jurisdictions []string
	// NotBefore, if not zero, matches only at or after this instant.
	NotBefore time.Time
	// NotAfter, if not zero, matches only before this instant.
	NotAfter time.Time
	// Hours, if set, is a daily window "HH:MM-HH:MM" in Timezone; a window
	// whose end is before its start spans midnight.
	Hours string
	// Timezone is the IANA zone of Hours. Default UTC.
	Timezone string

	line       int
	start, end int // minutes after midnight
	loc        *time.Location
}

// PolicyError reports a malformed policy: the line and field at fault.
type PolicyError struct {
	// Line is the 1-based line in the policy file, or 0 if unknown.
	Line int
	// Field is the path of the offending field (for example "clauses[2].hours").
	Field string
	// Problem says what is wrong.
	Problem string
}

// Error implements error.
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("keyd: policy")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Problem)
	return b.String()
}

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	cellRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	purposeRE  = regexp.MustCompile(`^service:[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$`)
	hoursRE    = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$`)
	timezoneRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$`)
	yamlLineRE = regexp.MustCompile(`line (\d+)`)
)

// ParsePolicy parses a policy file. Unknown fields, duplicate keys, anchors
// and aliases are refused; every error is a *PolicyError naming the line and
// field. It never panics.
func ParsePolicy(b []byte) (p *Policy, err error) {
	if len(b) > MaxPolicyBytes {
		return nil, &PolicyError{Problem: fmt.Sprintf("larger than %d bytes", MaxPolicyBytes)}
	}
	var doc yaml.Node
	if err := safeUnmarshal(b, &doc); err != nil {
		pe := &PolicyError{Problem: "not valid YAML"}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			pe.Line, _ = strconv.Atoi(m[1])
		}
		return nil, pe
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &PolicyError{Problem: "empty policy"}
	}
	root := doc.Content[0]
	if err := checkNoAliases(root, ""); err != nil {
		return nil, err
	}
	p = &Policy{}
	err = eachKey(root, "", func(key string, v *yaml.Node) error {
		switch key {
		case "key_admin":
			list, err := stringList(v, "key_admin")
			if err != nil {
				return err
			}
			for _, op := range list {
				if op != OpRotate && op != OpRetire {
					return &PolicyError{Line: v.Line, Field: "key_admin", Problem: fmt.Sprintf("unknown operation %q (want rotate, retire)", op)}
				}
			}
			if err := noDuplicates(v, "key_admin", list); err != nil {
				return err
			}
			p.KeyAdmin = list
		case "clauses":
			if v.Kind != yaml.SequenceNode {
				return &PolicyError{Line: v.Line, Field: "clauses", Problem: "want a list of clauses"}
			}
			if len(v.Content) > MaxClauses {
				return &PolicyError{Line: v.Line, Field: "clauses", Problem: fmt.Sprintf("more than %d clauses", MaxClauses)}
			}
			for i, cn := range v.Content {
				c, err := parseClause(cn, fmt.Sprintf("clauses[%d]", i))
				if err != nil {
					return err
				}
				for _, prev := range p.Clauses {
					if prev.Name == c.Name {
						return &PolicyError{Line: cn.Line, Field: fmt.Sprintf("clauses[%d].name", i), Problem: fmt.Sprintf("name %q already used on line %d", c.Name, prev.line)}
					}
				}
				p.Clauses = append(p.Clauses, c)
			}
		default:
			return &PolicyError{Line: v.Line, Field: key, Problem: "unknown field (want key_admin, clauses)"}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// safeUnmarshal turns a panic inside the YAML decoder into an error.
func safeUnmarshal(b []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("yaml decoder failed")
		}
	}()
	return yaml.Unmarshal(b, n)
}

func checkNoAliases(n *yaml.Node, field string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return &PolicyError{Line: n.Line, Field: field, Problem: "anchors and aliases are not allowed"}
	}
	for _, c := range n.Content {
		if err := checkNoAliases(c, field); err != nil {
			return err
		}
	}
	return nil
}

// eachKey calls f for every key of mapping n, refusing duplicates.
func eachKey(n *yaml.Node, field string, f func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return &PolicyError{Line: n.Line, Field: field, Problem: "want a mapping of fields"}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return &PolicyError{Line: k.Line, Field: field, Problem: "field names must be strings"}
		}
		path := k.Value
		if field != "" {
			path = field + "." + k.Value
		}
		if prev, dup := seen[k.Value]; dup {
			return &PolicyError{Line: k.Line, Field: path, Problem: fmt.Sprintf("repeated (first on line %d)", prev)}
		}
		seen[k.Value] = k.Line
		if err := f(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") {
		return "", &PolicyError{Line: n.Line, Field: field, Problem: "want a string"}
	}
	return n.Value, nil
}

func stringList(n *yaml.Node, field string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, &PolicyError{Line: n.Line, Field: field, Problem: "want a list of strings"}
	}
	if len(n.Content) == 0 {
		return nil, &PolicyError{Line: n.Line, Field: field, Problem: "empty list matches nothing; omit the field to match everything"}
	}
	if len(n.Content) > maxListItems {
		return nil, &PolicyError{Line: n.Line, Field: field, Problem: fmt.Sprintf("more than %d items", maxListItems)}
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		s, err := str(c, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func noDuplicates(n *yaml.Node, field string, list []string) error {
	for i, s := range list {
		if slices.Contains(list[:i], s) {
			return &PolicyError{Line: n.Content[i].Line, Field: fmt.Sprintf("%s[%d]", field, i), Problem: fmt.Sprintf("%q repeated", s)}
		}
	}
	return nil
}

// checkedList parses a list whose items must each satisfy ok.
func checkedList(n *yaml.Node, field, want string, ok func(string) bool) ([]string, error) {
	list, err := stringList(n, field)
	if err != nil {
		return nil, err
	}
	for i, s := range list {
		if !ok(s) {
			return nil, &PolicyError{Line: n.Content[i].Line, Field: fmt.Sprintf("%s[%d]", field, i), Problem: fmt.Sprintf("%q is not %s", s, want)}
		}
	}
	return list, noDuplicates(n, field, list)
}

func validReason(s string) bool {
	return slices.Contains(kms.Reasons, s) || s == ServiceWildcard || purposeRE.MatchString(s)
}

func validJurisdiction(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func parseClause(n *yaml.Node, field string) (Clause, error) {
	c := Clause{line: n.Line}
	var tzLine int
	err := eachKey(n, field, func(key string, v *yaml.Node) error {
		f := field + "." + key
		var err error
		switch key {
		case "name":
			if c.Name, err = str(v, f); err == nil && !nameRE.MatchString(c.Name) {
				err = &PolicyError{Line: v.Line, Field: f, Problem: "want 1-64 letters, digits, '.', '_' or '-'"}
			}
		case "effect":
			var s string
			if s, err = str(v, f); err == nil {
				c.Effect = Effect(s)
				if c.Effect != Allow && c.Effect != Deny {
					err = &PolicyError{Line: v.Line, Field: f, Problem: fmt.Sprintf("%q is not allow or deny", s)}
				}
			}
		case "roles":
			c.Roles, err = checkedList(v, f, "a role ("+strings.Join(kms.Roles, ", ")+")", func(s string) bool { return slices.Contains(kms.Roles, s) })
		case "reasons":
			c.Reasons, err = checkedList(v, f, "a reason ("+strings.Join(kms.Reasons, ", ")+", service:<purpose> or service:*)", validReason)
		case "cells":
			c.Cells, err = checkedList(v, f, "a cell id", cellRE.MatchString)
		case "jurisdictions":
			c.Jurisdictions, err = checkedList(v, f, "an upper-case two-letter code", validJurisdiction)
		case "reference_required":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || (v.Value != "true" && v.Value != "false") {
				err = &PolicyError{Line: v.Line, Field: f, Problem: "want true or false"}
			} else {
				c.ReferenceRequired = v.Value == "true"
			}
		case "not_before", "not_after":
			var s string
			var t time.Time
			if s, err = str(v, f); err == nil {
				t, err = time.Parse(time.RFC3339, s)
				if err != nil || t.Format(time.RFC3339Nano) != s {
					err = &PolicyError{Line: v.Line, Field: f, Problem: "want an RFC 3339 time such as 2026-01-31T18:00:00Z"}
				}
			}
			if key == "not_before" {
				c.NotBefore = t
			} else {
				c.NotAfter = t
			}
		case "hours":
			if c.Hours, err = str(v, f); err == nil {
				m := hoursRE.FindStringSubmatch(c.Hours)
				if m == nil {
					return &PolicyError{Line: v.Line, Field: f, Problem: `want "HH:MM-HH:MM" (24-hour clock)`}
				}
				h1, _ := strconv.Atoi(m[1])
				m1, _ := strconv.Atoi(m[2])
				h2, _ := strconv.Atoi(m[3])
				m2, _ := strconv.Atoi(m[4])
				c.start, c.end = h1*60+m1, h2*60+m2
				if c.start == c.end {
					err = &PolicyError{Line: v.Line, Field: f, Problem: "empty window: start equals end"}
				}
			}
		case "timezone":
			tzLine = v.Line
			if c.Timezone, err = str(v, f); err == nil {
				if !timezoneRE.MatchString(c.Timezone) || len(c.Timezone) > 64 {
					return &PolicyError{Line: v.Line, Field: f, Problem: "want an IANA time zone such as Asia/Shanghai"}
				}
				if c.loc, err = time.LoadLocation(c.Timezone); err != nil {
					err = &PolicyError{Line: v.Line, Field: f, Problem: fmt.Sprintf("unknown time zone %q", c.Timezone)}
				}
			}
		default:
			err = &PolicyError{Line: v.Line, Field: f, Problem: "unknown field (want name, effect, roles, reasons, reference_required, cells, jurisdictions, not_before, not_after, hours, timezone)"}
		}
		return err
	})
	if err != nil {
		return Clause{}, err
	}
	switch {
	case c.Name == "":
		return Clause{}, &PolicyError{Line: n.Line, Field: field + ".name", Problem: "missing"}
	case c.Effect == "":
		return Clause{}, &PolicyError{Line: n.Line, Field: field + ".effect", Problem: "missing (allow or deny)"}
	case c.Timezone != "" && c.Hours == "":
		return Clause{}, &PolicyError{Line: tzLine, Field: field + ".timezone", Problem: "timezone without hours"}
	case !c.NotBefore.IsZero() && !c.NotAfter.IsZero() && !c.NotBefore.Before(c.NotAfter):
		return Clause{}, &PolicyError{Line: n.Line, Field: field + ".not_after", Problem: "not after not_before"}
	}
	if c.Hours != "" && c.loc == nil {
		c.loc = time.UTC
	}
	return c, nil
}

// Decide rules on a: the first matching clause decides; no match denies.
// It returns the outcome, the deciding clause's name ("" for the default)
// and a sentence explaining why.
func (p *Policy) Decide(a kms.Access, now time.Time) (allowed bool, clause, reason string) {
	for _, c := range p.Clauses {
		if c.Matches(a, now) {
			verb := "allows"
			if c.Effect == Deny {
				verb = "denies"
			}
			return c.Effect == Allow, c.Name, fmt.Sprintf("clause %q %s role %s with reason %s", c.Name, verb, a.Role, a.Reason)
		}
	}
	return false, "", fmt.Sprintf("no clause matches role %s with reason %s; default deny", a.Role, a.Reason)
}

// AllowsKeyAdmin reports whether cells may perform op (OpRotate or OpRetire).
func (p *Policy) AllowsKeyAdmin(op string) bool { return slices.Contains(p.KeyAdmin, op) }

// Matches reports whether every matcher of c matches a at now.
func (c *Clause) Matches(a kms.Access, now time.Time) bool {
	if len(c.Roles) > 0 && !slices.Contains(c.Roles, a.Role) {
		return false
	}
	if len(c.Reasons) > 0 && !slices.ContainsFunc(c.Reasons, func(r string) bool {
		return r == a.Reason || (r == ServiceWildcard && a.Role == kms.RoleApp && strings.HasPrefix(a.Reason, kms.ServiceReasonPrefix))
	}) {
		return false
	}
	if c.ReferenceRequired && strings.TrimSpace(a.Reference) == "" {
		return false
	}
	if len(c.Cells) > 0 && !slices.Contains(c.Cells, a.Cell) {
		return false
	}
	if len(c.Jurisdictions) > 0 && !slices.Contains(c.Jurisdictions, a.Jurisdiction) {
		return false
	}
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore) {
		return false
	}
	if !c.NotAfter.IsZero() && !now.Before(c.NotAfter) {
		return false
	}
	if c.Hours != "" {
		t := now.In(c.loc)
		m := t.Hour()*60 + t.Minute()
		if c.start < c.end {
			return c.start <= m && m < c.end
		}
		return m >= c.start || m < c.end
	}
	return true
}

// Format returns the canonical text of p: ParsePolicy(Format(p)) equals p,
// and formatting that again gives the same bytes.
func (p *Policy) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# domicile keyd policy: first matching clause decides; no match denies.\n")
	if len(p.KeyAdmin) > 0 {
		b.WriteString("key_admin: " + flowList(p.KeyAdmin) + "\n")
	}
	if len(p.Clauses) == 0 {
		b.WriteString("clauses: []\n")
		return b.Bytes()
	}
	b.WriteString("clauses:\n")
	for _, c := range p.Clauses {
		fmt.Fprintf(&b, "  - name: %s\n", strconv.Quote(c.Name))
		fmt.Fprintf(&b, "    effect: %s\n", strconv.Quote(string(c.Effect)))
		for _, l := range []struct {
			key  string
			list []string
		}{{"roles", c.Roles}, {"reasons", c.Reasons}, {"cells", c.Cells}, {"jurisdictions", c.Jurisdictions}} {
			if len(l.list) > 0 {
				fmt.Fprintf(&b, "    %s: %s\n", l.key, flowList(l.list))
			}
		}
		if c.ReferenceRequired {
			b.WriteString("    reference_required: true\n")
		}
		if !c.NotBefore.IsZero() {
			fmt.Fprintf(&b, "    not_before: %s\n", strconv.Quote(c.NotBefore.Format(time.RFC3339Nano)))
		}
		if !c.NotAfter.IsZero() {
			fmt.Fprintf(&b, "    not_after: %s\n", strconv.Quote(c.NotAfter.Format(time.RFC3339Nano)))
		}
		if c.Hours != "" {
			fmt.Fprintf(&b, "    hours: %s\n", strconv.Quote(c.Hours))
		}
		if c.Timezone != "" {
			fmt.Fprintf(&b, "    timezone: %s\n", strconv.Quote(c.Timezone))
		}
	}
	return b.Bytes()
}

func flowList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
