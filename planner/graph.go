package planner

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/publishers"
	"github.com/sparkenv/sparkenv/spec"
)

// Class says what a node is.
type Class string

const (
	ClassEnvironment Class = "environment"
	ClassTarget      Class = "target"
	ClassPublish     Class = "publish"
)

// Node is one action of the graph.
type Node struct {
	Address   string
	Class     Class
	Kind      string // target or publish kind; "environment" for environments
	Name      string
	Deps      []string // addresses, sorted
	DeclRange hcl.Range
	BaseDir   string

	Config    any // decoded builder/publisher configuration
	Builder   builders.Builder
	Publisher publishers.Publisher
	Env       *spec.Environment
	// Resolved is the locked environment of an environment node (nil when
	// the environment has no usable lock; LockProblem says why).
	Resolved    *lock.Resolved
	LockProblem *hcl.Diagnostic
	// InputFiles are the declared input files of a target (absolute).
	InputFiles []string
	inputErr   error
}

// Graph is the whole action graph of a configuration.
type Graph struct {
	Config *spec.Config
	Nodes  map[string]*Node
	// Order is a topological order (dependencies first; ties by address).
	Order []string
	// Dependents maps an address to the addresses that depend on it.
	Dependents map[string][]string
}

// Registries are the kinds the planner knows.
type Registries struct {
	Builders   *builders.Registry
	Publishers *publishers.Registry
}

// NewGraph builds the action graph of cfg, decoding every target and
// publish body with its kind's schema. It reads no file but the lock (which
// the caller passes in) and those the configuration's functions read.
func NewGraph(cfg *spec.Config, reg Registries, lf *lock.File) (*Graph, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	g := &Graph{Config: cfg, Nodes: map[string]*Node{}, Dependents: map[string][]string{}}
	// An evaluation context depends only on the directory of the declaring
	// file; building one per block would be quadratic in the block count.
	contexts := map[string]*hcl.EvalContext{}
	evalContext := func(dir string) *hcl.EvalContext {
		if c, ok := contexts[dir]; ok {
			return c
		}
		c := cfg.EvalContext(dir)
		contexts[dir] = c
		return c
	}

	for _, name := range sortedKeys(cfg.Environments) {
		e := cfg.Environments[name]
		n := &Node{Address: e.Address, Class: ClassEnvironment, Kind: "environment", Name: e.Name,
			DeclRange: e.DeclRange, BaseDir: e.BaseDir, Env: e}
		n.Deps = edges(e.Refs, e.Address)
		n.Resolved, n.LockProblem = resolveEnvironment(e, lf)
		g.Nodes[n.Address] = n
	}

	for _, addr := range sortedKeys(cfg.Targets) {
		t := cfg.Targets[addr]
		n := &Node{Address: addr, Class: ClassTarget, Kind: t.Kind, Name: t.Name, DeclRange: t.DeclRange, BaseDir: t.BaseDir}
		n.Deps = edges(t.Refs, addr)
		b, ok := reg.Builders.Lookup(t.Kind)
		if !ok {
			diags = append(diags, unknownKind("target", t.Kind, t.KindRange, reg.Builders.Kinds()))
			continue
		}
		n.Builder = b
		conf := b.NewConfig()
		d := gohcl.DecodeBody(t.Body, evalContext(t.BaseDir), conf)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		n.Config = conf
		if v, ok := b.(builders.Validator); ok {
			if err := v.Validate(conf, t.BaseDir); err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Invalid %s target", t.Kind),
					Detail:   fmt.Sprintf("%s: %s.", addr, strings.TrimSuffix(err.Error(), ".")),
					Subject:  t.DeclRange.Ptr(),
				})
				continue
			}
		}
		if ind, ok := b.(builders.InputDeclarer); ok {
			n.InputFiles, n.inputErr = ind.Inputs(conf, t.BaseDir)
			sort.Strings(n.InputFiles)
		}
		g.Nodes[addr] = n
	}

	for _, addr := range sortedKeys(cfg.Publishes) {
		p := cfg.Publishes[addr]
		n := &Node{Address: addr, Class: ClassPublish, Kind: p.Kind, Name: p.Name, DeclRange: p.DeclRange, BaseDir: p.BaseDir}
		n.Deps = edges(append(append([]spec.Reference{}, p.Targets...), p.Refs...), addr)
		pub, ok := reg.Publishers.Lookup(p.Kind)
		if !ok {
			diags = append(diags, unknownKind("publish", p.Kind, p.KindRange, reg.Publishers.Kinds()))
			continue
		}
		n.Publisher = pub
		conf := pub.NewConfig()
		d := gohcl.DecodeBody(p.Body, evalContext(p.BaseDir), conf)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		n.Config = conf
		g.Nodes[addr] = n
	}

	// Edges to nodes that failed to decode stay out of the graph; the
	// failure was reported already.
	for _, n := range g.Nodes {
		kept := n.Deps[:0]
		for _, d := range n.Deps {
			if _, ok := g.Nodes[d]; ok {
				kept = append(kept, d)
				g.Dependents[d] = append(g.Dependents[d], n.Address)
			}
		}
		n.Deps = kept
	}
	for k := range g.Dependents {
		sort.Strings(g.Dependents[k])
	}
	cycles := g.findCycles()
	for _, c := range cycles {
		first := g.Nodes[c[0]]
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Dependency cycle",
			Detail: fmt.Sprintf("These blocks depend on each other: %s. Remove one of the references or depends_on entries to break the cycle.",
				strings.Join(append(c, c[0]), " → ")),
			Subject: first.DeclRange.Ptr(),
		})
	}
	if len(cycles) == 0 {
		g.Order = g.topoOrder()
	}
	return g, diags
}

