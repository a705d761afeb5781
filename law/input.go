package law

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits on input, so that work stays bounded whatever a caller sends.
const (
	MaxInputBytes = 1 << 20 // largest fact file or inventory Parse accepts
	MaxFlows      = 1000    // most flows in one inventory
	MaxItems      = 1000    // most categories, systems or list entries in one list
	MaxAccess     = 16      // most access jurisdictions of one flow
	MaxLegs       = 1000    // most legs (crossings assessed) in one inventory, as many as MaxFlows flows of one leg
)

// InputKind says what a document is.
type InputKind string

// Input kinds.
const (
	KindFacts     InputKind = "facts"
	KindInventory InputKind = "inventory"
)

// Input is a parsed fact file or inventory. Build one with [Parse].
type Input struct {
	Kind      InputKind
	AsOf      string     // YYYY-MM-DD, or "" to use the date passed to Assess
	Facts     Facts      // a fact file's declared facts (Kind == KindFacts)
	Inventory *Inventory // Kind == KindInventory
	Warnings  []Warning  // remarks found while parsing (e.g. unassigned country codes)
	// Changes, from a top-level changes: {from, to}, asks what changes
	// between two days instead of a report on one ([Engine.Changes]).
	Changes *DateRange
}

// Inventory describes one legal entity and the flows of data it sends abroad.
type Inventory struct {
	Entity Entity
	Flows  []Flow
}

// Entity is the legal entity of an inventory. Its facts apply to every flow.
type Entity struct {
	Name       string
	Sector     string
	Facts      Facts // declared through named fields and facts:
	Categories []Category
	Systems    []System
	// Declared distinct counts across all flows, by counter fact
	// (pi_individuals_ytd, ...). Without one, the sum over flows is used.
	Distinct map[string]int64
}

// Category is a data category the entity processes.
type Category struct {
	Name      string
	Personal  bool // personal information (true unless declared false)
	Sensitive bool // sensitive personal information (implies personal)
	Important bool // notified or published important data
}

// System is where the entity stores data.
type System struct {
	Name       string
	Location   string // ISO 3166-1 alpha-2
	Categories []string
}

// Flow is one stream of data sent abroad. Its data comes from Source, is
// stored in Storage and read from each of Access; every crossing between
// them is a leg, assessed under the rules of the jurisdiction it leaves
// (see [Leg]).
type Flow struct {
	Name       string
	Recipient  string
	Categories []string
	Facts      Facts // declared through named fields and facts:
	// Source is the jurisdiction the data comes from; "" means the entity's.
	Source string
	// Storage is where the data is stored; nil means the destination, or
	// without one the source.
	Storage *Location
	// Access lists the jurisdictions the data is read from.
	Access []Location
}

// Location is a jurisdiction where a flow's data is stored or read, with
// facts about the recipient there (an adequacy decision, a safeguard, a
// covered counterparty). They apply to the legs into it.
type Location struct {
	Jurisdiction string // ISO 3166-1 alpha-2, or EU
	Facts        Facts  // nil when none are declared
}

// field maps a named inventory field to a fact.
type field struct{ name, fact string }

var entityFields = []field{
	{"jurisdiction", "source_jurisdiction"}, {"established_locally", "established_locally"},
	{"processor_in_prc", "processor_in_prc"}, {"offshore_targeting_prc", "offshore_targeting_prc"},
	{"ciio", "is_ciio"}, {"large_platform", "is_large_platform"}, {"individuals_processed", "pi_individuals_total"},
	{"free_trade_zone", "in_ftz"}, {"telecom_or_internet_provider", "is_telecom_or_internet_provider"},
	{"processes_sensitive_pi", "processes_sensitive_pi"}, {"processes_minors_under_14", "processes_minors_under_14"},
	{"processes_important_data", "processes_important_data"}, {"processes_core_data", "processes_core_data"},
	{"uses_automated_decisions", "uses_automated_decisions"}, {"shares_with_other_handler", "shares_with_other_handler"},
	{"legal_basis", "legal_basis"},
}

