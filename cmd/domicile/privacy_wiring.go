package main

import (
	"fmt"

	"domicile/web"
)

// privacyPage returns the privacy page (web.Privacy), served with the keys
// it pins: each cell's log key, the cosignature keys of the other cells'
// witnesses, which cosign that log, and those of the stand-alone
// witnesses the deployment requires for it.
func privacyPage(rt *runtime, lg *logs) (*web.Privacy, error) {
	p, err := web.NewPrivacy(web.PrivacyConfig{Logs: pinnedLogs(rt, lg)})
	if err != nil {
		return nil, fmt.Errorf("privacy page: %w", err)
	}
	return p, nil
}

// pinnedLogs are the keys the pages pin for each cell's log (see
// privacyPage).
func pinnedLogs(rt *runtime, lg *logs) []web.PinnedLog {
	var pins []web.PinnedLog
	for _, c := range rt.cells {
		l := lg.byCell[c.ID()]
		if l == nil {
			continue
		}
		pin := web.PinnedLog{Cell: c.ID(), URL: "/log/" + c.ID() + "/", Key: l.VerifierKey(), Witnesses: []string{}}
		for _, o := range rt.cells {
			if w := rt.witnesses[o.ID()]; w != nil && o.ID() != c.ID() {
				pin.Witnesses = append(pin.Witnesses, w.Verifier())
			}
		}
		for _, w := range rt.dep.WitnessesOf(c.ID()) {
			if w.Required {
				pin.Witnesses = append(pin.Witnesses, w.Key)
			}
		}
		pins = append(pins, pin)
	}
	return pins
}
