package solve

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/internal/conda/matchspec"
	"github.com/sparkenv/sparkenv/internal/conda/version"
)

// maxMinimize bounds the specs for which a minimal conflicting subset is
// searched (one solve per spec).
const maxMinimize = 24

// explain builds the error for an unsatisfiable request: the smallest
// conflicting subset of the requested specs it can find, and sentences
// saying through which packages they conflict.
func explain(ctx context.Context, r Request, s *solver) error {
	e := &UnsatisfiableError{}
	for _, ri := range s.roots {
		rq := &s.reqs[ri]
		if len(rq.cands) == 0 {
			e.Specs = append(e.Specs, rq.text)
			e.Reasons = append(e.Reasons, s.nothingProvides(rq.spec, rq.text+" was requested"))
		}
	}
	if len(e.Reasons) > 0 {
		return e
	}
	core := r.Specs
	if len(core) <= maxMinimize {
		core = minimize(ctx, r)
	}
	for i := range core {
		e.Specs = append(e.Specs, specText(&core[i]))
	}
	cr := r
	cr.Specs = core
	cs, err := newSolver(cr)
	if err != nil {
		return err
	}
	e.Reasons = cs.necessary()
	if len(e.Reasons) == 0 {
		e.Reasons = []string{"no combination of their candidates and dependencies can be installed together"}
	}
	return e
}

// minimize drops requested specs that are not needed for the conflict.
func minimize(ctx context.Context, r Request) []matchspec.MatchSpec {
	cur := slices.Clone(r.Specs)
	for i := 0; i < len(cur) && len(cur) > 1; {
		try := slices.Delete(slices.Clone(cur), i, i+1)
		tr := r
		tr.Specs = try
		s, err := newSolver(tr)
		if err != nil {
			return cur
		}
		ok, err := s.run(ctx)
		if err != nil {
			return cur
		}
		if !ok {
			cur = try
		} else {
			i++
		}
	}
	return cur
}

// nothingProvides says why spec has no candidate at all.
func (s *solver) nothingProvides(m *matchspec.MatchSpec, why string) string {
	all := s.cands(m.Name)
	if strings.HasPrefix(m.Name, "__") {
		if len(all) == 0 {
			return fmt.Sprintf("%s, but the target machine does not provide the virtual package %s", why, m.Name)
		}
		return fmt.Sprintf("%s, but the target machine provides only %s", why, describeVersions(all))
	}
	if len(all) == 0 {
		return fmt.Sprintf("%s, but no channel has a package named %s", why, m.Name)
	}
	return fmt.Sprintf("%s, but no %s record matches it (the channels have %s)", why, m.Name, describeVersions(all))
}

func describeVersions(cs []*cand) string {
	var vs []version.Version
	seen := map[string]bool{}
	for _, c := range cs {
		if !seen[c.ver.String()] {
			seen[c.ver.String()] = true
			vs = append(vs, c.ver)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Compare(vs[j]) > 0 })
	text := make([]string, 0, 4)
	for i, v := range vs {
		if i == 3 {
			text = append(text, "…", vs[len(vs)-1].String())
			break
		}
		text = append(text, v.String())
	}
	return fmt.Sprintf("%s %s", cs[0].rec.Name, strings.Join(text, ", "))
}

// need is what the request forces on one package name: only these
// candidates can be installed, for these reasons.
type need struct {
	allowed    map[int]bool
	reasons    []reason
	deadSample int // the best candidate dropped because it can never be installed, or -1
	pruned     []pruned
}

// pruned is a candidate dropped because its dependency dep conflicts with
// what is needed of the package on.
type pruned struct {
	v       int
	dep, on string
}

type reason struct {
	text   string
	parent string // the name whose candidates all require this; "" when requested
}