var flowFields = []field{
	{"destination", "recipient_country"}, {"recipient_restricted", "recipient_on_cac_restricted_list"},
	{"purpose", "transfer_purpose"}, {"necessary", "transfer_necessary"}, {"hr_rules_lawful", "hr_rules_lawful"},
	{"legal_basis", "legal_basis"},
	{"individuals_ytd", "pi_individuals_ytd"}, {"sensitive_individuals_ytd", "sensitive_pi_individuals_ytd"},
	{"individuals_since_prev_year", "pi_individuals_since_prev_year"},
	{"sensitive_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year"},
	{"gba", "in_gba"}, {"ftz_negative_list_hit", "ftz_negative_list_hit"}, {"splitting_detected", "splitting_detected"},
	{"notice_given", "art39_notice_given"}, {"separate_consent_obtained", "separate_consent_obtained"},
	{"pipia_completed", "pipia_completed"},
}

// counterFacts are the year counts an inventory aggregates over flows, with
// the entity field that declares the distinct count.
var counterFacts = []field{
	{"distinct_individuals_ytd", "pi_individuals_ytd"},
	{"distinct_sensitive_individuals_ytd", "sensitive_pi_individuals_ytd"},
	{"distinct_individuals_since_prev_year", "pi_individuals_since_prev_year"},
	{"distinct_sensitive_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year"},
}

// flowComputed are facts an inventory sets from a flow's categories; they
// may not be declared directly.
var flowComputed = []string{"transfers_abroad", "transfer_contains_pi", "transfer_contains_sensitive_pi", "has_important_data"}

// legFacts are facts each leg of a flow sets, with where to declare them.
var legFacts = map[string]string{
	"source_jurisdiction": "declare the flow's source (the entity's jurisdiction by default)",
	"recipient_country":   "declare the flow's destination, storage or access",
}

// flowForbidden are the facts a flow's facts: may not declare; a
// location's may not declare its flow's counts either, which the
// inventory aggregates per flow.
var (
	flowForbidden     = append(append([]string{}, flowComputed...), "source_jurisdiction", "recipient_country")
	locationForbidden = append(append([]string{}, flowForbidden...), "pi_individuals_ytd", "sensitive_pi_individuals_ytd",
		"pi_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year")
)

// Parse reads a fact file or an inventory, in YAML or JSON. A document whose
// top level has entity: or flows: is an inventory. Errors about the content
// are *InputError naming the field.
func Parse(data []byte) (*Input, error) {
	e, err := defaultEngine()
	if err != nil {
		return nil, err
	}
	return e.Parse(data)
}

// Parse is [Parse] against this engine's vocabulary.
func (e *Engine) Parse(data []byte) (*Input, error) {
	if len(data) > MaxInputBytes {
		return nil, inputErr("", "input is larger than %d bytes", MaxInputBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, inputErr("", "malformed YAML or JSON document")
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, inputErr("", "empty document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, inputErr("", "top level must be a mapping of fact names to values")
	}
	p := &parser{e: e}
	in := &Input{Kind: KindFacts}
	keys, _ := pairs(root)
	for _, k := range keys {
		if k == "entity" || k == "flows" {
			in.Kind = KindInventory
		}
	}
	var err error
	if in.Kind == KindFacts {
		err = p.factFile(root, in)
	} else {
		err = p.inventory(root, in)
	}
	if err != nil {
		return nil, err
	}
	in.Warnings = p.warns
	return in, nil
}

type parser struct {
	e     *Engine
	warns []Warning
}

func pairs(m *yaml.Node) ([]string, []*yaml.Node) {
	var ks []string
	var vs []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		ks = append(ks, m.Content[i].Value)
		vs = append(vs, m.Content[i+1])
	}
	return ks, vs
}

// mapping checks that n is a mapping with scalar keys, no duplicates, and
// no aliases anywhere below the keys.
func mapping(path string, n *yaml.Node) ([]string, []*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, inputErr(path, "must be a mapping")
	}
	ks, vs := pairs(n)
	seen := map[string]bool{}
	for i, k := range ks {
		kn := n.Content[2*i]
		if kn.Kind != yaml.ScalarNode || kn.Tag != "!!str" {
			return nil, nil, inputErr(join(path, k), "keys must be plain strings")
		}
		if seen[k] {
			return nil, nil, inputErr(join(path, k), "declared twice")
		}
		seen[k] = true
		if vs[i].Kind == yaml.AliasNode || vs[i].Anchor != "" {
			return nil, nil, inputErr(join(path, k), "anchors and aliases are not supported")
		}
	}
	return ks, vs, nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

var (
	intRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
)

// scalar converts a YAML scalar to bool, int64 or string by its tag.
func scalar(path string, n *yaml.Node) (any, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, inputErr(path, "must be a single value")
	}
	switch n.Tag {
	case "!!bool":
		switch n.Value {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, inputErr(path, "booleans are written true or false")
	case "!!int":
		if !intRE.MatchString(n.Value) {
			return nil, inputErr(path, "integers are written in plain decimal digits")
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return nil, inputErr(path, "integer out of range")
		}
		return v, nil
	case "!!str":
		return n.Value, nil
	case "!!null":
		return nil, inputErr(path, "missing value")
	default:
		return nil, inputErr(path, "unsupported value (write a boolean, a decimal integer or a string)")
	}
}

func (p *parser) asOf(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") || !validDate(n.Value) {
		return "", inputErr("as_of", "must be a date written YYYY-MM-DD")
	}
	return n.Value, nil
}

