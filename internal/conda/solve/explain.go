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
		e.Specs = append(e.Specs, core[i].String())
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
	all := s.byName[m.Name]
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
	allowed map[int]bool
	reasons []reason
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
	needs := map[string]*need{}
	var queue []string
	var conflict string
	restrict := func(name string, allowed []int, why reason) {
		set := map[int]bool{}
		for _, v := range allowed {
			if s.vars[v].badDep == "" {
				set[v] = true
			}
		}
		n := needs[name]
		if n == nil {
			needs[name] = &need{allowed: set, reasons: []reason{why}}
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
		if len(needs[name].allowed) == 0 && conflict == "" {
			conflict = name
		}
		queue = append(queue, name)
	}
	for _, ri := range s.roots {
		rq := &s.reqs[ri]
		restrict(rq.spec.Name, rq.cands, reason{text: rq.text + " was requested"})
	}
	for len(queue) > 0 && conflict == "" {
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
	return s.render(needs, conflict)
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
func (s *solver) render(needs map[string]*need, name string) []string {
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
	if len(rs) == 1 {
		m := &matchspec.MatchSpec{Name: name}
		clash = s.nothingProvides(m, clash)
	}
	return append(lines, clash)
}
