// Package solve picks one record per package name out of conda channels so
// that the requested specs, every dependency and every constraint hold: a
// conflict-driven clause-learning (CDCL) SAT search whose decisions follow
// the preferences of rattler and mamba (no track_features first, channel
// priority, highest version, highest build number, newest timestamp, and
// the requested packages decided first, in the order they were requested).
//
// It is complete: when it reports a request as unsatisfiable, no choice of
// records satisfies it, and the error explains which requested specs
// conflict through which packages. It never fetches anything and never
// mutates the records it is given.
package solve
