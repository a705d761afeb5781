// Package deploy reads a domicile deployment file (YAML): its cells, its
// residency policy, its record kinds and purposes, and the transfer
// mechanisms it declares. A file that contradicts itself is refused with a
// message naming its line.
package deploy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/sumdb/note"

	"domicile"
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded demo deployment.
func Default() *domicile.Deployment {
	d, err := Parse(defaultYAML)
	if err != nil {
		panic("deploy: embedded default is invalid: " + err.Error())
	}
	return d
}

// DefaultYAML returns the text of the embedded demo deployment.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// MaxFileBytes bounds a deployment file.
const MaxFileBytes = 1 << 20

// LineError is an error at a line of a deployment file.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line == 0 {
		return "deployment: " + e.Msg
	}
	return fmt.Sprintf("deployment: line %d: %s", e.Line, e.Msg)
}

func errAt(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &LineError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

var cellID = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// mechID is the transfer gateway's syntax for a mechanism id.
var mechID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse reads a deployment document.
func Parse(data []byte) (*domicile.Deployment, error) {
	if len(data) > MaxFileBytes {
		return nil, &LineError{Msg: fmt.Sprintf("file is over %d bytes", MaxFileBytes)}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &LineError{Msg: "file is empty"}
		}
		return nil, &LineError{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, errAt(doc, "a deployment must be a mapping")
	}
	d := &domicile.Deployment{MaxObjectBytes: domicile.DefaultMaxObjectBytes}
	seen := map[string]bool{}
	var policyNode *yaml.Node
	var mechPurposes, witnessCells []*yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if seen[k.Value] {
			return nil, errAt(k, "key %q appears twice", k.Value)
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "name":
			err = v.Decode(&d.Name)
		case "cells":
			err = parseCells(d, v)
		case "policy":
			policyNode = v
		case "purposes":
			err = parsePurposes(d, v)
		case "kinds":
			err = parseKinds(d, v)
		case "limits":
			err = parseLimits(d, v)
		case "objects":
			err = parseObjects(d, v)
		case "declarations":
			err = strictDecode(v, &d.Declarations)
		case "mechanisms":
			mechPurposes, err = parseMechanisms(d, v)
		case "rules":
			err = parseRules(d, v)
		case "witnesses":
			witnessCells, err = parseWitnesses(d, v)
		case "witness_wait":
			err = parseWitnessWait(d, v)
		case "notice_lead":
			err = parseNoticeLead(d, v)
		case "control":
			d.Control, err = parseStore(v, "control")
		default:
			return nil, errAt(k, "unknown key %q (want name, cells, policy, purposes, kinds, limits, objects, declarations, mechanisms, rules, witnesses, witness_wait, notice_lead, control)", k.Value)
		}
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				return nil, err
			}
			return nil, errAt(v, "%s: %v", k.Value, cleanYAML(err))
		}
	}
	if len(d.Cells) == 0 {
		return nil, errAt(doc, "no cells declared")
	}
	if d.Control.Kind == "" {
		d.Control.Kind = "sqlite"
	}
	if d.Control.Kind == "postgres" && d.Control.Schema == "" {
		d.Control.Schema = defaultCtlSchema
	}
	if err := checkSchemas(d, doc); err != nil {
		return nil, err
	}
	if policyNode == nil {
		return nil, errAt(doc, "no policy declared")
	}
	if err := parsePolicy(d, policyNode); err != nil {
		return nil, err
	}
	if len(d.Purposes) == 0 {
		d.Purposes = []domicile.Purpose{{Name: "service"}}
	}
	if err := checkPurposes(d, doc); err != nil {
		return nil, err
	}
	// A mechanism's purposes are checked once every purpose is known: the
	// sections may come in any order.
	for _, n := range mechPurposes {
		if n.Value != "*" && !d.HasPurpose(n.Value) {
			return nil, errAt(n, "mechanism purpose %q is not a declared purpose", n.Value)
		}
	}
	for _, n := range witnessCells {
		if d.Cell(n.Value) == nil {
			return nil, errAt(n, "witness cell %q is not a declared cell", trunc(n.Value, 32))
		}
	}
	return d, nil
}

func cleanYAML(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func strictDecode(n *yaml.Node, v any) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return err
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	return dec.Decode(v)
}

