package solve

// A small CDCL engine: two watched literals, first-UIP learning,
// non-chronological backjumping. Each package name gets an at-most-one
// constraint that is propagated directly instead of as pairwise clauses.
// Decisions are made by the caller (see solver.decide), which is where the
// package preferences live.

type lit int32

func posLit(v int) lit  { return lit(v << 1) }
func negLit(v int) lit  { return lit(v<<1 | 1) }
func (l lit) v() int    { return int(l >> 1) }
func (l lit) neg() bool { return l&1 == 1 }
func (l lit) not() lit  { return l ^ 1 }

type clause struct {
	lits []lit
}

type sat struct {
	nvars   int
	value   []int8 // per var: 0 unassigned, 1 true, -1 false
	level   []int32
	reason  []*clause
	trail   []lit
	lim     []int // trail length at the start of each decision level
	qhead   int
	watches [][]*clause // by literal: clauses watching it
	groups  [][]int     // at-most-one groups (one per package name)
	groupOf []int       // var → group
	seen    []bool
	unsat   bool // a conflict at level 0 was found
	learnts int
}

func newSAT(nvars int, groupOf []int, groups [][]int) *sat {
	return &sat{
		nvars:   nvars,
		value:   make([]int8, nvars),
		level:   make([]int32, nvars),
		reason:  make([]*clause, nvars),
		watches: make([][]*clause, 2*nvars),
		groups:  groups,
		groupOf: groupOf,
		seen:    make([]bool, nvars),
	}
}

func (s *sat) litValue(l lit) int8 {
	x := s.value[l.v()]
	if l.neg() {
		return -x
	}
	return x
}

func (s *sat) decisionLevel() int { return len(s.lim) }

func (s *sat) assign(l lit, why *clause) {
	v := l.v()
	if l.neg() {
		s.value[v] = -1
	} else {
		s.value[v] = 1
	}
	s.level[v] = int32(s.decisionLevel())
	s.reason[v] = why
	s.trail = append(s.trail, l)
}

// addClause adds a problem clause at level 0. It returns false when the
// problem became unsatisfiable.
func (s *sat) addClause(lits []lit) bool {
	if s.unsat {
		return false
	}
	// Drop false literals and satisfied clauses (level 0 only).
	out := lits[:0:0]
	for _, l := range lits {
		switch s.litValue(l) {
		case 1:
			return true
		case 0:
			dup := false
			for _, o := range out {
				if o == l {
					dup = true
				}
				if o == l.not() {
					return true
				}
			}
			if !dup {
				out = append(out, l)
			}
		}
	}
	switch len(out) {
	case 0:
		s.unsat = true
		return false
	case 1:
		s.assign(out[0], nil)
		if s.propagate() != nil {
			s.unsat = true
			return false
		}
		return true
	}
	c := &clause{lits: out}
	s.watch(c)
	return true
}

func (s *sat) watch(c *clause) {
	s.watches[c.lits[0]] = append(s.watches[c.lits[0]], c)
	s.watches[c.lits[1]] = append(s.watches[c.lits[1]], c)
}

// propagate runs unit propagation; it returns a conflicting clause or nil.
func (s *sat) propagate() *clause {
	for s.qhead < len(s.trail) {
		p := s.trail[s.qhead]
		s.qhead++
		if !p.neg() {
			// At most one record per name.
			v := p.v()
			if g := s.groupOf[v]; g >= 0 {
				for _, u := range s.groups[g] {
					if u == v {
						continue
					}
					switch s.value[u] {
					case 1:
						return &clause{lits: []lit{negLit(u), negLit(v)}}
					case 0:
						s.assign(negLit(u), &clause{lits: []lit{negLit(u), negLit(v)}})
					}
				}
			}
		}
		if c := s.propagateWatches(p.not()); c != nil {
			return c
		}
	}
	return nil
}

// propagateWatches visits the clauses watching f, which just became false.
func (s *sat) propagateWatches(f lit) *clause {
	ws := s.watches[f]
	kept := ws[:0]
	var conflict *clause
	i := 0
	for ; i < len(ws); i++ {
		c := ws[i]
		if c.lits[0] == f {
			c.lits[0], c.lits[1] = c.lits[1], c.lits[0]
		}
		if s.litValue(c.lits[0]) == 1 {
			kept = append(kept, c)
			continue
		}
		moved := false
		for k := 2; k < len(c.lits); k++ {
			if s.litValue(c.lits[k]) != -1 {
				c.lits[1], c.lits[k] = c.lits[k], c.lits[1]
				s.watches[c.lits[1]] = append(s.watches[c.lits[1]], c)
				moved = true
				break
			}
		}
		if moved {
			continue
		}
		kept = append(kept, c)
		if s.litValue(c.lits[0]) == -1 {
			conflict = c
			i++
			break
		}
		s.assign(c.lits[0], c)
	}
	kept = append(kept, ws[i:]...)
	s.watches[f] = kept
	return conflict
}

// analyze derives a first-UIP clause from a conflict and the level to jump
// back to.
func (s *sat) analyze(confl *clause) ([]lit, int) {
	learnt := []lit{0}
	pathC := 0
	var p lit = -1
	idx := len(s.trail) - 1
	c := confl
	cur := int32(s.decisionLevel())
	for {
		start := 0
		if p != -1 {
			start = 1 // lits[0] of a reason clause is the literal it implied
		}
		for _, q := range c.lits[start:] {
			v := q.v()
			if s.seen[v] || s.level[v] == 0 {
				continue
			}
			s.seen[v] = true
			if s.level[v] == cur {
				pathC++
			} else {
				learnt = append(learnt, q)
			}
		}
		for !s.seen[s.trail[idx].v()] {
			idx--
		}
		p = s.trail[idx]
		idx--
		s.seen[p.v()] = false
		pathC--
		if pathC == 0 {
			break
		}
		c = s.reason[p.v()]
	}
	learnt[0] = p.not()
	back := 0
	for i := 1; i < len(learnt); i++ {
		if l := int(s.level[learnt[i].v()]); l > back {
			back = l
			learnt[1], learnt[i] = learnt[i], learnt[1]
		}
	}
	for _, l := range learnt[1:] {
		s.seen[l.v()] = false
	}
	return learnt, back
}

func (s *sat) cancelUntil(level int) {
	if s.decisionLevel() <= level {
		return
	}
	for i := len(s.trail) - 1; i >= s.lim[level]; i-- {
		v := s.trail[i].v()
		s.value[v] = 0
		s.reason[v] = nil
	}
	s.trail = s.trail[:s.lim[level]]
	s.lim = s.lim[:level]
	s.qhead = len(s.trail)
}

// decide opens a new decision level with l true and propagates, learning
// from conflicts until propagation succeeds. It returns false when the
// problem is unsatisfiable.
func (s *sat) decide(l lit) bool {
	s.lim = append(s.lim, len(s.trail))
	s.assign(l, nil)
	return s.settle()
}

// settle propagates and resolves conflicts by learning and backjumping.
func (s *sat) settle() bool {
	for {
		confl := s.propagate()
		if confl == nil {
			return true
		}
		if s.decisionLevel() == 0 {
			s.unsat = true
			return false
		}
		learnt, back := s.analyze(confl)
		s.cancelUntil(back)
		s.learnts++
		if len(learnt) == 1 {
			s.assign(learnt[0], nil)
			continue
		}
		c := &clause{lits: learnt}
		s.watch(c)
		s.assign(learnt[0], c)
	}
}
