package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// scope says which references and functions an expression may use.
type scope struct {
	// noRefs forbids every reference (variable defaults).
	noRefs bool
	// onlyVar, when set, is the one variable a validation may refer to.
	onlyVar string
	// env allows the env function (variable defaults only).
	env bool
}

var funcNames = func() []string {
	var names []string
	for n := range functions("", nil) {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

var funcSet = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range funcNames {
		m[n] = true
	}
	return m
}()

var refRoots = []string{"var", "local", "environment", "target", "publish", "path"}

// checkExpr finds the references in expr and validates them and the
// function calls statically. ok is false when anything was reported, in
// which case the expression must not be evaluated: evaluating it would only
// repeat the same problem in HCL's words.
func (d *decoder) checkExpr(expr hcl.Expression, sc scope) (refs []Reference, ok bool) {
	ok = true
	if expr == nil {
		return nil, true
	}
	if node, isNode := expr.(hclsyntax.Node); isNode {
		hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
			call, isCall := n.(*hclsyntax.FunctionCallExpr)
			if !isCall {
				return nil
			}
			switch {
			case call.Name == "env" && !sc.env:
				ok = false
				d.errorf(call.NameRange.Ptr(), "Function env only allowed in variable defaults",
					"The env function can only be called in the default of a variable block, so that every outside input is a declared variable. Declare a variable with default = env(\"NAME\") and refer to it here as var.<name>.")
			case !funcSet[call.Name]:
				ok = false
				d.errorf(call.NameRange.Ptr(), "Call to unknown function",
					"There is no function named %q.%s Check the spelling; clock, random and provider functions do not exist in sparkenv so that configuration always evaluates the same way.",
					call.Name, didYouMean(call.Name, funcNames))
			}
			return nil
		})
	}
	for _, tr := range expr.Variables() {
		if len(tr) == 0 {
			continue
		}
		if sc.noRefs {
			ok = false
			r := tr.SourceRange()
			d.errorf(&r, "Reference in variable default",
				"A variable default cannot refer to %s, because defaults are fixed before anything else is evaluated. Use a literal value here, and derive values in a locals block instead.",
				traversalString(tr))
			continue
		}
		ref, diag := d.resolveTraversal(tr)
		if diag != nil {
			ok = false
			d.add(diag)
			continue
		}
		if sc.onlyVar != "" && ref.Address != "var."+sc.onlyVar {
			ok = false
			d.errorf(ref.Range.Ptr(), "Invalid reference in variable validation",
				"A validation condition can only refer to the variable it validates, var.%s; %s cannot be used here. Move checks that involve other values elsewhere.",
				sc.onlyVar, ref.Address)
			continue
		}
		refs = append(refs, ref)
	}
	return refs, ok
}

