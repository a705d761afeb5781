// Package browsertest starts Debian's Chromium for the UI tests of
// domicile's pages (through chromedp), runs the axe-core accessibility
// checker in a page, and keeps what the page wrote to its console. Only
// tests import it.
package browsertest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvChromium names the variable that holds the Chromium binary; the
// browser tests skip without it (.ci/run sets it).
const EnvChromium = "DOMICILE_TEST_CHROMIUM"

// Browser is one headless Chromium with one tab.
type Browser struct {
	// Ctx runs chromedp actions in the tab.
	Ctx context.Context
	mu  sync.Mutex
	log []string
}

// New starts Chromium (skipping t, with a message that says how to run
// it, when EnvChromium is unset) with a window of w×h pixels. The browser
// ends with the test or after timeout.
func New(t *testing.T, timeout time.Duration, w, h int) *Browser {
	t.Helper()
	exe := os.Getenv(EnvChromium)
	if exe == "" {
		t.Skipf("set %s to a chromium binary to run the browser tests (apt-get install chromium fonts-noto-cjk; .ci/run does it)", EnvChromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel(); cancel() })
	b := &Browser{Ctx: bctx}
	// Start the browser, then keep its console for failure reports.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(bctx) {
			if err != nil {
				return
			}
			b.mu.Lock()
			if len(b.log) < 1000 {
				b.log = append(b.log, m.String())
			}
			b.mu.Unlock()
		}
	}()
	return b
}

// Console returns what the pages wrote to the console so far.
func (b *Browser) Console() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.log, "\n")
}

//go:embed axe/node_modules/axe-core/axe.min.js
var axeSource string

// Violation is one accessibility rule that a page breaks, as axe-core
// reports it.
type Violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

func (v Violation) String() string {
	var where []string
	for _, n := range v.Nodes {
		where = append(where, fmt.Sprint(n.Target))
	}
	return fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(where, ", "))
}

// Axe injects axe-core (vendored with its lock file under axe/) into the
// current page and returns its violations of the WCAG 2.1 A and AA rules
// and axe's best practices.
func (b *Browser) Axe() ([]Violation, error) {
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
		return nil, fmt.Errorf("inject axe-core: %w", err)
	}
	raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte](
		`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}, resultTypes: ['violations']}).then(r => r.violations)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("run axe-core: %w", err)
	}
	var vs []Violation
	if err := json.Unmarshal(raw, &vs); err != nil {
		return nil, err
	}
	return vs, nil
}

// Serious returns the violations of impact serious or critical.
func Serious(vs []Violation) []Violation {
	var out []Violation
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}
