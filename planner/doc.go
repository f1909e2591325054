// Package planner turns an evaluated configuration into a graph of actions
// (environments, targets, publishes), gives every action a content-addressed
// cache key, and executes what is not cached in parallel.
//
// A key is the sha256 of a canonical JSON pre-image: a versioned action type,
// the kind, the builder's version, the normalized configuration, the digests
// of declared input files and the output digests of the dependencies. Because
// dependencies contribute their output digests, not their keys, a dependency
// that is rebuilt into identical bytes rebuilds nothing downstream.
//
// The planner reads configuration and hashes inputs while planning; only
// execution writes, and every write is atomic. It never imports a concrete
// builder or publisher: they come from registries.
package planner
