package domicile

import "slices"

// ObjectKind is the name purposes use for a subject's objects (files), which
// have no declared kind of their own.
const ObjectKind = "object"

// Purpose is a declared purpose of processing and what it may read: purpose
// limitation (PIPL Arts. 6 and 29, GDPR Art. 5(1)(b)). An app states its
// purpose on every request; a read outside the purpose's scope is refused,
// and fields outside it are withheld.
//
// A purpose with no Kinds, Fields or Categories reads everything.
type Purpose struct {
	Name string `json:"name"`
	// Kinds lists the record kinds the purpose reads whole ("object" for
	// objects).
	Kinds []string `json:"kinds,omitempty"`
	// Fields lists, per record kind, the only fields the purpose reads of
	// that kind; the others are withheld.
	Fields map[string][]string `json:"fields,omitempty"`
	// Categories, if set, are the only data categories the purpose reads:
	// fields of other categories are withheld.
	Categories []Category `json:"categories,omitempty"`
	// Consent names the consent the subject must have given (and not
	// withdrawn) for the purpose to read anything.
	Consent string `json:"consent,omitempty"`
}

// Unrestricted reports whether p reads every kind and field.
func (p *Purpose) Unrestricted() bool {
	return len(p.Kinds) == 0 && len(p.Fields) == 0 && len(p.Categories) == 0
}

// ReadsKind reports whether p reads records of kind (or objects, for
// ObjectKind) at all.
func (p *Purpose) ReadsKind(kind string) bool {
	if len(p.Kinds) == 0 && len(p.Fields) == 0 {
		return true
	}
	if slices.Contains(p.Kinds, kind) {
		return true
	}
	_, ok := p.Fields[kind]
	return ok
}

// ReadsField reports whether p reads field of a record of kind, whose
// category is cat.
func (p *Purpose) ReadsField(kind, field string, cat Category) bool {
	if !p.ReadsKind(kind) {
		return false
	}
	if fs, ok := p.Fields[kind]; ok && !slices.Contains(fs, field) {
		return false
	}
	return len(p.Categories) == 0 || slices.Contains(p.Categories, cat)
}

// Purpose returns the declared purpose named name, or nil.
func (d *Deployment) Purpose(name string) *Purpose {
	for i := range d.Purposes {
		if d.Purposes[i].Name == name {
			return &d.Purposes[i]
		}
	}
	return nil
}

// PurposeNames returns the declared purposes' names in the file's order.
func (d *Deployment) PurposeNames() []string {
	out := make([]string, len(d.Purposes))
	for i, p := range d.Purposes {
		out[i] = p.Name
	}
	return out
}

// PurposeConsents returns the consents the declared purposes need, each
// once, in the file's order.
func (d *Deployment) PurposeConsents() []string {
	var out []string
	for _, p := range d.Purposes {
		if p.Consent != "" && !slices.Contains(out, p.Consent) {
			out = append(out, p.Consent)
		}
	}
	return out
}
