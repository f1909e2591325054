// Package spec turns sparkenv HCL files (env.hcl) into an evaluated,
// source-shaped configuration: variables with their final values, locals,
// environments decoded into Go structs, and targets and publishes whose
// kind-specific bodies are kept undecoded for their builders and publishers.
//
// Everything that can go wrong is reported as hcl.Diagnostics with the
// narrowest source range; loading keeps going after errors and skips only the
// broken item, so one run shows every problem. References between blocks are
// static addresses ("target.pyfiles.app") found without evaluating anything,
// so the planner can turn them into graph edges.
//
// The package must never do I/O besides reading configuration files, variable
// files and the files named by the file functions (file, fileset, filesha256);
// it never writes, never runs processes, never reads the process environment
// (only LoadOptions.Environ), and it must never import a builder or publisher.
// No function available to configuration may depend on the clock or on
// randomness, so that evaluating the same files twice gives the same values.
package spec
