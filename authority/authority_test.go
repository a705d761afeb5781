package authority

import "testing"

func TestNewRequestValidate(t *testing.T) {
	ok := NewRequest{Authority: "U.S. Department of Justice", Jurisdiction: "US", Kind: "law_enforcement", LegalBasis: "warrant", Reference: "DOJ-1", Subjects: []string{"a"}}
	tests := []struct {
		name  string
		edit  func(*NewRequest)
		field string
	}{
		{"valid", func(*NewRequest) {}, ""},
		{"no authority", func(n *NewRequest) { n.Authority = "" }, "authority"},
		{"bad jurisdiction", func(n *NewRequest) { n.Jurisdiction = "us" }, "jurisdiction"},
		{"unknown kind", func(n *NewRequest) { n.Kind = "spy" }, "kind"},
		{"reference with a space", func(n *NewRequest) { n.Reference = "DOJ 1" }, "reference"},
		{"no subjects", func(n *NewRequest) { n.Subjects = nil }, "subjects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := ok
			tt.edit(&n)
			err := n.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.field != "" && (err == nil || !contains([]string{err.Error()[:len(tt.field)]}, tt.field)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}
