package solve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/internal/conda/matchspec"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/conda/version"
)

// ChannelPriority says how records of the same name from different
// channels compete.
type ChannelPriority int

const (
	// Strict: once a name is found in a channel, the records of that name
	// in lower-priority channels are ignored (the default of conda-forge
	// setups, mamba and pixi).
	Strict ChannelPriority = iota
	// Flexible: every channel's records compete; the higher version wins
	// and channel order only breaks ties between equal versions.
	Flexible
)

// ChannelRecords is one channel's candidate records (every subdir of it).
type ChannelRecords struct {
	Name    string
	Records []repodata.Record
}

// Request is what to solve.
type Request struct {
	// Channels in priority order, highest first.
	Channels []ChannelRecords
	// Specs are the requested packages; earlier specs get their preferred
	// versions first.
	Specs []matchspec.MatchSpec
	// Virtual are the virtual packages of the target machine (CEP 30), e.g.
	// __glibc 2.31 0, __unix 0 0. Dependencies on other "__" names fail.
	Virtual []repodata.Record
	// Locked records are kept when the request allows (minimal change), unless
	// their name is in Update.
	Locked []repodata.Record
	// Update names packages whose locked record need not be kept.
	Update          []string
	ChannelPriority ChannelPriority
}

// Solution is the chosen records in install order: every record comes
// after its dependencies (cycles broken by name), ties by name. Virtual
// packages are not included.
type Solution struct {
	Records []repodata.Record
	// Stats about the search, for benchmarks and --debug output.
	Variables, Clauses, Decisions, Learnt int
}

// UnsatisfiableError is a request that no choice of records satisfies.
type UnsatisfiableError struct {
	// Specs are the requested specs that conflict (a minimal subset of the
	// request when it could be found).
	Specs []string
	// Reasons explain the conflict in sentences, e.g. "catboost 1.0.6
	// requires python >=3.6,<3.10, but python 3.11.* was requested".
	Reasons []string
}

func (e *UnsatisfiableError) Error() string {
	var b strings.Builder
	b.WriteString("cannot satisfy ")
	b.WriteString(strings.Join(e.Specs, ", "))
	if len(e.Reasons) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Reasons, "; "))
	}
	return b.String()
}

// ErrUnsatisfiable matches every *UnsatisfiableError with errors.Is.
var ErrUnsatisfiable = errors.New("unsatisfiable")

// Is reports whether target is ErrUnsatisfiable.
func (e *UnsatisfiableError) Is(target error) bool { return target == ErrUnsatisfiable }

// cand is one candidate record, a SAT variable.
type cand struct {
	rec     *repodata.Record
	ver     version.Version
	channel int // index in Request.Channels; -1 for virtual packages
	locked  bool
	nfeat   int
	deps    []int // indexes into solver.reqs
	cons    []*matchspec.MatchSpec
	badDep  string // a dependency that does not parse: the record is unusable
}

// req is a requirement: a parent (or the request itself, parent -1) needs
// one of cands.
type req struct {
	parent int
	spec   *matchspec.MatchSpec
	text   string
	cands  []int
}

type solver struct {
	r       *Request
	raw     map[string][]rawCand
	locked  map[string]*repodata.Record
	byName  map[string][]*cand // usable records by name, best first (filled lazily)
	vars    []*cand
	names   map[string][]int // name → vars, best first
	reqs    []req
	roots   []int
	specs   map[string]*matchspec.MatchSpec // parsed dependency strings
	matches map[string][]int                // dependency string → matching vars
	sat     *sat
	maxDep  map[string]version.Version // dependency string → best version it allows
	clauses int
	decided int
}

// Solve finds the preferred set of records that satisfies req. An
// unsatisfiable request returns an *UnsatisfiableError.
func Solve(ctx context.Context, r Request) (*Solution, error) {
	s, err := newSolver(r)
	if err != nil {
		return nil, err
	}
	ok, err := s.run(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, explain(ctx, r, s)
	}
	return s.solution(), nil
}

func newSolver(r Request) (*solver, error) {
	s := &solver{
		r:       &r,
		byName:  map[string][]*cand{},
		names:   map[string][]int{},
		specs:   map[string]*matchspec.MatchSpec{},
		matches: map[string][]int{},
		maxDep:  map[string]version.Version{},
	}
	if err := s.index(); err != nil {
		return nil, err
	}
	s.build()
	return s, nil
}