// fact parses one declared fact value at path.
func (p *parser) fact(path, name string, n *yaml.Node, into Facts) error {
	if _, ok := p.e.factDefs[name]; !ok {
		return inputErr(path, "unknown fact %q", name)
	}
	if _, dup := into[name]; dup {
		return inputErr(path, "fact %s declared twice", name)
	}
	raw, err := scalar(path, n)
	if err != nil {
		return err
	}
	v, w, err := p.e.checkFact(path, name, raw)
	if err != nil {
		return err
	}
	if w != nil {
		p.warns = append(p.warns, *w)
	}
	into[name] = v
	return nil
}

// changes parses changes: {from: YYYY-MM-DD, to: YYYY-MM-DD}.
func (p *parser) changes(n *yaml.Node) (*DateRange, error) {
	ks, vs, err := mapping("changes", n)
	if err != nil {
		return nil, err
	}
	var r DateRange
	for i, k := range ks {
		path := "changes." + k
		if vs[i].Kind != yaml.ScalarNode || (vs[i].Tag != "!!str" && vs[i].Tag != "!!timestamp") {
			return nil, inputErr(path, "must be a date written YYYY-MM-DD")
		}
		switch k {
		case "from":
			r.From = vs[i].Value
		case "to":
			r.To = vs[i].Value
		default:
			return nil, inputErr(path, "unknown field (expected from, to)")
		}
	}
	if err := r.check("changes"); err != nil {
		return nil, err
	}
	return &r, nil
}

func (p *parser) factFile(root *yaml.Node, in *Input) error {
	ks, vs, err := mapping("", root)
	if err != nil {
		return err
	}
	in.Facts = Facts{}
	for i, k := range ks {
		if k == "as_of" {
			if in.AsOf, err = p.asOf(vs[i]); err != nil {
				return err
			}
			continue
		}
		if k == "changes" {
			if in.Changes, err = p.changes(vs[i]); err != nil {
				return err
			}
			continue
		}
		if err := p.fact(k, k, vs[i], in.Facts); err != nil {
			return err
		}
	}
	return checkCombinations("", in.Facts)
}

func (p *parser) str(path string, n *yaml.Node) (string, error) {
	v, err := scalar(path, n)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", inputErr(path, "must be a string")
	}
	return s, nil
}

func (p *parser) boolean(path string, n *yaml.Node) (bool, error) {
	v, err := scalar(path, n)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, inputErr(path, "must be a boolean (true or false)")
	}
	return b, nil
}

func (p *parser) list(path string, n *yaml.Node) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, inputErr(path, "must be a list")
	}
	if len(n.Content) > MaxItems {
		return nil, inputErr(path, "more than %d entries", MaxItems)
	}
	for i, c := range n.Content {
		if c.Kind == yaml.AliasNode || c.Anchor != "" {
			return nil, inputErr(fmt.Sprintf("%s[%d]", path, i), "anchors and aliases are not supported")
		}
	}
	return n.Content, nil
}

