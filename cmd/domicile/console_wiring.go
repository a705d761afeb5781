package main

import (
	"fmt"
	"slices"

	"domicile/web"
)

// consolePage returns the console (web.Console), pinning the same log
// and witness keys as the privacy page, and showing the threshold ledger
// of each jurisdiction the deployment's cells are in.
func consolePage(rt *runtime, lg *logs) (*web.Console, error) {
	var sources []string
	for _, c := range rt.dep.Cells {
		if j := string(c.Jurisdiction); !slices.Contains(sources, j) {
			sources = append(sources, j)
		}
	}
	c, err := web.NewConsole(web.ConsoleConfig{Logs: pinnedLogs(rt, lg), Sources: sources})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return c, nil
}
