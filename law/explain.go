package law

import (
	"fmt"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types/ref"
	celparser "cel.dev/cel-go/parser"
)

// Explanation says why a rule fired or did not, fact by fact.
type Explanation struct {
	Rule           string         `json:"rule"`
	Citation       string         `json:"citation"`
	AsOf           string         `json:"as_of"`
	Flow           string         `json:"flow,omitempty"` // inventory: the flow explained
	Fired          bool           `json:"fired"`
	InForce        bool           `json:"in_force"`
	EffectiveFrom  string         `json:"effective_from"`
	EffectiveUntil string         `json:"effective_until,omitempty"`
	ConditionHeld  bool           `json:"condition_held"`
	Summary        string         `json:"summary"`
	Condition      *Term          `json:"condition"`
	Explanations   []*Explanation `json:"flows,omitempty"` // inventory: one per flow
}

// Term is one node of a condition with the value it had.
type Term struct {
	Expr string `json:"expr"`
	// Kind is "all" (&&), "any" (||), "not", "test" (a comparison or
	// membership), "fact" or "derived".
	Kind  string `json:"kind"`
	Value any    `json:"value"`
	// Source of a fact's value: "declared" or "default".
	Source string `json:"source,omitempty"`
	// Version of a derived predicate used on the date, or "not in force".
	Version  string  `json:"version,omitempty"`
	Children []*Term `json:"children,omitempty"`
}

// Explain evaluates in as of asOf (or the input's as_of) and explains rule
// ruleID. For an inventory it explains the rule for each flow.
func (e *Engine) Explain(in *Input, asOf time.Time, ruleID string) (*Explanation, error) {
	r, ok := e.byID[ruleID]
	if !ok {
		return nil, inputErr("explain", "unknown rule %q", ruleID)
	}
	date, err := in.date(asOf)
	if err != nil {
		return nil, err
	}
	if in.Kind == KindFacts {
		ev, err := e.evaluate(in.Facts, date)
		if err != nil {
			return nil, err
		}
		return e.explain(r, ev)
	}
	ie, err := e.evaluateInventory(in.Inventory, date)
	if err != nil {
		return nil, err
	}
	evs := ie.evs
	top := &Explanation{Rule: r.ID, Citation: r.Citation(), AsOf: date, InForce: inForce(date, r.EffectiveFrom, r.EffectiveUntil),
		EffectiveFrom: r.EffectiveFrom, EffectiveUntil: r.EffectiveUntil}
	for i, ev := range evs {
		x, err := e.explain(r, ev)
		if err != nil {
			return nil, err
		}
		x.Flow = ie.tags[i].label
		top.Fired = top.Fired || x.Fired
		top.ConditionHeld = top.ConditionHeld || x.ConditionHeld
		top.Explanations = append(top.Explanations, x)
	}
	top.Summary = summary(top)
	return top, nil
}

// ExplainFacts explains rule ruleID for declared facts as of asOf.
func (e *Engine) ExplainFacts(f Facts, asOf time.Time, ruleID string) (*Explanation, error) {
	nf, _, err := e.ValidateFacts(f)
	if err != nil {
		return nil, err
	}
	return e.Explain(&Input{Kind: KindFacts, Facts: nf}, asOf, ruleID)
}

func summary(x *Explanation) string {
	switch {
	case x.Fired:
		return fmt.Sprintf("%s fired as of %s: its condition held and it is in force.", x.Rule, x.AsOf)
	case x.ConditionHeld && x.EffectiveFrom > x.AsOf:
		return fmt.Sprintf("%s did not fire: its condition held, but it takes effect only on %s.", x.Rule, x.EffectiveFrom)
	case x.ConditionHeld:
		return fmt.Sprintf("%s did not fire: its condition held, but it ceased to apply after %s.", x.Rule, x.EffectiveUntil)
	case !x.InForce:
		return fmt.Sprintf("%s did not fire: its condition did not hold, and it is not in force on %s.", x.Rule, x.AsOf)
	default:
		return fmt.Sprintf("%s did not fire: its condition did not hold as of %s.", x.Rule, x.AsOf)
	}
}

func (e *Engine) explain(r *compiledRule, ev *evaluation) (*Explanation, error) {
	x := &Explanation{Rule: r.ID, Citation: r.Citation(), AsOf: ev.date,
		InForce: inForce(ev.date, r.EffectiveFrom, r.EffectiveUntil), EffectiveFrom: r.EffectiveFrom, EffectiveUntil: r.EffectiveUntil}
	expanded := map[string]bool{}
	t, err := e.term(r.ast, ev, expanded, 0)
	if err != nil {
		return nil, err
	}
	x.Condition = t
	x.ConditionHeld = t.Value == true
	x.Fired = x.ConditionHeld && x.InForce
	x.Summary = summary(x)
	return x, nil
}

