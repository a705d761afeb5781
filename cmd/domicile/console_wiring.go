package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"domicile"
	"domicile/httpapi"
	"domicile/law"
	"domicile/web"
)

// consolePage returns the console (web.Console), pinning the same log
// and witness keys as the privacy page, and showing the threshold ledger
// of each jurisdiction of the deployment's cells whose law sets volume
// thresholds (a threshold's rule id starts with the jurisdiction's code:
// CN.CBDF.7 is China's).
func consolePage(rt *runtime, lg *logs) (*web.Console, error) {
	c, err := web.NewConsole(web.ConsoleConfig{Logs: pinnedLogs(rt, lg), Sources: consoleSources(rt)})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return c, nil
}

// consoleSources are the jurisdictions of the deployment's cells whose
// threshold ledger the console shows (see consolePage).
func consoleSources(rt *runtime) []string {
	var sources []string
	for _, c := range rt.dep.Cells {
		j := string(c.Jurisdiction)
		if slices.Contains(sources, j) || rt.law == nil {
			continue
		}
		if slices.ContainsFunc(rt.law.Vocabulary().Thresholds, func(t law.Threshold) bool { return strings.HasPrefix(t.Rule, j+".") }) {
			sources = append(sources, j)
		}
	}
	return sources
}

// proxyParts is the router's httpapi.CellParts: its proxy, set once the
// proxy is made (the proxy needs the server that needs the parts).
type proxyParts struct{ *httpapi.Proxy }

// routerConsole is the router's console: the page every process serves,
// pinned as the router's privacy page is (routerPins), and made again
// when the router learns a cell's keys.
type routerConsole struct {
	dep     func() *domicile.Deployment
	sources []string
	logs    func(ctx context.Context) map[string]*httpapi.LogInfo

	// mu guards page and pinned.
	mu     sync.Mutex
	page   *web.Console
	pinned string
}

// Serve serves the console.
func (c *routerConsole) Serve(w http.ResponseWriter, r *http.Request) error {
	pins, key := routerPins(c.dep(), c.logs(r.Context()))
	c.mu.Lock()
	page := c.page
	if page == nil || c.pinned != key {
		np, err := web.NewConsole(web.ConsoleConfig{Logs: pins, Sources: c.sources})
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("console: %w", err)
		}
		c.page, c.pinned, page = np, key, np
	}
	c.mu.Unlock()
	return page.Serve(w, r)
}
