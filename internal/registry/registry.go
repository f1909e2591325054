// Package registry maps kind names to implementations (builders,
// publishers). Registration is explicit; registering a kind twice is a
// programming error and panics.
package registry

import (
	"fmt"
	"sort"
	"sync"
)

// Kinded is anything with a kind name.
type Kinded interface{ Kind() string }

// Registry maps kinds to values of T.
type Registry[T Kinded] struct {
	what  string // "builders", "publishers": for the panic message
	mu    sync.RWMutex
	kinds map[string]T
}

// New returns a registry holding vs.
func New[T Kinded](what string, vs ...T) *Registry[T] {
	r := &Registry[T]{what: what, kinds: map[string]T{}}
	for _, v := range vs {
		r.Register(v)
	}
	return r
}

// Register adds v; registering a kind twice panics.
func (r *Registry[T]) Register(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.kinds[v.Kind()]; dup {
		panic(fmt.Sprintf("%s: kind %q registered twice", r.what, v.Kind()))
	}
	r.kinds[v.Kind()] = v
}

// Lookup returns the value of kind.
func (r *Registry[T]) Lookup(kind string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.kinds[kind]
	return v, ok
}

// Kinds returns the registered kinds, sorted.
func (r *Registry[T]) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