// necessary propagates what the requested specs force: when every allowed
// candidate of a needed package depends on name m, m is needed too, limited
// to what those dependencies accept. A needed name left with no allowed
// candidate is the conflict; it is explained with the chain of reasons
// that led to it.
func (s *solver) necessary() []string {
	dead, deadBy := s.deadCandidates()
	needs := map[string]*need{}
	var queue []string
	var conflict string
	restrict := func(name string, allowed []int, why reason) {
		set := map[int]bool{}
		sample := -1
		for _, v := range allowed {
			if !dead[v] {
				set[v] = true
			} else if sample < 0 || v < sample {
				sample = v // variables are numbered best first within a name
			}
		}
		n := needs[name]
		if n == nil {
			n = &need{allowed: set, reasons: []reason{why}, deadSample: sample}
			needs[name] = n
		} else {
			inter := map[int]bool{}
			for v := range n.allowed {
				if set[v] {
					inter[v] = true
				}
			}
			if len(inter) == len(n.allowed) {
				return
			}
			n.allowed = inter
			n.reasons = append(n.reasons, why)
		}
		if len(n.allowed) == 0 && conflict == "" {
			conflict = name
		}
		queue = append(queue, name)
	}
	for _, ri := range s.roots {
		rq := &s.reqs[ri]
		restrict(rq.spec.Name, rq.cands, reason{text: rq.text + " was requested"})
	}
	for conflict == "" {
		if len(queue) == 0 {
			// Backward: drop allowed candidates whose dependency no allowed
			// candidate of a needed name satisfies; that may force more.
			queue = s.prune(needs, &conflict)
			if len(queue) == 0 {
				break
			}
			continue
		}
		name := queue[0]
		queue = queue[1:]
		n := needs[name]
		allowed := sortedVars(n.allowed)
		if len(allowed) == 0 {
			continue
		}
		// Names every allowed candidate depends on, in the first candidate's order.
		first := s.vars[allowed[0]]
		for _, ri := range first.deps {
			dep := s.reqs[ri].spec.Name
			if strings.Contains(dep, "*") {
				continue
			}
			union := map[int]bool{}
			texts := map[string]bool{}
			all := true
			for _, v := range allowed {
				mine, ok := s.depOn(v, dep)
				if !ok {
					all = false
					break
				}
				for _, c := range mine.cands {
					union[c] = true
				}
				texts[mine.text] = true
			}
			if !all {
				continue
			}
			restrict(dep, sortedVars(union), reason{text: s.describeRequirement(allowed, texts), parent: name})
			if conflict != "" {
				break
			}
		}
	}
	if conflict == "" {
		return nil
	}
	return s.render(needs, conflict, deadBy)
}

// prune removes, from every needed name, the allowed candidates with a
// dependency on a needed name that none of its allowed candidates satisfy.
// It returns the names that changed.
func (s *solver) prune(needs map[string]*need, conflict *string) []string {
	names := make([]string, 0, len(needs))
	for n := range needs {
		names = append(names, n)
	}
	sort.Strings(names)
	var changed []string
	for _, name := range names {
		n := needs[name]
		removed := false
		for _, v := range sortedVars(n.allowed) {
			for _, ri := range s.vars[v].deps {
				rq := &s.reqs[ri]
				nm := needs[rq.spec.Name]
				if nm == nil {
					continue
				}
				ok := false
				for _, c := range rq.cands {
					if nm.allowed[c] {
						ok = true
						break
					}
				}
				if !ok {
					delete(n.allowed, v)
					n.pruned = append(n.pruned, pruned{v: v, dep: rq.text, on: rq.spec.Name})
					removed = true
					break
				}
			}
		}
		if removed {
			changed = append(changed, name)
			if len(n.allowed) == 0 && *conflict == "" {
				*conflict = name
				return nil
			}
		}
	}
	return changed
}

// deadCandidates finds the candidates that can never be installed
// whatever else is chosen: a dependency nothing satisfies, or one whose
// candidates are all dead. deadBy[v] is the requirement that killed v (-1
// for an unreadable dependency).
func (s *solver) deadCandidates() ([]bool, []int) {
	dead := make([]bool, len(s.vars))
	deadBy := make([]int, len(s.vars))
	for changed := true; changed; {
		changed = false
		for v, c := range s.vars {
			if dead[v] {
				continue
			}
			if c.badDep != "" {
				dead[v], deadBy[v], changed = true, -1, true
				continue
			}
			for _, ri := range c.deps {
				all := true
				for _, u := range s.reqs[ri].cands {
					if !dead[u] {
						all = false
						break
					}
				}
				if all {
					dead[v], deadBy[v], changed = true, ri, true
					break
				}
			}
		}
	}
	return dead, deadBy
}