func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, s := range tr {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.IsKnown() && !s.Key.IsNull() && s.Key.Type() == cty.String {
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			} else {
				b.WriteString("[...]")
			}
		default:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

// resolveTraversal turns a traversal into a declared address, or a
// diagnostic saying why it is not one.
func (d *decoder) resolveTraversal(tr hcl.Traversal) (Reference, *hcl.Diagnostic) {
	root := tr.RootName()
	step := func(i int) (string, bool) {
		if i >= len(tr) {
			return "", false
		}
		switch s := tr[i].(type) {
		case hcl.TraverseAttr:
			return s.Name, true
		case hcl.TraverseIndex:
			if s.Key.IsKnown() && !s.Key.IsNull() && s.Key.Type() == cty.String {
				return s.Key.AsString(), true
			}
		}
		return "", false
	}
	span := func(n int) hcl.Range {
		if n > len(tr) {
			n = len(tr)
		}
		return hcl.RangeBetween(tr[0].SourceRange(), tr[n-1].SourceRange())
	}
	invalid := func(detail string, args ...any) *hcl.Diagnostic {
		r := tr.SourceRange()
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference", Detail: fmt.Sprintf(detail, args...), Subject: &r}
	}
	undeclared := func(what, addr string, n int, detail string) *hcl.Diagnostic {
		r := span(n)
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to undeclared " + what, Detail: detail, Subject: &r}
	}
	switch root {
	case "var":
		name, ok := step(1)
		if !ok {
			return Reference{}, invalid("A reference to an input variable needs a name, like var.region.")
		}
		addr := "var." + name
		if _, ok := d.c.Variables[name]; !ok && !d.c.broken[addr] {
			return Reference{}, undeclared("input variable", addr, 2, fmt.Sprintf(
				"There is no variable named %q.%s Declare it with a variable %q block, or correct the name.",
				name, didYouMean(name, mapKeys(d.c.Variables)), name))
		}
		return Reference{Address: addr, Range: span(2)}, nil
	case "local":
		name, ok := step(1)
		if !ok {
			return Reference{}, invalid("A reference to a local value needs a name, like local.prefix.")
		}
		addr := "local." + name
		if _, ok := d.c.Locals[name]; !ok {
			return Reference{}, undeclared("local value", addr, 2, fmt.Sprintf(
				"There is no local value named %q.%s Define it in a locals block, or correct the name.",
				name, didYouMean(name, mapKeys(d.c.Locals))))
		}
		return Reference{Address: addr, Range: span(2)}, nil
	case "environment":
		name, ok := step(1)
		if !ok {
			return Reference{}, invalid("A reference to an environment needs a name, like environment.ml.")
		}
		addr := "environment." + name
		if _, ok := d.declared[addr]; !ok && !d.c.broken[addr] {
			return Reference{}, undeclared("environment", addr, 2, fmt.Sprintf(
				"There is no environment %q.%s Declare it with an environment %q block, or correct the name.",
				name, d.suggestAddr(addr, "environment."), name))
		}
		return Reference{Address: addr, Range: span(2)}, nil
	case "target", "publish":
		kind, ok1 := step(1)
		name, ok2 := step(2)
		if !ok1 || !ok2 {
			return Reference{}, invalid("A reference to a %s needs a kind and a name, like %s.", root,
				map[string]string{"target": "target.conda_pack.ml", "publish": "publish.s3.prod"}[root])
		}
		addr := root + "." + kind + "." + name
		if _, ok := d.declared[addr]; !ok && !d.c.broken[addr] {
			return Reference{}, undeclared(root, addr, 3, fmt.Sprintf(
				"There is no %s %q %q.%s Declare it with a %s %q %q block, or correct the reference.",
				root, kind, name, d.suggestAddr(addr, root+"."), root, kind, name))
		}
		return Reference{Address: addr, Range: span(3)}, nil
	case "path":
		name, ok := step(1)
		if !ok || name != "root" {
			return Reference{}, invalid("The only path value is path.root, the directory sparkenv runs in.")
		}
		return Reference{Address: "path.root", Range: span(2)}, nil
	}
	return Reference{}, invalid("%q is not something that can be referred to.%s References start with var., local., environment., target., publish. or path.root.",
		root, didYouMean(root, refRoots))
}

func (d *decoder) suggestAddr(addr, prefix string) string {
	var cands []string
	for a := range d.declared {
		if strings.HasPrefix(a, prefix) {
			cands = append(cands, a)
		}
	}
	sort.Strings(cands)
	return didYouMean(addr, cands)
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// walkBody calls fn for every attribute of body and of its nested blocks, in
// source order.
func walkBody(body *hclsyntax.Body, fn func(*hclsyntax.Attribute)) {
	if body == nil {
		return
	}
	for _, a := range sortedAttrs(body.Attributes) {
		fn(a)
	}
	for _, b := range body.Blocks {
		walkBody(b.Body, fn)
	}
}

func (c *Config) rangeLess(a, b hcl.Range) bool {
	ra, oka := c.fileOrder[a.Filename]
	rb, okb := c.fileOrder[b.Filename]
	if oka != okb {
		return oka
	}
	if ra != rb {
		return ra < rb
	}
	if a.Filename != b.Filename {
		return a.Filename < b.Filename
	}
	return a.Start.Byte < b.Start.Byte
}

// finishRefs adds what referenced locals refer to (with the range of the
// local's reference, since that is where the edge comes from), sorts by
// address then position and keeps the first reference to each address.
func (c *Config) finishRefs(refs []Reference) []Reference {
	var all []Reference
	for _, r := range refs {
		all = append(all, r)
		if !strings.HasPrefix(r.Address, "local.") {
			continue
		}
		seen := map[string]bool{}
		queue := []string{r.Address}
		for len(queue) > 0 {
			l := queue[0]
			queue = queue[1:]
			if seen[l] {
				continue
			}
			seen[l] = true
			for _, lr := range c.localRefs[strings.TrimPrefix(l, "local.")] {
				all = append(all, Reference{Address: lr.Address, Range: r.Range})
				if strings.HasPrefix(lr.Address, "local.") {
					queue = append(queue, lr.Address)
				}
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Address != all[j].Address {
			return all[i].Address < all[j].Address
		}
		return c.rangeLess(all[i].Range, all[j].Range)
	})
	var out []Reference
	for _, r := range all {
		if len(out) > 0 && out[len(out)-1].Address == r.Address {
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
