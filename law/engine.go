package law

import (
	"fmt"
	"io/fs"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Engine holds the compiled rules. It is immutable after [New] and safe for
// concurrent use.
type Engine struct {
	vocab    *Vocabulary
	factDefs map[string]*FactDef
	defaults map[string]ref.Val
	env      *cel.Env
	derived  []*compiledDerived
	rules    []*compiledRule
	byID     map[string]*compiledRule
	mechRank map[string]int
	oblRank  map[string]int
	ruleSet  RuleSetRef
	files    map[string][]byte
}

type compiledVersion struct {
	DerivedVersion
	ast *cel.Ast
	prg cel.Program
}

type compiledDerived struct {
	def      *Derived
	index    int
	versions []*compiledVersion
}

type compiledRule struct {
	Rule
	index int
	ast   *cel.Ast
	prg   cel.Program
}

// New loads the embedded vocabulary and rule documents, type-checks every
// condition and derived predicate against the fact vocabulary, and compiles
// them. An error means the embedded documents are broken.
func New() (*Engine, error) {
	return newEngine(vocabularyYAML, ruleFS)
}

func newEngine(vocabData []byte, rules fs.FS) (*Engine, error) {
	files, err := ruleFiles(vocabData, rules)
	if err != nil {
		return nil, err
	}
	return newEngineFiles(files)
}

// newEngineFiles builds an engine from a rule set's files by path:
// vocabulary.yaml and rules/*.yaml.
func newEngineFiles(files map[string][]byte) (*Engine, error) {
	v, err := loadVocabulary(files["vocabulary.yaml"])
	if err != nil {
		return nil, err
	}
	e := &Engine{vocab: v, factDefs: map[string]*FactDef{}, defaults: map[string]ref.Val{},
		byID: map[string]*compiledRule{}, mechRank: map[string]int{}, oblRank: map[string]int{},
		ruleSet: RuleSetRef{Version: v.Version, Digest: digestFiles(files)}, files: files}
	for i, m := range v.Effects.Mechanisms {
		e.mechRank[m] = i
	}
	for i, o := range v.Effects.Obligations {
		e.oblRank[o] = i
	}
	var opts []cel.EnvOption
	for i := range v.Facts {
		f := &v.Facts[i]
		e.factDefs[f.Name] = f
		e.defaults[f.Name] = types.DefaultTypeAdapter.NativeToValue(f.Default)
		t := cel.StringType
		switch f.Type {
		case TypeBool:
			t = cel.BoolType
		case TypeInt:
			t = cel.IntType
		}
		opts = append(opts, cel.Variable(f.Name, t))
	}
	declared := map[string]bool{}
	for _, d := range v.Derived {
		opts = append(opts, cel.Variable(d.Name, cel.BoolType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("law: cel environment: %v", err)
	}
	e.env = env
	derivedNames := map[string]bool{}
	for _, d := range v.Derived {
		derivedNames[d.Name] = true
	}
	for i := range v.Derived {
		d := &v.Derived[i]
		cd := &compiledDerived{def: d, index: i}
		for j, dv := range d.Versions {
			ast, prg, err := e.compile(dv.Expr)
			if err != nil {
				return nil, fmt.Errorf("law: derived %s version %d: %v", d.Name, j, err)
			}
			// A predicate may use only facts and predicates defined above it.
			for _, id := range identifiers(ast) {
				if derivedNames[id] && !declared[id] {
					return nil, fmt.Errorf("law: derived %s uses %s before it is defined", d.Name, id)
				}
			}
			cd.versions = append(cd.versions, &compiledVersion{DerivedVersion: dv, ast: ast, prg: prg})
		}
		declared[d.Name] = true
		e.derived = append(e.derived, cd)
	}
	rs, err := loadRules(files, v)
	if err != nil {
		return nil, err
	}
	for i, r := range rs {
		ast, prg, err := e.compile(r.Condition)
		if err != nil {
			return nil, fmt.Errorf("law: %s: rule %s: condition: %v", r.Document, r.ID, err)
		}
		cr := &compiledRule{Rule: r, index: i, ast: ast, prg: prg}
		e.rules = append(e.rules, cr)
		e.byID[r.ID] = cr
	}
	for _, t := range v.Thresholds {
		if _, ok := e.factDefs[t.Fact]; !ok {
			return nil, fmt.Errorf("law: vocabulary: threshold names unknown fact %s", t.Fact)
		}
	}
	return e, nil
}

// compile type-checks expr; it must be a bool expression over declared names.
func (e *Engine) compile(expr string) (*cel.Ast, cel.Program, error) {
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		return nil, nil, iss.Err()
	}
	if ast.OutputType() != cel.BoolType {
		return nil, nil, fmt.Errorf("expression %q has type %v, want bool", expr, ast.OutputType())
	}
	prg, err := e.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, nil, err
	}
	return ast, prg, nil
}

// Vocabulary returns the vocabulary the rules are written in. The caller
// must not modify it.
func (e *Engine) Vocabulary() *Vocabulary { return e.vocab }

// Thresholds returns the vocabulary's volume thresholds that bind data
// leaving jurisdiction (a source_jurisdiction value: "CN", "EU"): those
// whose rule is that jurisdiction's. A threshold whose rule is not in the
// rule set binds no one.
func (e *Engine) Thresholds(jurisdiction string) []Threshold {
	var out []Threshold
	for _, t := range e.vocab.Thresholds {
		if r, ok := e.byID[t.Rule]; ok && r.Jurisdiction == jurisdiction {
			out = append(out, t)
		}
	}
	return out
}

// Rules returns a copy of every rule, in document order.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.Rule
	}
	return out
}