func parseCells(d *domicile.Deployment, v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode {
		return errAt(v, "cells must be a list")
	}
	ids, urls := map[string]bool{}, map[string]bool{}
	for _, n := range v.Content {
		var c domicile.CellConfig
		if n.Kind != yaml.MappingNode {
			return errAt(n, "a cell must be a mapping")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			switch k.Value {
			case "id":
				c.ID = val.Value
				if !cellID.MatchString(c.ID) {
					return errAt(val, "cell id %q must be lower-case letters, digits and '-', starting with a letter, at most 32 bytes", c.ID)
				}
				if ids[c.ID] {
					return errAt(val, "cell %q is declared twice", c.ID)
				}
				ids[c.ID] = true
			case "jurisdiction":
				j, err := domicile.ParseJurisdiction(val.Value)
				if err != nil {
					return errAt(val, "%v", err)
				}
				c.Jurisdiction = j
			case "operator":
				c.Operator = val.Value
			case "location":
				c.Location = val.Value
			case "store":
				st, err := parseStore(val, "store")
				if err != nil {
					return err
				}
				c.Store = st
			case "custody":
				if err := strictDecode(val, &c.Custody); err != nil {
					return errAt(val, "custody: %s", cleanYAML(err))
				}
			case "url":
				if err := checkCellURL(val.Value); err != nil {
					return errAt(val, "url: %v", err)
				}
				if urls[val.Value] {
					return errAt(val, "url %q is declared for two cells", trunc(val.Value, 64))
				}
				urls[val.Value] = true
				c.URL = val.Value
			default:
				return errAt(k, "unknown cell key %q (want id, jurisdiction, operator, location, store, custody, url)", k.Value)
			}
		}
		switch {
		case c.ID == "":
			return errAt(n, "cell has no id")
		case c.Jurisdiction == "":
			return errAt(n, "cell %q has no jurisdiction", c.ID)
		case strings.TrimSpace(c.Operator) == "":
			return errAt(n, "cell %q names no operator: the legal entity that runs it", c.ID)
		}
		// c.Store.Kind stays "" when the file names none: the embedded
		// default is chosen where the data directory is known, by what it
		// holds (domicile.StoreConfig.Kind), not here.
		if c.Store.Kind == "postgres" && c.Store.Schema == "" {
			c.Store.Schema = DefaultSchema(c.ID)
		}
		if c.Custody.Kind == "" {
			c.Custody.Kind = "file"
		}
		if c.Custody.Kind != "file" && c.Custody.Kind != "pkcs11" && c.Custody.Kind != "keyd" {
			return errAt(n, "cell %q: custody kind %q (want file, pkcs11 or keyd)", c.ID, c.Custody.Kind)
		}
		d.Cells = append(d.Cells, c)
	}
	return nil
}

// maxURLBytes bounds a cell's url.
const maxURLBytes = 2048

// checkCellURL checks a cell's url: http or https, a host (and port), and
// nothing else: no user, path, query or fragment, since the router
// appends the request's own path.
func checkCellURL(s string) error {
	if len(s) > maxURLBytes {
		return fmt.Errorf("over %d bytes", maxURLBytes)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", trunc(s, 64))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with http:// or https://", trunc(s, 64))
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q names no host", trunc(s, 64))
	case u.User != nil:
		return fmt.Errorf("%q must not carry a user or password", trunc(s, 64))
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.ForceQuery, u.Fragment != "":
		return fmt.Errorf("%q must be only a scheme, a host and a port: the router appends each request's path", trunc(s, 64))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port", trunc(s, 64))
		}
	}
	return nil
}

func parsePolicy(d *domicile.Deployment, v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return errAt(v, "policy must map jurisdictions to lists of cells")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		rule := domicile.PolicyRule{}
		if k.Value != "*" {
			j, err := domicile.ParseJurisdiction(k.Value)
			if err != nil {
				return errAt(k, "policy: %v", err)
			}
			rule.Jurisdiction = j
		}
		if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
			return errAt(val, "policy for %q must be a non-empty list of cell ids", k.Value)
		}
		for _, c := range val.Content {
			if d.Cell(c.Value) == nil {
				return errAt(c, "policy for %q names unknown cell %q", k.Value, c.Value)
			}
			rule.Cells = append(rule.Cells, c.Value)
		}
		for _, r := range d.Policy {
			if r.Jurisdiction == rule.Jurisdiction {
				return errAt(k, "policy for %q is declared twice", k.Value)
			}
		}
		d.Policy = append(d.Policy, rule)
	}
	return nil
}

