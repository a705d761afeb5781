package main

import (
	"fmt"
	"slices"
	"strings"

	"domicile/law"

	"domicile/web"
)

// consolePage returns the console (web.Console), pinning the same log
// and witness keys as the privacy page, and showing the threshold ledger
// of each jurisdiction of the deployment's cells whose law sets volume
// thresholds (a threshold's rule id starts with the jurisdiction's code:
// CN.CBDF.7 is China's).
func consolePage(rt *runtime, lg *logs) (*web.Console, error) {
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
	c, err := web.NewConsole(web.ConsoleConfig{Logs: pinnedLogs(rt, lg), Sources: sources})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return c, nil
}
