package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"domicile"
	"domicile/law"
)

// embeddedLaw compiles the embedded rules once per process.
var embeddedLaw = sync.OnceValues(law.New)

// useServeRules loads the rule bundle serve applies: --rules PATH if given,
// else the deployment's rules.path (relative to the deployment file), in
// both cases verified against the deployment's rules.keys. A bundle that is
// refused (unsigned, signed by a key not listed, changed after signing, a
// document that does not check) is logged with its cause and the embedded
// rules keep serving. It returns the engine in force. serve calls it once,
// before it opens the runtime.
func useServeRules(dep *domicile.Deployment, depFile, flagPath string, log *slog.Logger) *law.Engine {
	embedded, err := embeddedLaw()
	if err != nil {
		panic("domicile: embedded rules do not compile: " + err.Error()) // caught by every test run
	}
	p := flagPath
	if p == "" && dep.Rules.Path != "" {
		p = dep.Rules.Path
		if !filepath.IsAbs(p) && depFile != "" {
			p = filepath.Join(filepath.Dir(depFile), p)
		}
	}
	if p == "" {
		return embedded
	}
	var l *law.Loaded
	if len(dep.Rules.Keys) == 0 {
		err = fmt.Errorf("rules %s: the deployment lists no verifier keys (rules: {keys: [...]}), so no bundle can be trusted", p)
	} else {
		l, err = law.Load(p, dep.Rules.Keys)
	}
	if err != nil {
		log.Error("rule bundle refused; the embedded rules keep serving", slog.String("rules", embedded.RuleSet().String()), slog.Any("err", err))
		return embedded
	}
	log.Info("rule bundle loaded", slog.String("path", p), slog.String("rules", l.Engine.RuleSet().String()), slog.String("signed_by", l.Signer))
	return l.Engine
}