// parsePurposes reads the purposes section: either a list of names (each
// purpose reads everything) or a map from each name to its scope:
//
//	purposes:
//	  service: {}                                  # reads everything
//	  support: {kinds: [profile, message, email]}
//	  analytics: {kinds: [location], consent: analytics}
//	  marketing: {fields: {profile: [name, email]}, consent: marketing}
//
// Kinds and fields are checked against the declared kinds by
// checkPurposes, once every section is read.
func parsePurposes(d *domicile.Deployment, v *yaml.Node) error {
	add := func(n *yaml.Node, p domicile.Purpose) error {
		if !nameRE.MatchString(p.Name) {
			return errAt(n, "purpose %q must be a lower-case word", trunc(p.Name, 64))
		}
		if d.HasPurpose(p.Name) {
			return errAt(n, "purpose %q is declared twice", p.Name)
		}
		d.Purposes = append(d.Purposes, p)
		return nil
	}
	switch v.Kind {
	case yaml.SequenceNode:
		for _, n := range v.Content {
			if err := add(n, domicile.Purpose{Name: n.Value}); err != nil {
				return err
			}
		}
		return nil
	case yaml.MappingNode:
	default:
		return errAt(v, "purposes must be a list of names or map each name to its scope")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		var raw struct {
			Kinds      []string            `yaml:"kinds"`
			Fields     map[string][]string `yaml:"fields"`
			Categories []string            `yaml:"categories"`
			Consent    string              `yaml:"consent"`
		}
		if val.Kind == yaml.ScalarNode && (val.Value == "" || val.Tag == "!!null") {
			// "service:" with nothing after it reads everything.
		} else if err := strictDecode(val, &raw); err != nil {
			return errAt(val, "purpose %q: %s (want kinds, fields, categories, consent)", trunc(k.Value, 64), cleanYAML(err))
		}
		p := domicile.Purpose{Name: k.Value, Kinds: raw.Kinds, Fields: raw.Fields, Consent: raw.Consent}
		for _, c := range raw.Categories {
			cat, err := domicile.ParseCategory(c)
			if err != nil {
				return errAt(val, "purpose %q: %v", trunc(k.Value, 64), err)
			}
			p.Categories = append(p.Categories, cat)
		}
		if p.Consent != "" && (!nameRE.MatchString(p.Consent) || p.Consent == "cross-border" || p.Consent == "sensitive") {
			return errAt(val, "purpose %q: consent %q must be a lower-case word other than cross-border and sensitive", trunc(k.Value, 64), trunc(p.Consent, 64))
		}
		if err := add(k, p); err != nil {
			return err
		}
	}
	return nil
}

// checkPurposes checks that each purpose names only declared kinds and
// fields (or "object").
func checkPurposes(d *domicile.Deployment, doc *yaml.Node) error {
	for _, p := range d.Purposes {
		for _, k := range p.Kinds {
			if k != domicile.ObjectKind && d.Kind(k) == nil {
				return errAt(doc, "purpose %q names kind %q, which is not declared", p.Name, trunc(k, 64))
			}
		}
		for k, fs := range p.Fields {
			kind := d.Kind(k)
			if kind == nil {
				return errAt(doc, "purpose %q names fields of kind %q, which is not declared", p.Name, trunc(k, 64))
			}
			if len(fs) == 0 {
				return errAt(doc, "purpose %q lists no fields of kind %q", p.Name, k)
			}
			for _, f := range fs {
				if _, ok := kind.Fields[f]; !ok {
					return errAt(doc, "purpose %q names field %q, which kind %q does not declare", p.Name, trunc(f, 64), k)
				}
			}
		}
	}
	return nil
}

func parseKinds(d *domicile.Deployment, v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return errAt(v, "kinds must map kind names to their fields")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if !nameRE.MatchString(k.Value) {
			return errAt(k, "kind %q must be a lower-case word", k.Value)
		}
		if d.Kind(k.Value) != nil {
			return errAt(k, "kind %q is declared twice", k.Value)
		}
		if val.Kind != yaml.MappingNode || len(val.Content) == 0 {
			return errAt(val, "kind %q must map field names to data categories", k.Value)
		}
		kind := domicile.Kind{Name: k.Value, Fields: map[string]domicile.Category{}}
		for j := 0; j+1 < len(val.Content); j += 2 {
			f, c := val.Content[j], val.Content[j+1]
			if !nameRE.MatchString(f.Value) {
				return errAt(f, "field %q must be a lower-case word", f.Value)
			}
			cat, err := domicile.ParseCategory(c.Value)
			if err != nil {
				return errAt(c, "%v", err)
			}
			kind.Fields[f.Value] = cat
		}
		d.Kinds = append(d.Kinds, kind)
	}
	sort.Slice(d.Kinds, func(i, j int) bool { return d.Kinds[i].Name < d.Kinds[j].Name })
	return nil
}

