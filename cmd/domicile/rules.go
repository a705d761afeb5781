package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"domicile/law"
)

// rulesCommand is `domicile rules`.
var rulesCommand = command{name: "rules", summary: "check, export, sign and bundle law rule sets (counsel's updates without a new binary)", run: func(ctx context.Context, env *cmdEnv, args []string) error {
	return sub(ctx, env, "rules", args, map[string]func(context.Context, *cmdEnv, []string) error{
		"check": rulesCheck, "export": rulesExport, "keygen": rulesKeygen, "bundle": rulesBundle})
}}

// keyList is a repeatable flag of verifier keys.
type keyList []string

func (k *keyList) String() string { return strings.Join(*k, ",") }
func (k *keyList) Set(s string) error {
	if _, err := note.NewVerifier(s); err != nil {
		return fmt.Errorf("not a verifier key (NAME+HASH+KEY): %v", err)
	}
	*k = append(*k, s)
	return nil
}

// rulesFlags are --rules and --rules-key of the assess command.
type rulesFlags struct {
	path *string
	keys keyList
}

func addRulesFlags(fs *flag.FlagSet) *rulesFlags {
	r := &rulesFlags{path: fs.String("rules", "", "apply the rule set in `PATH` (a directory or a signed bundle) instead of the embedded rules")}
	fs.Var(&r.keys, "rules-key", "verifier `KEY` a --rules bundle must be signed by (repeatable)")
	return r
}

// engine returns the engine of --rules, or the embedded rules.
func (r *rulesFlags) engine() (*law.Engine, error) {
	if *r.path == "" {
		if len(r.keys) > 0 {
			return nil, &law.InputError{Field: "--rules-key", Message: "given without --rules"}
		}
		return law.New()
	}
	l, err := law.Load(*r.path, r.keys)
	if err != nil {
		return nil, err
	}
	return l.Engine, nil
}

// rulesCheck implements `domicile rules check [--key KEY]... PATH`: load
// and type-check a rule set, verify its signature when keys are given (a
// bundle always needs one), and print what it changes against the
// embedded rules. It exits 1 when the rule set is refused.
func rulesCheck(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "rules check")
	var keys keyList
	fs.Var(&keys, "key", "verifier `KEY` the rule set must be signed by (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "usage: domicile rules check [--key KEY]... PATH")
		return errUsage
	}
	l, err := law.Load(fs.Arg(0), keys)
	if err != nil {
		return err
	}
	base, err := law.New()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	rs := l.Engine.RuleSet()
	fmt.Fprintf(&b, "rules %s: version %s, digest %s, %d rules, ", l.Path, rs.Version, rs.Digest, len(l.Engine.Rules()))
	if l.Signer != "" {
		fmt.Fprintf(&b, "signed by %s\n", l.Signer)
	} else {
		fmt.Fprintf(&b, "unsigned (a draft: serve and bundles need a signature)\n")
	}
	fmt.Fprintf(&b, "against the embedded rules %s:\n", base.RuleSet())
	diff := diffRules(base, l.Engine)
	if len(diff) == 0 {
		fmt.Fprintf(&b, "  no change\n")
	}
	for _, d := range diff {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	_, err = env.Stdout.Write(b.Bytes())
	return err
}