// index groups the records by name. Versions are parsed, channel priority
// applied and candidates sorted lazily, per name, when the closure of the
// request reaches it (see cands): a request touches a small part of a
// channel.
func (s *solver) index() error {
	update := map[string]bool{}
	for _, n := range s.r.Update {
		update[strings.ToLower(n)] = true
	}
	s.locked = map[string]*repodata.Record{}
	for i := range s.r.Locked {
		l := &s.r.Locked[i]
		if !update[strings.ToLower(l.Name)] {
			s.locked[strings.ToLower(l.Name)] = l
		}
	}
	s.raw = map[string][]rawCand{}
	for ci := range s.r.Channels {
		recs := s.r.Channels[ci].Records
		for i := range recs {
			if strings.HasPrefix(recs[i].Name, "__") {
				continue // only the machine provides virtual packages
			}
			name := strings.ToLower(recs[i].Name)
			s.raw[name] = append(s.raw[name], rawCand{&recs[i], ci})
		}
	}
	for i := range s.r.Virtual {
		name := strings.ToLower(s.r.Virtual[i].Name)
		s.raw[name] = append(s.raw[name], rawCand{&s.r.Virtual[i], -1})
	}
	return nil
}

type rawCand struct {
	rec     *repodata.Record
	channel int
}

// cands returns the usable candidates of name, best first.
func (s *solver) cands(name string) []*cand {
	if cs, ok := s.byName[name]; ok {
		return cs
	}
	l := s.locked[name]
	var cs []*cand
	add := func(rec *repodata.Record, ch int) *cand {
		v, err := version.Parse(rec.Version)
		if err != nil {
			return nil // a record conda itself could not order is never a candidate
		}
		c := &cand{rec: rec, ver: v, channel: ch, nfeat: len(rec.TrackFeatureList())}
		if l != nil && l.Version == rec.Version && l.Build == rec.Build {
			c.locked = true
		}
		cs = append(cs, c)
		return c
	}
	lockedFound := false
	for _, rc := range s.raw[name] {
		if c := add(rc.rec, rc.channel); c != nil && c.locked {
			lockedFound = true
		}
	}
	if l != nil && !lockedFound && !strings.HasPrefix(name, "__") {
		// A locked record no channel has any more stays installable.
		if c := add(l, len(s.r.Channels)); c != nil {
			c.locked = true
		}
	}
	if s.r.ChannelPriority == Strict {
		best := len(s.r.Channels) + 1
		for _, c := range cs {
			if c.channel >= 0 && c.channel < best && !c.locked {
				best = c.channel
			}
		}
		kept := cs[:0]
		for _, c := range cs {
			if c.channel <= best || c.locked || c.channel < 0 {
				kept = append(kept, c)
			}
		}
		cs = kept
	}
	// Sorting may look at other names (compareDeps), which may look back
	// at this one: they then see it unsorted, which is enough for them.
	s.byName[name] = cs
	slices.SortStableFunc(cs, s.prefer)
	return cs
}

// prefer orders candidates of one name, best first.
func (s *solver) prefer(a, b *cand) int {
	if a.locked != b.locked {
		if a.locked {
			return -1
		}
		return 1
	}
	if r := cmp.Compare(a.nfeat, b.nfeat); r != 0 {
		return r
	}
	if s.r.ChannelPriority == Strict {
		if r := cmp.Compare(a.channel, b.channel); r != 0 {
			return r
		}
	}
	if r := b.ver.Compare(a.ver); r != 0 {
		return r
	}
	if r := cmp.Compare(a.channel, b.channel); r != 0 {
		return r
	}
	if r := cmp.Compare(b.rec.BuildNumber, a.rec.BuildNumber); r != 0 {
		return r
	}
	if r := s.compareDeps(a, b); r != 0 {
		return r
	}
	if r := cmp.Compare(b.rec.Timestamp, a.rec.Timestamp); r != 0 {
		return r
	}
	if r := cmp.Compare(a.rec.Build, b.rec.Build); r != 0 {
		return r
	}
	if r := cmp.Compare(a.rec.Subdir, b.rec.Subdir); r != 0 {
		return r
	}
	return cmp.Compare(a.rec.FileName, b.rec.FileName)
}

// compareDeps breaks ties between builds of the same version and build
// number the way rattler does: for each dependency name both have, the build
// whose dependency allows the higher best version scores; the higher total
// wins. So the py37 build of a package beats the py36 one when python 3.7
// is available.
func (s *solver) compareDeps(a, b *cand) int {
	score := 0
	for _, da := range a.rec.Depends {
		ma, err := s.parseDep(da)
		if err != nil {
			continue
		}
		for _, db := range b.rec.Depends {
			mb, err := s.parseDep(db)
			if err != nil || mb.Name != ma.Name || da == db {
				continue
			}
			va, oka := s.bestAllowed(ma, da)
			vb, okb := s.bestAllowed(mb, db)
			switch {
			case oka && !okb:
				score--
			case okb && !oka:
				score++
			case oka && okb:
				score += vb.Compare(va)
			}
			break
		}
	}
	return cmp.Compare(score, 0)
}