func parseLimits(d *domicile.Deployment, v *yaml.Node) error {
	var l struct {
		MaxObjectBytes int64 `yaml:"max_object_bytes"`
	}
	if err := strictDecode(v, &l); err != nil {
		return errAt(v, "limits: %s", cleanYAML(err))
	}
	if l.MaxObjectBytes < 0 {
		return errAt(v, "limits: max_object_bytes must not be negative")
	}
	if l.MaxObjectBytes > 0 {
		d.MaxObjectBytes = l.MaxObjectBytes
	}
	return nil
}

// scriptTypes are media types a browser runs script in, or that reach
// other content; a deployment may not serve them inline.
var scriptTypes = []string{
	"text/html", "application/xhtml+xml", "image/svg+xml", "application/xml", "text/xml",
	"text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript",
	"multipart/x-mixed-replace", "application/pdf", "text/xsl", "application/xslt+xml",
}

// parseObjects reads the objects section:
//
//	objects:
//	  inline_types: [image/jpeg, image/png]
//
// Objects of the listed media types may be shown inline by a browser;
// every other object is served as an attachment. Types a browser runs
// script in (HTML, SVG, XML, PDF...) are refused.
func parseObjects(d *domicile.Deployment, v *yaml.Node) error {
	var o struct {
		InlineTypes []string `yaml:"inline_types"`
	}
	if err := strictDecode(v, &o); err != nil {
		return errAt(v, "objects: %s", cleanYAML(err))
	}
	for _, t := range o.InlineTypes {
		mt, params, err := mime.ParseMediaType(t)
		switch {
		case err != nil || len(params) > 0 || mt != t || strings.Contains(t, "*") || strings.Count(t, "/") != 1:
			return errAt(v, "objects: inline type %q must be one media type in lower case, like image/png, without parameters or wildcards", trunc(t, 64))
		case slices.Contains(scriptTypes, mt) || strings.HasSuffix(mt, "+xml"):
			return errAt(v, "objects: inline type %q can run script in a browser; it is always served as an attachment", mt)
		case slices.Contains(d.InlineTypes, mt):
			return errAt(v, "objects: inline type %q is listed twice", mt)
		}
		d.InlineTypes = append(d.InlineTypes, mt)
	}
	return nil
}

// maxMechanisms bounds the mechanisms a deployment declares, and
// maxMechList each list of one.
const (
	maxMechanisms = 256
	maxMechList   = 256
)

