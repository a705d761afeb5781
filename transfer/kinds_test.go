package transfer

import (
	"slices"
	"testing"

	"domicile"
)

// TestKindsMatchDeployment keeps the kinds a deployment file may declare
// (the root package's list, which deploy checks without importing this
// package) equal to the registry's.
func TestKindsMatchDeployment(t *testing.T) {
	var reg []string
	for _, k := range kinds {
		reg = append(reg, string(k))
	}
	if got := domicile.MechanismKinds(); !slices.Equal(got, reg) {
		t.Errorf("domicile.MechanismKinds() = %v, want the registry's kinds %v", got, reg)
	}
}