// match tests a candidate against a spec. A record without a channel of
// its own belongs to the channel it was given in, so that "name::pkg"
// specs work on plain repodata records.
func (s *solver) match(m *matchspec.MatchSpec, c *cand) bool {
	if m.Channel != "" && c.rec.Channel == "" && c.channel >= 0 && c.channel < len(s.r.Channels) {
		rec := *c.rec
		rec.Channel = s.r.Channels[c.channel].Name
		return m.MatchesParsed(&rec, c.ver)
	}
	return m.MatchesParsed(c.rec, c.ver)
}

// bestAllowed is the highest version among the candidates a dependency
// accepts.
func (s *solver) bestAllowed(m *matchspec.MatchSpec, key string) (version.Version, bool) {
	if v, ok := s.maxDep[key]; ok {
		return v, !v.IsZero()
	}
	var best version.Version
	for _, c := range s.cands(m.Name) {
		if s.match(m, c) && (best.IsZero() || c.ver.Compare(best) > 0) {
			best = c.ver
		}
	}
	s.maxDep[key] = best
	return best, !best.IsZero()
}

func (s *solver) parseDep(text string) (*matchspec.MatchSpec, error) {
	if m, ok := s.specs[text]; ok {
		if m == nil {
			return nil, fmt.Errorf("bad dependency %q", text)
		}
		return m, nil
	}
	m, err := matchspec.ParseLenient(text)
	if err != nil {
		s.specs[text] = nil
		return nil, err
	}
	s.specs[text] = &m
	return &m, nil
}

// varsOf creates the variables of every candidate of name (once).
func (s *solver) varsOf(name string) []int {
	if vs, ok := s.names[name]; ok {
		return vs
	}
	vs := []int{}
	for _, c := range s.cands(name) {
		vs = append(vs, len(s.vars))
		s.vars = append(s.vars, c)
	}
	s.names[name] = vs
	return vs
}

// candidates returns the variables matching spec, best first.
func (s *solver) candidates(m *matchspec.MatchSpec, key string) []int {
	if key != "" {
		if vs, ok := s.matches[key]; ok {
			return vs
		}
	}
	var out []int
	if strings.Contains(m.Name, "*") {
		names := make([]string, 0)
		for n := range s.raw {
			if m.MatchesName(n) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			for _, v := range s.varsOf(n) {
				if s.match(m, s.vars[v]) {
					out = append(out, v)
				}
			}
		}
	} else {
		for _, v := range s.varsOf(m.Name) {
			if s.match(m, s.vars[v]) {
				out = append(out, v)
			}
		}
	}
	if key != "" {
		s.matches[key] = out
	}
	return out
}

// build walks the dependency closure of the request and creates the
// variables and clauses.
func (s *solver) build() {
	for i := range s.r.Specs {
		m := &s.r.Specs[i]
		cs := s.candidates(m, "")
		s.roots = append(s.roots, len(s.reqs))
		s.reqs = append(s.reqs, req{parent: -1, spec: m, text: specText(m), cands: cs})
	}
	// Breadth-first over the variables: each new variable's dependencies
	// may create more variables.
	for v := 0; v < len(s.vars); v++ {
		c := s.vars[v]
		for _, d := range c.rec.Depends {
			m, err := s.parseDep(d)
			if err != nil {
				c.badDep = d
				continue
			}
			cs := s.candidates(m, d)
			c.deps = append(c.deps, len(s.reqs))
			s.reqs = append(s.reqs, req{parent: v, spec: m, text: d, cands: cs})
		}
		for _, d := range c.rec.Constrains {
			m, err := s.parseDep(d)
			if err != nil {
				continue // a constraint conda cannot read constrains nothing
			}
			c.cons = append(c.cons, m)
		}
	}
	groupOf := make([]int, len(s.vars))
	var groups [][]int
	names := make([]string, 0, len(s.names))
	for n := range s.names {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		vs := s.names[n]
		for _, v := range vs {
			groupOf[v] = len(groups)
		}
		groups = append(groups, vs)
	}
	s.sat = newSAT(len(s.vars), groupOf, groups)
	for _, r := range s.reqs {
		lits := make([]lit, 0, len(r.cands)+1)
		if r.parent >= 0 {
			lits = append(lits, negLit(r.parent))
		}
		for _, c := range r.cands {
			lits = append(lits, posLit(c))
		}
		s.clauses++
		s.sat.addClause(lits)
	}
	for v, c := range s.vars {
		if c.badDep != "" {
			s.clauses++
			s.sat.addClause([]lit{negLit(v)})
		}
		for _, m := range c.cons {
			// A constraint only matters when its package is installed; it is
			// never installed unless it is in the closure.
			for _, u := range s.names[m.Name] {
				if !s.match(m, s.vars[u]) {
					s.clauses++
					s.sat.addClause([]lit{negLit(v), negLit(u)})
				}
			}
		}
	}
}

