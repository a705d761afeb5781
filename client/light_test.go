package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLight keeps the client importable without the server's
// dependencies: no CEL, Prometheus, age, SQLite or PostgreSQL driver, and
// no domicile package but the domain types and the JSON scanner they
// check bodies with (internal/jsonscan, standard library only).
func TestLight(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH; run the tests with Go installed")
	}
	out, err := exec.Command("go", "list", "-deps", "domicile/client").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	heavy := []string{"cel.dev/", "github.com/prometheus/", "filippo.io/age", "modernc.org/sqlite", "github.com/jackc/pgx"}
	for _, dep := range strings.Fields(string(out)) {
		for _, h := range heavy {
			if strings.HasPrefix(dep, h) {
				t.Errorf("domicile/client depends on %s", dep)
			}
		}
		if strings.HasPrefix(dep, "domicile/") && dep != "domicile/client" && dep != "domicile/internal/jsonscan" {
			t.Errorf("domicile/client depends on %s; only the domain types (package domicile) are allowed", dep)
		}
	}
}