// term evaluates a checked expression exhaustively and turns it into a tree.
func (e *Engine) term(a *cel.Ast, ev *evaluation, expanded map[string]bool, depth int) (*Term, error) {
	prg, err := e.env.Program(a, cel.EvalOptions(cel.OptExhaustiveEval, cel.OptTrackState))
	if err != nil {
		return nil, fmt.Errorf("law: explain: %v", err)
	}
	_, det, err := prg.Eval(ev.act)
	if err != nil {
		return nil, fmt.Errorf("law: explain: %v", err)
	}
	native := a.NativeRep()
	return e.node(native.Expr(), native.SourceInfo(), det.State(), ev, expanded, depth)
}

type stateReader interface {
	Value(int64) (ref.Val, bool)
}

func (e *Engine) node(x celast.Expr, info *celast.SourceInfo, st stateReader, ev *evaluation, expanded map[string]bool, depth int) (*Term, error) {
	text, err := celparser.Unparse(x, info)
	if err != nil {
		text = "?"
	}
	t := &Term{Expr: text}
	if v, ok := st.Value(x.ID()); ok {
		t.Value = v.Value()
	}
	switch x.Kind() {
	case celast.IdentKind:
		name := x.AsIdent()
		if d := e.derivedByName(name); d != nil {
			t.Kind = "derived"
			j := ev.versions[d.index]
			if j < 0 {
				t.Version = "not in force"
				return t, nil
			}
			v := d.versions[j]
			t.Version = v.Label
			if expanded[name] || depth > 8 {
				return t, nil // explained above
			}
			expanded[name] = true
			sub, err := e.term(v.ast, ev, expanded, depth+1)
			if err != nil {
				return nil, err
			}
			t.Children = []*Term{sub}
			return t, nil
		}
		t.Kind = "fact"
		t.Source = "default"
		if _, ok := ev.facts[name]; ok {
			t.Source = "declared"
		}
		return t, nil
	case celast.CallKind:
		call := x.AsCall()
		switch call.FunctionName() {
		case operators.LogicalAnd, operators.LogicalOr:
			t.Kind = "all"
			if call.FunctionName() == operators.LogicalOr {
				t.Kind = "any"
			}
			for _, arg := range flatten(x, call.FunctionName()) {
				c, err := e.node(arg, info, st, ev, expanded, depth)
				if err != nil {
					return nil, err
				}
				t.Children = append(t.Children, c)
			}
			return t, nil
		case operators.LogicalNot:
			t.Kind = "not"
			c, err := e.node(call.Args()[0], info, st, ev, expanded, depth)
			if err != nil {
				return nil, err
			}
			t.Children = []*Term{c}
			return t, nil
		}
		t.Kind = "test"
		// Show the facts a comparison reads.
		for _, id := range identsOf(x) {
			c := &Term{Expr: id}
			if v, ok := ev.value(id); ok {
				c.Value = v
			}
			if d := e.derivedByName(id); d != nil {
				c.Kind = "derived"
			} else {
				c.Kind, c.Source = "fact", "default"
				if _, ok := ev.facts[id]; ok {
					c.Source = "declared"
				}
			}
			t.Children = append(t.Children, c)
		}
		return t, nil
	}
	t.Kind = "test"
	return t, nil
}

// flatten lists the operands of a chain of the same logical operator.
func flatten(x celast.Expr, fn string) []celast.Expr {
	if x.Kind() != celast.CallKind || x.AsCall().FunctionName() != fn {
		return []celast.Expr{x}
	}
	var out []celast.Expr
	for _, a := range x.AsCall().Args() {
		out = append(out, flatten(a, fn)...)
	}
	return out
}

func (e *Engine) derivedByName(name string) *compiledDerived {
	for _, d := range e.derived {
		if d.def.Name == name {
			return d
		}
	}
	return nil
}

// identsOf lists the identifiers an expression reads, in order, once each.
func identsOf(x celast.Expr) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(celast.Expr)
	walk = func(x celast.Expr) {
		switch x.Kind() {
		case celast.IdentKind:
			if n := x.AsIdent(); !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		case celast.CallKind:
			c := x.AsCall()
			if c.IsMemberFunction() {
				walk(c.Target())
			}
			for _, a := range c.Args() {
				walk(a)
			}
		case celast.ListKind:
			for _, el := range x.AsList().Elements() {
				walk(el)
			}
		}
	}
	walk(x)
	return out
}

// identifiers lists the identifiers a compiled expression reads.
func identifiers(a *cel.Ast) []string {
	return identsOf(a.NativeRep().Expr())
}