func (p *parser) strings(path string, n *yaml.Node) ([]string, error) {
	items, err := p.list(path, n)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for i, it := range items {
		s, err := p.str(fmt.Sprintf("%s[%d]", path, i), it)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func lookup(fs []field, name string) (string, bool) {
	for _, f := range fs {
		if f.name == name {
			return f.fact, true
		}
	}
	return "", false
}

// extraFacts parses a facts: mapping of an entity or flow.
func (p *parser) extraFacts(path string, n *yaml.Node, into Facts, forbidden []string) error {
	ks, vs, err := mapping(path, n)
	if err != nil {
		return err
	}
	for i, k := range ks {
		if contains(forbidden, k) {
			if msg, ok := legFacts[k]; ok {
				return inputErr(join(path, k), "is set for each leg of the flow: %s", msg)
			}
			return inputErr(join(path, k), "is computed by the inventory and cannot be declared")
		}
		if err := p.fact(join(path, k), k, vs[i], into); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) inventory(root *yaml.Node, in *Input) error {
	ks, vs, err := mapping("", root)
	if err != nil {
		return err
	}
	inv := &Inventory{}
	var entity, flows *yaml.Node
	for i, k := range ks {
		switch k {
		case "as_of":
			if in.AsOf, err = p.asOf(vs[i]); err != nil {
				return err
			}
		case "changes":
			if in.Changes, err = p.changes(vs[i]); err != nil {
				return err
			}
		case "entity":
			entity = vs[i]
		case "flows":
			flows = vs[i]
		default:
			return inputErr(k, "unknown inventory field (expected as_of, changes, entity, flows)")
		}
	}
	if entity == nil {
		return inputErr("entity", "required")
	}
	if err := p.entity(entity, &inv.Entity); err != nil {
		return err
	}
	if flows != nil {
		items, err := p.list("flows", flows)
		if err != nil {
			return err
		}
		if len(items) > MaxFlows {
			return inputErr("flows", "more than %d flows", MaxFlows)
		}
		names := map[string]bool{}
		for i, it := range items {
			var f Flow
			path := fmt.Sprintf("flows[%d]", i)
			if err := p.flow(path, it, &f, &inv.Entity); err != nil {
				return err
			}
			if names[f.Name] {
				return inputErr(path+".name", "flow name %q used twice", f.Name)
			}
			names[f.Name] = true
			inv.Flows = append(inv.Flows, f)
		}
	}
	in.Inventory = inv
	return nil
}

func (p *parser) entity(n *yaml.Node, ent *Entity) error {
	ks, vs, err := mapping("entity", n)
	if err != nil {
		return err
	}
	ent.Facts = Facts{}
	ent.Distinct = map[string]int64{}
	var extra *yaml.Node
	for i, k := range ks {
		path := "entity." + k
		switch k {
		case "name":
			ent.Name, err = p.str(path, vs[i])
		case "sector":
			ent.Sector, err = p.str(path, vs[i])
		case "facts":
			extra = vs[i]
		case "categories":
			err = p.categories(path, vs[i], ent)
		case "systems":
			err = p.systems(path, vs[i], ent)
		default:
			if fact, ok := lookup(entityFields, k); ok {
				err = p.fact(path, fact, vs[i], ent.Facts)
			} else if fact, ok := lookup(counterFacts, k); ok {
				var v any
				if v, err = scalar(path, vs[i]); err == nil {
					var nv any
					if nv, _, err = p.e.checkFact(path, fact, v); err == nil {
						ent.Distinct[fact] = nv.(int64)
					}
				}
			} else {
				err = inputErr(path, "unknown entity field")
			}
		}
		if err != nil {
			return err
		}
	}
	if extra != nil {
		forbidden := append([]string{}, flowComputed...)
		for _, c := range counterFacts {
			forbidden = append(forbidden, c.fact)
		}
		if err := p.extraFacts("entity.facts", extra, ent.Facts, forbidden); err != nil {
			return err
		}
	}
	if err := checkCombinations("entity.", ent.Facts); err != nil {
		return err
	}
	total, hasTotal := ent.Facts["pi_individuals_total"].(int64)
	for _, c := range counterFacts {
		if v, ok := ent.Distinct[c.fact]; ok && hasTotal && c.fact != "pi_individuals_since_prev_year" && c.fact != "pi_individuals_ytd" && v > total {
			return inputErr("entity."+c.name, "%d is more than the declared individuals_processed (%d)", v, total)
		}
	}
	if a, ok := ent.Distinct["sensitive_pi_individuals_since_prev_year"]; ok {
		if b, ok := ent.Distinct["pi_individuals_since_prev_year"]; ok && a > b {
			return inputErr("entity.distinct_sensitive_individuals_since_prev_year", "%d is more than distinct_individuals_since_prev_year (%d)", a, b)
		}
	}
	return nil
}

func (p *parser) categories(path string, n *yaml.Node, ent *Entity) error {
	items, err := p.list(path, n)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		ks, vs, err := mapping(ip, it)
		if err != nil {
			return err
		}
		c := Category{Personal: true}
		for j, k := range ks {
			switch k {
			case "name":
				c.Name, err = p.str(ip+".name", vs[j])
			case "personal":
				c.Personal, err = p.boolean(ip+".personal", vs[j])
			case "sensitive":
				c.Sensitive, err = p.boolean(ip+".sensitive", vs[j])
			case "important":
				c.Important, err = p.boolean(ip+".important", vs[j])
			default:
				err = inputErr(ip+"."+k, "unknown category field (expected name, personal, sensitive, important)")
			}
			if err != nil {
				return err
			}
		}
		if c.Name == "" {
			return inputErr(ip+".name", "required")
		}
		if seen[c.Name] {
			return inputErr(ip+".name", "category %q declared twice", c.Name)
		}
		if c.Sensitive && !c.Personal {
			return inputErr(ip+".personal", "a sensitive category is personal information")
		}
		seen[c.Name] = true
		ent.Categories = append(ent.Categories, c)
	}
	return nil
}

func (p *parser) systems(path string, n *yaml.Node, ent *Entity) error {
	items, err := p.list(path, n)
	if err != nil {
		return err
	}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		ks, vs, err := mapping(ip, it)
		if err != nil {
			return err
		}
		var s System
		for j, k := range ks {
			switch k {
			case "name":
				s.Name, err = p.str(ip+".name", vs[j])
			case "location":
				if s.Location, err = p.str(ip+".location", vs[j]); err == nil {
					var w *Warning
					if w, err = checkCountry(ip+".location", s.Location); w != nil {
						p.warns = append(p.warns, *w)
					}
				}
			case "categories":
				if s.Categories, err = p.strings(ip+".categories", vs[j]); err == nil {
					err = knownCategories(ip+".categories", s.Categories, ent)
				}
			default:
				err = inputErr(ip+"."+k, "unknown system field (expected name, location, categories)")
			}
			if err != nil {
				return err
			}
		}
		if s.Name == "" {
			return inputErr(ip+".name", "required")
		}
		if s.Location == "" {
			return inputErr(ip+".location", "required")
		}
		ent.Systems = append(ent.Systems, s)
	}
	return nil
}

func knownCategories(path string, names []string, ent *Entity) error {
	for i, n := range names {
		if ent.category(n) == nil {
			return inputErr(fmt.Sprintf("%s[%d]", path, i), "unknown category %q (declare it under entity.categories)", n)
		}
	}
	return nil
}

func (ent *Entity) category(name string) *Category {
	for i := range ent.Categories {
		if ent.Categories[i].Name == name {
			return &ent.Categories[i]
		}
	}
	return nil
}

func (p *parser) flow(path string, n *yaml.Node, f *Flow, ent *Entity) error {
	ks, vs, err := mapping(path, n)
	if err != nil {
		return err
	}
	f.Facts = Facts{}
	var extra *yaml.Node
	hasCats := false
	for i, k := range ks {
		fp := path + "." + k
		switch k {
		case "name":
			f.Name, err = p.str(fp, vs[i])
		case "recipient":
			f.Recipient, err = p.str(fp, vs[i])
		case "categories":
			hasCats = true
			if f.Categories, err = p.strings(fp, vs[i]); err == nil {
				err = knownCategories(fp, f.Categories, ent)
			}
		case "facts":
			extra = vs[i]
		case "source":
			f.Source, err = p.country(fp, vs[i])
		case "storage":
			var loc Location
			if loc, err = p.location(fp, vs[i]); err == nil {
				f.Storage = &loc
			}
		case "access":
			err = p.access(fp, vs[i], f)
		default:
			if fact, ok := lookup(flowFields, k); ok {
				err = p.fact(fp, fact, vs[i], f.Facts)
			} else {
				err = inputErr(fp, "unknown flow field")
			}
		}
		if err != nil {
			return err
		}
	}
	if extra != nil {
		if err := p.extraFacts(path+".facts", extra, f.Facts, flowForbidden); err != nil {
			return err
		}
	}
	if f.Name == "" {
		return inputErr(path+".name", "required")
	}
	dest, hasDest := f.Facts["recipient_country"].(string)
	switch {
	case hasDest && f.Storage != nil:
		return inputErr(path+".storage", "give destination (where the data is sent and kept) or storage, not both")
	case !hasDest && f.Storage == nil && f.Access == nil:
		return inputErr(path+".destination", "required: name where the data goes (destination, or storage and access)")
	}
	storage := f.Source
	switch {
	case f.Storage != nil:
		storage = f.Storage.Jurisdiction
	case hasDest:
		storage = dest
	case storage == "":
		storage, _ = ent.Facts["source_jurisdiction"].(string)
		if storage == "" {
			storage, _ = p.e.factDefs["source_jurisdiction"].Default.(string)
		}
	}
	for i, a := range f.Access {
		if a.Jurisdiction == storage {
			return inputErr(fmt.Sprintf("%s.access[%d]", path, i), "%s is where the data is stored; list the jurisdictions it is read from elsewhere", storage)
		}
	}
	if !hasCats || len(f.Categories) == 0 {
		return inputErr(path+".categories", "required: name the data categories the flow carries")
	}
	sens := false
	for _, c := range f.Categories {
		sens = sens || ent.category(c).Sensitive
	}
	for _, c := range []field{{"sensitive_individuals_ytd", "sensitive_pi_individuals_ytd"}, {"sensitive_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year"}} {
		if v, _ := f.Facts[c.fact].(int64); v > 0 && !sens {
			return inputErr(path+"."+c.name, "the flow carries no sensitive category")
		}
	}
	if total, ok := ent.Facts["pi_individuals_total"].(int64); ok {
		for _, c := range []field{{"sensitive_individuals_ytd", "sensitive_pi_individuals_ytd"}, {"sensitive_individuals_since_prev_year", "sensitive_pi_individuals_since_prev_year"}} {
			if v, _ := f.Facts[c.fact].(int64); v > total {
				return inputErr(path+"."+c.name, "%d is more than the entity's individuals_processed (%d)", v, total)
			}
		}
	}
	return checkCombinations(path+".", f.Facts)
}

// country parses a jurisdiction code: two capital letters (EU included);
// a code ISO 3166-1 does not assign is a warning.
func (p *parser) country(path string, n *yaml.Node) (string, error) {
	s, err := p.str(path, n)
	if err != nil {
		return "", err
	}
	w, err := checkCountry(path, s)
	if err != nil {
		return "", err
	}
	if w != nil {
		p.warns = append(p.warns, *w)
	}
	return s, nil
}

// location parses a storage or access location: a jurisdiction code, or
// {jurisdiction: CODE, facts: {...}}.
func (p *parser) location(path string, n *yaml.Node) (Location, error) {
	if n.Kind == yaml.ScalarNode {
		j, err := p.country(path, n)
		return Location{Jurisdiction: j}, err
	}
	ks, vs, err := mapping(path, n)
	if err != nil {
		return Location{}, inputErr(path, "must be a jurisdiction code or a mapping {jurisdiction, facts}")
	}
	var loc Location
	for i, k := range ks {
		switch k {
		case "jurisdiction":
			loc.Jurisdiction, err = p.country(path+".jurisdiction", vs[i])
		case "facts":
			loc.Facts = Facts{}
			err = p.extraFacts(path+".facts", vs[i], loc.Facts, locationForbidden)
		default:
			err = inputErr(path+"."+k, "unknown location field (expected jurisdiction, facts)")
		}
		if err != nil {
			return Location{}, err
		}
	}
	if loc.Jurisdiction == "" {
		return Location{}, inputErr(path+".jurisdiction", "required")
	}
	if err := checkCombinations(path+".facts.", loc.Facts); err != nil {
		return Location{}, err
	}
	if len(loc.Facts) == 0 {
		loc.Facts = nil
	}
	return loc, nil
}

// access parses a flow's access: list.
func (p *parser) access(path string, n *yaml.Node, f *Flow) error {
	items, err := p.list(path, n)
	if err != nil {
		return err
	}
	if len(items) > MaxAccess {
		return inputErr(path, "more than %d jurisdictions", MaxAccess)
	}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		loc, err := p.location(ip, it)
		if err != nil {
			return err
		}
		for _, prev := range f.Access {
			if prev.Jurisdiction == loc.Jurisdiction {
				return inputErr(ip, "%s listed twice", loc.Jurisdiction)
			}
		}
		f.Access = append(f.Access, loc)
	}
	return nil
}