// deathChain says why candidate v can never be installed, following the
// best candidate of each dead requirement.
func (s *solver) deathChain(v int, deadBy []int) string {
	var parts []string
	for depth := 0; depth < 8; depth++ {
		c := s.vars[v]
		who := c.rec.Name + " " + c.rec.Version
		if deadBy[v] < 0 {
			parts = append(parts, fmt.Sprintf("%s has a dependency that cannot be read (%q)", who, c.badDep))
			break
		}
		rq := &s.reqs[deadBy[v]]
		if len(rq.cands) == 0 {
			parts = append(parts, s.nothingProvides(rq.spec, who+" requires "+rq.text))
			break
		}
		parts = append(parts, who+" requires "+rq.text)
		v = rq.cands[0]
	}
	return strings.Join(parts, "; ")
}

// depOn returns the (intersected) requirement of variable v on name, if any.
func (s *solver) depOn(v int, name string) (req, bool) {
	var out req
	found := false
	for _, ri := range s.vars[v].deps {
		r := s.reqs[ri]
		if r.spec.Name != name {
			continue
		}
		if !found {
			out = req{text: r.text, cands: r.cands}
			found = true
			continue
		}
		keep := map[int]bool{}
		for _, c := range r.cands {
			keep[c] = true
		}
		out.cands = slices.DeleteFunc(slices.Clone(out.cands), func(c int) bool { return !keep[c] })
		out.text += ", " + r.text
	}
	return out, found
}

func sortedVars(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// describeRequirement words "these candidates all require …".
func (s *solver) describeRequirement(allowed []int, texts map[string]bool) string {
	cs := make([]*cand, len(allowed))
	for i, v := range allowed {
		cs[i] = s.vars[v]
	}
	who := ""
	switch {
	case len(cs) == 1:
		who = cs[0].rec.Name + " " + cs[0].rec.Version + " requires"
	default:
		who = "every candidate " + describeVersions(cs) + " requires"
	}
	list := make([]string, 0, len(texts))
	for t := range texts {
		list = append(list, t)
	}
	sort.Strings(list)
	if len(list) == 1 {
		return who + " " + list[0]
	}
	if len(list) > 3 {
		list = append(list[:3], "…")
	}
	return who + " one of " + strings.Join(list, "; ")
}

// render explains the conflict on name: how each package involved came to
// be needed, then the clash itself.
func (s *solver) render(needs map[string]*need, name string, deadBy []int) []string {
	var lines []string
	done := map[string]bool{}
	var chain func(n string)
	chain = func(n string) {
		if done[n] || needs[n] == nil {
			return
		}
		done[n] = true
		r := needs[n].reasons[0]
		if r.parent == "" {
			return // requested: the clash sentence says so
		}
		chain(r.parent)
		lines = append(lines, r.text)
	}
	rs := slices.Clone(needs[name].reasons)
	for _, r := range rs {
		if r.parent != "" {
			chain(r.parent)
		}
	}
	// Requirements first, then what was requested: "catboost 1.0.6 requires
	// python >=3.6,<3.10, but python 3.11.* was requested".
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].parent != "" && rs[j].parent == "" })
	texts := make([]string, len(rs))
	for i, r := range rs {
		texts[i] = r.text
	}
	clash := strings.Join(texts, ", but ")
	if p := needs[name].pruned; len(p) > 0 {
		var why []string
		seen := map[string]bool{}
		for _, x := range p {
			c := s.vars[x.v]
			key := c.rec.Version + "\x00" + x.dep
			if seen[key] {
				continue
			}
			seen[key] = true
			if len(why) == 3 {
				why = append(why, "…")
				break
			}
			on := needs[x.on]
			limit := "no candidate"
			if vs := sortedVars(on.allowed); len(vs) > 0 {
				cs := make([]*cand, len(vs))
				for i, v := range vs {
					cs[i] = s.vars[v]
				}
				limit = describeVersions(cs)
			}
			why = append(why, fmt.Sprintf("%s %s requires %s, but only %s can be installed (%s)", c.rec.Name, c.rec.Version, x.dep, limit, on.reasons[len(on.reasons)-1].text))
			chain(x.on)
		}
		return append(lines, clash+", but none of its candidates fits: "+strings.Join(why, "; "))
	}
	if len(rs) == 1 {
		if d := needs[name].deadSample; d >= 0 {
			clash += ", but no candidate of it can be installed: " + s.deathChain(d, deadBy)
		} else {
			clash = s.nothingProvides(&matchspec.MatchSpec{Name: name}, clash)
		}
	}
	return append(lines, clash)
}
