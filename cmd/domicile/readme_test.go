package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEWalkthrough runs the sh blocks of the README's walk-through,
// as written, with POSIX sh (dash where it is /bin/sh), against the real
// binary: only the server's port, the binary's path and the build step
// are replaced. So the walk-through cannot race the admin token file,
// need a file it does not make, use bash-only syntax, or show a command
// the binary cannot run.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "cmp", "dd", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README walk-through needs %s on PATH", tool)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start, end := strings.Index(readme, "## A walk-through"), strings.Index(readme, "## Status")
	if start < 0 || end < start {
		t.Fatal("README.md has no walk-through section before its status")
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme[start:end], -1)
	if len(blocks) < 5 {
		t.Fatalf("the walk-through has %d sh blocks", len(blocks))
	}
	work := t.TempDir()
	s := startServer(t, filepath.Join(work, "data"))
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, blk := range blocks {
		for _, line := range strings.Split(blk[1], "\n") {
			switch {
			case strings.HasPrefix(line, "go build"), strings.HasPrefix(line, "./domicile serve"):
				line = ": " + line // the test built and started it
			}
			line = strings.NewReplacer("localhost:8700", u.Host, "127.0.0.1:8700", u.Host, "./domicile ", binary+" ").Replace(line)
			script.WriteString(line + "\n")
		}
	}
	cmd := exec.Command("sh", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "HOME="+work, "XDG_STATE_HOME=", "DOMICILE_SERVER="+s.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walk-through failed: %v\n%s\nscript:\n%s", err, out, script.String())
	}
	for _, want := range []string{
		`"cell":"cn-gz1"`, "the file came back whole", "residency-forbidden", "明天见", "OK", "hash chain verified", `"role": "app"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk-through's output lacks %q:\n%s", want, out)
		}
	}
	trail, err := os.ReadFile(filepath.Join(work, "trail.json"))
	if err != nil || !strings.Contains(string(trail), `operator`) || !strings.Contains(string(trail), `TICKET-123`) {
		t.Errorf("the trail the walk-through fetched lacks the operator's read: %v\n%s", err, trail)
	}
	if _, err := os.Stat(filepath.Join(work, ".local", "state", "domicile", "verify.state")); err != nil {
		t.Errorf("verify's state is not in the per-user state directory: %v", err)
	}
}
