// Package version parses and orders conda package versions (CEP 33).
//
// It reproduces conda's own ordering (VersionOrder) so that a solve by
// sparkenv picks the same "newest" package conda would. It must never
// accept a version conda rejects silently, nor reorder versions in a way
// that differs from conda; every deviation is a conformance bug.
package version