// run searches; it returns false when the request is unsatisfiable.
func (s *solver) run(ctx context.Context) (bool, error) {
	if s.sat.unsat {
		return false, nil
	}
	if !s.sat.settle() {
		return false, nil
	}
	for {
		if s.decided%256 == 0 {
			if err := ctx.Err(); err != nil {
				return false, fmt.Errorf("solve: %w", context.Cause(ctx))
			}
		}
		v, ok := s.next()
		if !ok {
			return true, nil
		}
		s.decided++
		if !s.sat.decide(posLit(v)) {
			return false, nil
		}
	}
}

// next picks the next decision: the first unsatisfied requirement, the
// requested specs in order first, then dependencies of installed records
// in the order those were chosen; within it the best candidate that is
// still possible.
func (s *solver) next() (int, bool) {
	pick := func(r *req) (int, bool) {
		best := -1
		for _, c := range r.cands {
			switch s.sat.value[c] {
			case 1:
				return -1, false
			case 0:
				if best < 0 {
					best = c
				}
			}
		}
		return best, best >= 0
	}
	for _, i := range s.roots {
		if v, ok := pick(&s.reqs[i]); ok {
			return v, true
		}
	}
	for _, l := range s.sat.trail {
		if l.neg() {
			continue
		}
		for _, i := range s.vars[l.v()].deps {
			if v, ok := pick(&s.reqs[i]); ok {
				return v, true
			}
		}
	}
	return 0, false
}

func (s *solver) solution() *Solution {
	var chosen []int
	for v := range s.vars {
		if s.sat.value[v] == 1 && s.vars[v].channel >= 0 {
			chosen = append(chosen, v)
		}
	}
	sol := &Solution{Variables: len(s.vars), Clauses: s.clauses, Decisions: s.decided, Learnt: s.sat.learnts}
	for _, v := range s.installOrder(chosen) {
		sol.Records = append(sol.Records, *s.vars[v].rec)
	}
	return sol
}

// installOrder sorts the chosen records so that dependencies come first;
// among records whose dependencies are all placed, names sort
// alphabetically, and a cycle is broken at its alphabetically first name.
func (s *solver) installOrder(chosen []int) []int {
	in := map[int]bool{}
	for _, v := range chosen {
		in[v] = true
	}
	deps := map[int][]int{}
	for _, v := range chosen {
		for _, ri := range s.vars[v].deps {
			for _, c := range s.reqs[ri].cands {
				if in[c] && c != v {
					deps[v] = append(deps[v], c)
				}
			}
		}
	}
	name := func(v int) string { return strings.ToLower(s.vars[v].rec.Name) }
	remaining := slices.Clone(chosen)
	slices.SortFunc(remaining, func(a, b int) int { return cmp.Compare(name(a), name(b)) })
	placed := map[int]bool{}
	var out []int
	for len(remaining) > 0 {
		progress := false
		for i := 0; i < len(remaining); i++ {
			v := remaining[i]
			ready := true
			for _, d := range deps[v] {
				if !placed[d] {
					ready = false
					break
				}
			}
			if ready {
				out = append(out, v)
				placed[v] = true
				remaining = slices.Delete(remaining, i, i+1)
				progress = true
				break // restart: keep ties in name order
			}
		}
		if !progress {
			v := remaining[0]
			out = append(out, v)
			placed[v] = true
			remaining = remaining[1:]
		}
	}
	return out
}

// specText words a requested spec the way users write it ("python 3.11.*")
// when it has only a name and a version, and canonically otherwise.
func specText(m *matchspec.MatchSpec) string {
	plain := *m
	plain.Version = nil
	if m.Version != nil && plain.String() == m.Name {
		return m.Name + " " + m.Version.String()
	}
	return m.String()
}
