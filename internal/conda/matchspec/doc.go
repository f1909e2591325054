// Package matchspec parses conda version specifiers and MatchSpec strings
// (CEP 29) and tests package records against them.
//
// It must never guess: a spec it cannot read is an error naming the spec
// text and what is wrong, never a spec that silently matches everything.
// It does no I/O.
package matchspec