// diffRules lists what b changes against a: rules added, removed and
// changed (with the fields), facts and derived predicates added, removed
// and changed.
func diffRules(a, b *law.Engine) []string {
	var out []string
	ar, br := map[string]law.Rule{}, map[string]law.Rule{}
	for _, r := range a.Rules() {
		ar[r.ID] = r
	}
	for _, r := range b.Rules() {
		br[r.ID] = r
	}
	for _, r := range b.Rules() {
		old, ok := ar[r.ID]
		if !ok {
			out = append(out, fmt.Sprintf("rule %s added (%s, %s)", r.ID, r.Citation(), r.Document))
			continue
		}
		if f := ruleFieldsChanged(old, r); len(f) > 0 {
			out = append(out, fmt.Sprintf("rule %s changed: %s", r.ID, strings.Join(f, ", ")))
		}
	}
	for _, r := range a.Rules() {
		if _, ok := br[r.ID]; !ok {
			out = append(out, fmt.Sprintf("rule %s removed", r.ID))
		}
	}
	af, bf := map[string]law.FactDef{}, map[string]law.FactDef{}
	for _, f := range a.Vocabulary().Facts {
		af[f.Name] = f
	}
	for _, f := range b.Vocabulary().Facts {
		bf[f.Name] = f
		old, ok := af[f.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("fact %s added (%s)", f.Name, f.Type))
		case old.Type != f.Type || fmt.Sprint(old.Default) != fmt.Sprint(f.Default) || !slices.Equal(old.Values, f.Values):
			out = append(out, fmt.Sprintf("fact %s changed (type, default or values)", f.Name))
		}
	}
	for _, f := range a.Vocabulary().Facts {
		if _, ok := bf[f.Name]; !ok {
			out = append(out, fmt.Sprintf("fact %s removed", f.Name))
		}
	}
	ad := map[string]string{}
	for _, d := range a.Vocabulary().Derived {
		ad[d.Name] = fmt.Sprint(d.Versions)
	}
	seen := map[string]bool{}
	for _, d := range b.Vocabulary().Derived {
		seen[d.Name] = true
		old, ok := ad[d.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("derived predicate %s added", d.Name))
		case old != fmt.Sprint(d.Versions):
			out = append(out, fmt.Sprintf("derived predicate %s changed", d.Name))
		}
	}
	var gone []string
	for n := range ad {
		if !seen[n] {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	for _, n := range gone {
		out = append(out, fmt.Sprintf("derived predicate %s removed", n))
	}
	return out
}

func ruleFieldsChanged(a, b law.Rule) []string {
	var f []string
	add := func(name string, changed bool) {
		if changed {
			f = append(f, name)
		}
	}
	add("jurisdiction", a.Jurisdiction != b.Jurisdiction)
	add("instrument", a.Instrument != b.Instrument)
	add("article", a.Article != b.Article)
	add("effective_from", a.EffectiveFrom != b.EffectiveFrom)
	add("effective_until", a.EffectiveUntil != b.EffectiveUntil)
	add("condition", a.Condition != b.Condition)
	add("consequence", a.Consequence != b.Consequence)
	add("mechanism", a.Effects.Mechanism != b.Effects.Mechanism)
	add("obligations", !slices.Equal(a.Effects.Obligations, b.Effects.Obligations))
	add("deadline", a.Deadline != b.Deadline)
	add("penalty", a.Penalty != b.Penalty)
	add("confidence", a.Confidence != b.Confidence)
	add("sources", !slices.Equal(a.Sources, b.Sources))
	add("note", a.Note != b.Note)
	return f
}

// rulesExport implements `domicile rules export DIR`: write the embedded
// rule set as a directory, the starting point of counsel's update.
func rulesExport(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "rules export")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "usage: domicile rules export DIR")
		return errUsage
	}
	dir := fs.Arg(0)
	if _, err := os.Stat(filepath.Join(dir, "vocabulary.yaml")); err == nil {
		return fmt.Errorf("%s already holds a rule set", dir)
	}
	files, err := law.EmbeddedFiles()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		return err
	}
	for n, b := range files {
		if err := writeFileAtomic(filepath.Join(dir, filepath.FromSlash(n)), b); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "wrote %d files of the embedded rules to %s\n", len(files), dir)
	return nil
}

// rulesKeygen implements `domicile rules keygen --out SIGNERFILE NAME`:
// a signing key for rule bundles (written 0600) and, on standard output,
// its verifier key for the deployment's rules.keys.
func rulesKeygen(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "rules keygen")
	out := fs.String("out", "", "write the signer key to `FILE` (created, mode 0600)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		fmt.Fprintln(fs.Output(), "usage: domicile rules keygen --out SIGNERFILE NAME")
		return errUsage
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("keygen: %v", err)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(skey + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	fmt.Fprintln(env.Stdout, vkey)
	return nil
}

// rulesBundle implements `domicile rules bundle --key SIGNERFILE --out FILE
// DIR`: check the rule directory, sign its digest and write the bundle.
func rulesBundle(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "rules bundle")
	keyFile := fs.String("key", "", "signer key `FILE` (from rules keygen)")
	out := fs.String("out", "", "write the bundle to `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *keyFile == "" || *out == "" {
		fmt.Fprintln(fs.Output(), "usage: domicile rules bundle --key SIGNERFILE --out FILE DIR")
		return errUsage
	}
	skey, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	l, err := law.Load(fs.Arg(0), nil)
	if err != nil {
		return err
	}
	sig, err := law.Sign(l.Engine.RuleSet(), string(skey))
	if err != nil {
		return err
	}
	files := map[string][]byte{law.SignatureFile: sig}
	for n, b := range l.Engine.Files() {
		files[n] = b
	}
	var buf bytes.Buffer
	if err := law.WriteBundle(&buf, files); err != nil {
		return err
	}
	if err := writeFileAtomic(*out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "bundle %s: rules %s, signed by %s\n", *out, l.Engine.RuleSet(), strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(skey)), "PRIVATE+KEY+"), "+", 2)[0])
	return nil
}
