package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func (d *decoder) declareLocals(b *hclsyntax.Block, f *fileBody) {
	for _, nb := range b.Body.Blocks {
		d.errorf(nb.TypeRange.Ptr(), "Unexpected block in locals",
			"A locals block holds only name = value arguments; %q blocks are not allowed inside it.", nb.Type)
	}
	for _, attr := range sortedAttrs(b.Body.Attributes) {
		if prev, ok := d.c.Locals[attr.Name]; ok {
			d.errorf(attr.NameRange.Ptr(), "Duplicate local value",
				"A local value named %q was already defined at %s. Local value names must be unique across all locals blocks; rename or remove one of them.",
				attr.Name, posString(prev.DeclRange))
			continue
		}
		l := &Local{Name: attr.Name, Expr: attr.Expr, Value: cty.DynamicVal, DeclRange: attr.SrcRange}
		d.c.Locals[attr.Name] = l
		d.locals = append(d.locals, &pendingLocal{l: l, attr: attr, file: f})
	}
}

// decodeLocals evaluates locals in dependency order, whatever order they
// were written in. Each cycle is reported once, naming all its members.
func (d *decoder) decodeLocals() {
	n := len(d.locals)
	index := map[string]int{}
	for i, p := range d.locals {
		index[p.l.Name] = i
	}
	refs := make([][]Reference, n)
	ok := make([]bool, n)
	edges := make([][]int, n)
	for i, p := range d.locals {
		refs[i], ok[i] = d.checkExpr(p.attr.Expr, scope{})
		d.c.localRefs[p.l.Name] = refs[i]
		seen := map[int]bool{}
		for _, r := range refs[i] {
			if name, isLocal := strings.CutPrefix(r.Address, "local."); isLocal {
				if j, found := index[name]; found && !seen[j] {
					seen[j] = true
					edges[i] = append(edges[i], j)
				}
			}
		}
	}
	for _, scc := range tarjan(n, edges) {
		if len(scc) > 1 || hasSelfLoop(scc[0], edges) {
			d.reportCycle(scc, edges)
			continue // members stay unknown, so dependents evaluate quietly to unknown
		}
		i := scc[0]
		if !ok[i] {
			continue
		}
		p := d.locals[i]
		val, diags := p.attr.Expr.Value(d.evalContext(p.file.baseDir, refs[i]))
		d.add(diags...)
		if diags.HasErrors() {
			continue
		}
		p.l.Value = val
	}
}

func hasSelfLoop(i int, edges [][]int) bool {
	for _, j := range edges[i] {
		if j == i {
			return true
		}
	}
	return false
}

// tarjan returns the strongly connected components of the graph. A
// component is returned only after every component it depends on, which is
// the order in which locals can be evaluated. Iterative, so that long chains
// of locals cannot exhaust the stack.
func tarjan(n int, edges [][]int) [][]int {
	idx := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range idx {
		idx[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	type frame struct{ v, e int }
	for root := 0; root < n; root++ {
		if idx[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		idx[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			top := &call[len(call)-1]
			v := top.v
			if top.e < len(edges[v]) {
				w := edges[v][top.e]
				top.e++
				if idx[w] < 0 {
					idx[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] && idx[w] < low[v] {
					low[v] = idx[w]
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				if low[v] < low[u] {
					low[u] = low[v]
				}
			}
			if low[v] == idx[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				out = append(out, comp)
			}
		}
	}
	return out
}

func (d *decoder) reportCycle(scc []int, edges [][]int) {
	in := map[int]bool{}
	start := scc[0]
	for _, i := range scc {
		in[i] = true
		if i < start { // locals are indexed in source order
			start = i
		}
	}
	// Follow edges from the first-written member until we get back to it;
	// the component is strongly connected, so a path exists.
	path := []int{start}
	visited := map[int]bool{start: true}
	var found bool
	var dfs func(v int)
	dfs = func(v int) {
		for _, w := range edges[v] {
			if found || !in[w] {
				continue
			}
			if w == start {
				found = true
				return
			}
			if visited[w] {
				continue
			}
			visited[w] = true
			path = append(path, w)
			dfs(w)
			if found {
				return
			}
			path = path[:len(path)-1]
		}
	}
	dfs(start)
	names := make([]string, 0, len(path)+1)
	onPath := map[int]bool{}
	for _, i := range path {
		names = append(names, "local."+d.locals[i].l.Name)
		onPath[i] = true
	}
	names = append(names, "local."+d.locals[start].l.Name)
	var others []string
	for _, i := range sortedInts(scc) {
		if !onPath[i] {
			others = append(others, "local."+d.locals[i].l.Name)
		}
	}
	also := ""
	if len(others) > 0 {
		also = fmt.Sprintf(" The cycle also involves %s.", strings.Join(others, ", "))
	}
	r := d.locals[start].l.DeclRange
	d.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Cycle in local values",
		Detail: fmt.Sprintf("These local values refer to each other in a cycle: %s.%s Break the cycle by removing one of these references.",
			strings.Join(names, " → "), also),
		Subject: &r,
	})
}

func sortedInts(s []int) []int {
	out := append([]int(nil), s...)
	sort.Ints(out)
	return out
}
