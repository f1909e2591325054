// Package spec turns sparkenv HCL files (env.hcl) into an evaluated,
// source-shaped configuration: variables with their final values, locals,
// environments decoded into Go structs, and targets and publishes whose
// kind-specific bodies are kept undecoded for their builders and publishers.
//
// Loading runs in a fixed order: every block of every file is declared first
// (so references may point anywhere), then variables get their values
// (default < SPARKENV_VAR_* < -var-file < -var), then locals are evaluated in
// dependency order, then environments, targets and publishes are decoded.
// References between blocks are static addresses ("target.pyfiles.app")
// found without evaluating anything, so the planner can turn them into graph
// edges; in expressions, environment, target and publish references evaluate
// to their address string.
//
// Everything that can go wrong is reported as hcl.Diagnostics with the
// narrowest source range; loading keeps going after errors and skips only the
// broken item, and references to a rejected item are not reported again, so
// one run shows every root cause once.
//
// The package must never do I/O besides reading configuration files, variable
// files and the files named by the file functions (file, fileset,
// filesha256); it never writes, never runs processes, never reads the process
// environment (only LoadOptions.Environ, and env() only in variable
// defaults), and it must never import a builder or publisher. No function
// available to configuration may depend on the clock or on randomness, so
// evaluating the same files twice gives the same values.
package spec