// Rule returns the rule with the given id.
func (e *Engine) Rule(id string) (Rule, bool) {
	r, ok := e.byID[id]
	if !ok {
		return Rule{}, false
	}
	return r.Rule, true
}

// activation resolves names for CEL: derived values, then declared facts,
// then defaults.
type activation struct {
	e        *Engine
	declared Facts
	derived  map[string]bool
}

func (a *activation) ResolveName(name string) (any, bool) {
	if v, ok := a.derived[name]; ok {
		return types.Bool(v), true
	}
	if v, ok := a.declared[name]; ok {
		return v, true
	}
	if v, ok := a.e.defaults[name]; ok {
		return v, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// evaluation is the raw outcome of evaluating every rule on one day.
type evaluation struct {
	date     string
	facts    Facts // declared facts
	act      *activation
	versions []int // per derived predicate: index of the version in force, or -1
	fired    []*compiledRule
	dated    []*compiledRule // out of force, condition true
}

func evalBool(prg cel.Program, act interpreter.Activation) (bool, error) {
	out, _, err := prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("non-boolean result %v", out)
	}
	return b, nil
}

// evaluate runs every derived predicate and rule for validated facts f on date.
func (e *Engine) evaluate(f Facts, date string) (*evaluation, error) {
	ev := &evaluation{date: date, facts: f, versions: make([]int, len(e.derived))}
	ev.act = &activation{e: e, declared: f, derived: make(map[string]bool, len(e.derived))}
	for i, d := range e.derived {
		ev.versions[i] = -1
		val := false
		for j, v := range d.versions {
			if inForce(date, v.EffectiveFrom, v.EffectiveUntil) {
				b, err := evalBool(v.prg, ev.act)
				if err != nil {
					return nil, fmt.Errorf("law: derived %s: %v", d.def.Name, err)
				}
				val, ev.versions[i] = b, j
				break
			}
		}
		ev.act.derived[d.def.Name] = val
	}
	for _, r := range e.rules {
		b, err := evalBool(r.prg, ev.act)
		if err != nil {
			return nil, fmt.Errorf("law: rule %s: %v", r.ID, err)
		}
		if !b {
			continue
		}
		if inForce(date, r.EffectiveFrom, r.EffectiveUntil) {
			ev.fired = append(ev.fired, r)
		} else {
			ev.dated = append(ev.dated, r)
		}
	}
	return ev, nil
}

// value returns the value of a fact or derived predicate in ev.
func (ev *evaluation) value(name string) (any, bool) {
	v, ok := ev.act.ResolveName(name)
	if !ok {
		return nil, false
	}
	if rv, ok := v.(ref.Val); ok {
		return rv.Value(), true
	}
	return v, true
}

// Decide evaluates one set of facts as of asOf (its calendar day in asOf's
// location) and returns the report. The transfer gateway calls it with
// counts taken from its own ledger. Bad facts give an *InputError.
func (e *Engine) Decide(f Facts, asOf time.Time) (*Report, error) {
	nf, warns, err := e.ValidateFacts(f)
	if err != nil {
		return nil, err
	}
	return e.decide(nf, dateOf(asOf), warns)
}

func (e *Engine) decide(f Facts, date string, warns []Warning) (*Report, error) {
	ev, err := e.evaluate(f, date)
	if err != nil {
		return nil, err
	}
	rep := e.newReport(date, "facts")
	rep.Facts = f
	rep.Warnings = append(rep.Warnings, warns...)
	e.fill(rep, []*evaluation{ev}, nil)
	return rep, nil
}
