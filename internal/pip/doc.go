// Package pip resolves pip requirements to exact wheels for a target that
// is not this machine (another platform, glibc or Python), by running the
// real pip's resolver with --platform/--python-version/--abi and reading
// its installation report; it fetches locked wheels into the shared,
// content-addressed package cache; and it writes PEP 503/691 simple
// indexes that pip installs from.
//
// It never lets pip build anything (only wheels are accepted: sdists would
// run arbitrary code for the wrong platform), never reads the user's pip
// configuration, and never installs into any Python environment.
package pip