// date returns the input's as_of, or asOf's calendar day.
func (in *Input) date(asOf time.Time) (string, error) {
	if in == nil {
		return "", inputErr("", "no input")
	}
	if in.AsOf != "" {
		if !validDate(in.AsOf) {
			return "", inputErr("as_of", "must be a date written YYYY-MM-DD")
		}
		return in.AsOf, nil
	}
	return dateOf(asOf), nil
}

// MarshalJSON writes the input in its canonical JSON form, which Parse reads
// back to an equal Input.
func (in *Input) MarshalJSON() ([]byte, error) {
	if in.Kind == KindFacts {
		m := map[string]any{}
		for k, v := range in.Facts {
			m[k] = v
		}
		if in.AsOf != "" {
			m["as_of"] = in.AsOf
		}
		if in.Changes != nil {
			m["changes"] = in.Changes
		}
		return json.Marshal(m)
	}
	inv := in.Inventory
	ent := map[string]any{}
	if inv.Entity.Name != "" {
		ent["name"] = inv.Entity.Name
	}
	if inv.Entity.Sector != "" {
		ent["sector"] = inv.Entity.Sector
	}
	putFacts(ent, inv.Entity.Facts, entityFields)
	for _, c := range counterFacts {
		if v, ok := inv.Entity.Distinct[c.fact]; ok {
			ent[c.name] = v
		}
	}
	if len(inv.Entity.Categories) > 0 {
		var cs []map[string]any
		for _, c := range inv.Entity.Categories {
			cs = append(cs, map[string]any{"name": c.Name, "personal": c.Personal, "sensitive": c.Sensitive, "important": c.Important})
		}
		ent["categories"] = cs
	}
	if len(inv.Entity.Systems) > 0 {
		var ss []map[string]any
		for _, s := range inv.Entity.Systems {
			m := map[string]any{"name": s.Name, "location": s.Location}
			if s.Categories != nil {
				m["categories"] = s.Categories
			}
			ss = append(ss, m)
		}
		ent["systems"] = ss
	}
	doc := map[string]any{"entity": ent}
	if in.AsOf != "" {
		doc["as_of"] = in.AsOf
	}
	if in.Changes != nil {
		doc["changes"] = in.Changes
	}
	if inv.Flows != nil {
		flows := []map[string]any{}
		for _, f := range inv.Flows {
			m := map[string]any{"name": f.Name, "categories": f.Categories}
			if f.Recipient != "" {
				m["recipient"] = f.Recipient
			}
			if f.Source != "" {
				m["source"] = f.Source
			}
			if f.Storage != nil {
				m["storage"] = f.Storage.canonical()
			}
			if len(f.Access) > 0 {
				var as []any
				for _, a := range f.Access {
					as = append(as, a.canonical())
				}
				m["access"] = as
			}
			putFacts(m, f.Facts, flowFields)
			flows = append(flows, m)
		}
		doc["flows"] = flows
	}
	return json.Marshal(doc)
}

// canonical is a location's canonical form: its code alone when it has no facts.
func (l Location) canonical() any {
	if len(l.Facts) == 0 {
		return l.Jurisdiction
	}
	return map[string]any{"jurisdiction": l.Jurisdiction, "facts": l.Facts}
}

// putFacts writes facts under their named field where one exists, the rest under facts:.
func putFacts(m map[string]any, f Facts, fields []field) {
	extra := map[string]any{}
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		named := false
		for _, fl := range fields {
			if fl.fact == k {
				m[fl.name] = f[k]
				named = true
				break
			}
		}
		if !named {
			extra[k] = f[k]
		}
	}
	if len(extra) > 0 {
		m["facts"] = extra
	}
}

// Format returns the canonical JSON form of the input, indented.
func (in *Input) Format() ([]byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
