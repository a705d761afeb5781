package httpapi

import (
	"encoding/json"
	"slices"
	"testing"

	"domicile"
)

// TestOpenAPIMechanismKinds: the served document is JSON and lists the
// mechanism kinds from their one definition.
func TestOpenAPIMechanismKinds(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []domicile.MechanismKind `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("the served OpenAPI document is not JSON: %v", err)
	}
	got := doc.Components.Schemas["Mechanism"].Properties["kind"].Enum
	if !slices.Equal(got, domicile.MechanismKinds()) {
		t.Errorf("Mechanism.kind enum = %v, want domicile.MechanismKinds() %v", got, domicile.MechanismKinds())
	}
}