// edges keeps the references that are graph edges: environments, targets and
// publishes other than self.
func edges(refs []spec.Reference, self string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range refs {
		a := r.Address
		if a == self || seen[a] {
			continue
		}
		if strings.HasPrefix(a, "environment.") || strings.HasPrefix(a, "target.") || strings.HasPrefix(a, "publish.") {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

func unknownKind(block, kind string, rng hcl.Range, known []string) *hcl.Diagnostic {
	detail := fmt.Sprintf("There is no %s kind %q. Known kinds: %s.", block, kind, strings.Join(known, ", "))
	if s := spec.Suggest(kind, known); s != "" {
		detail = fmt.Sprintf("Unsupported %s kind %q; did you mean %q?", block, kind, s)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Unsupported %s kind", block),
		Detail:   detail,
		Subject:  rng.Ptr(),
	}
}

// resolveEnvironment finds the environment in the lock and checks that the
// lock still matches the configuration.
func resolveEnvironment(e *spec.Environment, lf *lock.File) (*lock.Resolved, *hcl.Diagnostic) {
	fix := fmt.Sprintf("run `sparkenv lock %s`", e.Name)
	if lf == nil || lf.Environments[e.Name] == nil {
		return nil, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Environment not locked",
			Detail:   fmt.Sprintf("environment.%s has no entry in %s: %s to solve it.", e.Name, lock.FileName, fix),
			Subject:  e.DeclRange.Ptr(),
		}
	}
	le := lf.Environments[e.Name]
	if le.InputHash != EnvironmentInputHash(e) {
		return nil, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Lock is out of date",
			Detail:   fmt.Sprintf("environment.%s changed since it was locked: %s.", e.Name, fix),
			Subject:  e.DeclRange.Ptr(),
		}
	}
	return &lock.Resolved{Name: e.Name, Prefix: e.Prefix, Environment: le}, nil
}

// EnvironmentInputHash is the hash of what an environment was solved from;
// a lock entry with another hash is stale.
func EnvironmentInputHash(e *spec.Environment) string {
	links := make([]string, len(e.PipFindLinks))
	for i, l := range e.PipFindLinks {
		// Local folders count by their place relative to the config, so a
		// checkout elsewhere does not look stale.
		if filepath.IsAbs(l) && e.BaseDir != "" {
			if rel, err := filepath.Rel(e.BaseDir, l); err == nil {
				l = filepath.ToSlash(rel)
			}
		}
		links[i] = l
	}
	return lock.InputHash(lock.Inputs{
		Platform:        e.Platform,
		Channels:        e.Channels,
		Specs:           e.Dependencies,
		VirtualPackages: e.VirtualPackages,
		ChannelPriority: e.ChannelPriority,
		Pip:             e.Pip,
		PipIndex:        e.PipIndex,
		PipFindLinks:    links,
	})
}

// findCycles returns every strongly connected component that is a cycle,
// each as a list of addresses starting from the smallest, in edge order.
func (g *Graph) findCycles() [][]string {
	index := map[string]int{}
	low := map[string]int{}
	on := map[string]bool{}
	var stack []string
	var out [][]string
	next := 0
	var strong func(v string)
	strong = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		on[v] = true
		for _, w := range g.Nodes[v].Deps {
			if _, seen := index[w]; !seen {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if on[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			self := len(comp) == 1 && contains(g.Nodes[v].Deps, v)
			if len(comp) > 1 || self {
				out = append(out, g.cycleOrder(comp))
			}
		}
	}
	for _, a := range sortedKeys(g.Nodes) {
		if _, seen := index[a]; !seen {
			strong(a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// cycleOrder walks a component along its edges from its smallest member, so
// the diagnostic reads as a path.
func (g *Graph) cycleOrder(comp []string) []string {
	in := map[string]bool{}
	for _, c := range comp {
		in[c] = true
	}
	sort.Strings(comp)
	path := []string{comp[0]}
	seen := map[string]bool{comp[0]: true}
	for cur := comp[0]; ; {
		nxt := ""
		for _, d := range g.Nodes[cur].Deps {
			if in[d] && !seen[d] {
				nxt = d
				break
			}
		}
		if nxt == "" {
			break
		}
		path = append(path, nxt)
		seen[nxt] = true
		cur = nxt
	}
	for _, c := range comp {
		if !seen[c] {
			path = append(path, c)
		}
	}
	return path
}

func (g *Graph) topoOrder() []string {
	indeg := map[string]int{}
	for a, n := range g.Nodes {
		indeg[a] = len(n.Deps)
	}
	var ready []string
	for a, d := range indeg {
		if d == 0 {
			ready = append(ready, a)
		}
	}
	sort.Strings(ready)
	var order []string
	for len(ready) > 0 {
		a := ready[0]
		ready = ready[1:]
		order = append(order, a)
		for _, dep := range g.Dependents[a] {
			indeg[dep]--
			if indeg[dep] == 0 {
				i := sort.SearchStrings(ready, dep)
				ready = append(ready[:i], append([]string{dep}, ready[i:]...)...)
			}
		}
	}
	return order
}

// Closure returns the given addresses and everything they depend on, in
// topological order. An empty selection means every node.
func (g *Graph) Closure(addrs []string) ([]string, error) {
	if len(addrs) == 0 {
		return g.Order, nil
	}
	want := map[string]bool{}
	var visit func(a string)
	visit = func(a string) {
		if want[a] {
			return
		}
		want[a] = true
		for _, d := range g.Nodes[a].Deps {
			visit(d)
		}
	}
	for _, a := range addrs {
		if _, ok := g.Nodes[a]; !ok {
			msg := fmt.Sprintf("no block has the address %q", a)
			if s := spec.Suggest(a, sortedKeys(g.Nodes)); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return nil, fmt.Errorf("%s", msg)
		}
		visit(a)
	}
	var out []string
	for _, a := range g.Order {
		if want[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