// parseMechanisms reads the mechanisms section. It returns the purpose
// nodes, which Parse checks against the declared purposes.
func parseMechanisms(d *domicile.Deployment, v *yaml.Node) ([]*yaml.Node, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, errAt(v, "mechanisms must be a list")
	}
	if len(v.Content) > maxMechanisms {
		return nil, errAt(v, "more than %d mechanisms", maxMechanisms)
	}
	var purposes []*yaml.Node
	for _, n := range v.Content {
		if n.Kind != yaml.MappingNode {
			return nil, errAt(n, "a mechanism must be a mapping")
		}
		m := domicile.MechanismDecl{Source: "CN"}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				return nil, errAt(k, "mechanism key %q appears twice", k.Value)
			}
			seen[k.Value] = true
			switch k.Value {
			case "id", "kind", "source", "reference":
				if val.Kind != yaml.ScalarNode {
					return nil, errAt(val, "mechanism %s must be a string", k.Value)
				}
			case "destinations", "recipients", "purposes", "categories":
				if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
					return nil, errAt(val, "mechanism %s must be a non-empty list", k.Value)
				}
				if len(val.Content) > maxMechList {
					return nil, errAt(val, "mechanism %s: more than %d entries", k.Value, maxMechList)
				}
				for _, e := range val.Content {
					if e.Kind != yaml.ScalarNode {
						return nil, errAt(e, "mechanism %s must list strings", k.Value)
					}
				}
			default:
				return nil, errAt(k, "unknown mechanism key %q (want id, kind, source, destinations, recipients, purposes, categories, reference)", k.Value)
			}
			var err error
			switch k.Value {
			case "id":
				m.ID = val.Value
				if !mechID.MatchString(m.ID) {
					return nil, errAt(val, "mechanism id %q must be 1 to 64 letters, digits, '.', '_' or '-'", trunc(m.ID, 64))
				}
				if d.Mechanism(m.ID) != nil {
					return nil, errAt(val, "mechanism %q is declared twice", m.ID)
				}
			case "kind":
				m.Kind = domicile.MechanismKind(val.Value)
				if !m.Kind.Valid() {
					return nil, errAt(val, "unknown mechanism kind %q (want one of %s)", trunc(val.Value, 32), domicile.MechanismKindNames())
				}
			case "source":
				if m.Source, err = domicile.ParseJurisdiction(val.Value); err != nil {
					return nil, errAt(val, "mechanism source: %v", err)
				}
			case "reference":
				m.Reference = val.Value
				if m.Reference == "" || len(m.Reference) > 256 {
					return nil, errAt(val, "mechanism reference must be 1 to 256 bytes")
				}
			case "destinations":
				for _, e := range val.Content {
					j, err := domicile.ParseJurisdiction(e.Value)
					if err != nil {
						return nil, errAt(e, "mechanism destination: %v", err)
					}
					if slices.Contains(m.Destinations, j) {
						return nil, errAt(e, "mechanism destination %q is listed twice", j)
					}
					m.Destinations = append(m.Destinations, j)
				}
			case "recipients":
				for _, e := range val.Content {
					if strings.TrimSpace(e.Value) == "" || len(e.Value) > 256 {
						return nil, errAt(e, "a mechanism recipient must be 1 to 256 bytes")
					}
					if slices.Contains(m.Recipients, e.Value) {
						return nil, errAt(e, "mechanism recipient %q is listed twice", trunc(e.Value, 64))
					}
					m.Recipients = append(m.Recipients, e.Value)
				}
			case "purposes":
				for _, e := range val.Content {
					if e.Value != "*" && !nameRE.MatchString(e.Value) {
						return nil, errAt(e, "mechanism purpose %q must be a lower-case word or \"*\"", trunc(e.Value, 64))
					}
					if slices.Contains(m.Purposes, e.Value) {
						return nil, errAt(e, "mechanism purpose %q is listed twice", e.Value)
					}
					m.Purposes = append(m.Purposes, e.Value)
					purposes = append(purposes, e)
				}
			case "categories":
				for _, e := range val.Content {
					c, err := domicile.ParseCategory(e.Value)
					if err != nil {
						return nil, errAt(e, "%v", err)
					}
					if slices.Contains(m.Categories, c) {
						return nil, errAt(e, "mechanism category %q is listed twice", c)
					}
					m.Categories = append(m.Categories, c)
				}
			}
		}
		switch {
		case m.ID == "":
			return nil, errAt(n, "mechanism has no id")
		case m.Kind == "":
			return nil, errAt(n, "mechanism %q has no kind", m.ID)
		case len(m.Destinations) == 0:
			return nil, errAt(n, "mechanism %q names no destinations", m.ID)
		case len(m.Recipients) == 0:
			return nil, errAt(n, "mechanism %q names no recipients (\"*\" for any)", m.ID)
		case len(m.Purposes) == 0:
			return nil, errAt(n, "mechanism %q names no purposes (\"*\" for any)", m.ID)
		case len(m.Categories) == 0:
			return nil, errAt(n, "mechanism %q names no data categories", m.ID)
		}
		for _, j := range m.Destinations {
			if m.Source.Covers(j) {
				return nil, errAt(n, "mechanism %q: destination %s is inside its source %s", m.ID, j, m.Source)
			}
		}
		d.Mechanisms = append(d.Mechanisms, m)
	}
	return purposes, nil
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// maxRuleKeys bounds the verifier keys a deployment lists for its rules.
const maxRuleKeys = 16

// parseRules reads rules: {path, keys}: the signed rule bundle the law
// engine loads instead of its embedded rules, and the note verifier keys
// its signature must verify against.
func parseRules(d *domicile.Deployment, v *yaml.Node) error {
	if err := strictDecode(v, &d.Rules); err != nil {
		return err
	}
	if d.Rules.Path == "" {
		return errAt(v, "rules: path is required")
	}
	if len(d.Rules.Keys) == 0 {
		return errAt(v, "rules: keys: list at least one verifier key; a bundle must be signed")
	}
	if len(d.Rules.Keys) > maxRuleKeys {
		return errAt(v, "rules: keys: more than %d", maxRuleKeys)
	}
	for i, k := range d.Rules.Keys {
		if _, err := note.NewVerifier(k); err != nil {
			return errAt(v, "rules: keys[%d]: not a verifier key (NAME+HASH+KEY): %v", i, err)
		}
	}
	return nil
}
