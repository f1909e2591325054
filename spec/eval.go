package spec

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// EvalContext returns the evaluation context for expressions written in a
// file located in baseDir: var, local, path.root, and the addresses of
// environments, targets and publishes as strings, plus every function, with
// relative paths in file functions resolving against baseDir. env is present
// but fails, since it is only allowed in variable defaults.
func (c *Config) EvalContext(baseDir string) *hcl.EvalContext {
	vars := c.addressVariables()
	vars["var"] = c.varObject()
	locals := map[string]cty.Value{}
	for name, l := range c.Locals {
		locals[name] = valueOrUnknown(l.Value)
	}
	vars["local"] = objectOrEmpty(locals)
	return &hcl.EvalContext{Variables: vars, Functions: functions(baseDir, nil)}
}

func valueOrUnknown(v cty.Value) cty.Value {
	if v == cty.NilVal {
		return cty.DynamicVal
	}
	return v
}

func objectOrEmpty(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

func (c *Config) varObject() cty.Value {
	m := map[string]cty.Value{}
	for name, v := range c.Variables {
		m[name] = valueOrUnknown(v.Value)
	}
	return objectOrEmpty(m)
}

// addressVariables returns path, environment, target and publish. Blocks
// evaluate to their own address so that builder configs receive addresses
// they can resolve to artifacts, not copies of other blocks' contents.
func (c *Config) addressVariables() map[string]cty.Value {
	envs := map[string]cty.Value{}
	for name, e := range c.Environments {
		envs[name] = cty.StringVal(e.Address)
	}
	nested := func(addrs []string) cty.Value {
		byKind := map[string]map[string]cty.Value{}
		for _, a := range addrs {
			parts := strings.SplitN(a, ".", 3)
			if len(parts) != 3 {
				continue
			}
			if byKind[parts[1]] == nil {
				byKind[parts[1]] = map[string]cty.Value{}
			}
			byKind[parts[1]][parts[2]] = cty.StringVal(a)
		}
		out := map[string]cty.Value{}
		for k, names := range byKind {
			out[k] = cty.ObjectVal(names)
		}
		return objectOrEmpty(out)
	}
	return map[string]cty.Value{
		"path":        cty.ObjectVal(map[string]cty.Value{"root": cty.StringVal(c.Dir)}),
		"environment": objectOrEmpty(envs),
		"target":      nested(mapKeys(c.Targets)),
		"publish":     nested(mapKeys(c.Publishes)),
	}
}

// evalContext builds the context for evaluating an expression during
// loading. Only the locals the expression refers to are included, which
// keeps evaluation linear in the number of references. Declared but not yet
// decoded blocks are included too, so that references between blocks
// resolve regardless of declaration order.
func (d *decoder) evalContext(baseDir string, refs []Reference) *hcl.EvalContext {
	// Built once: by the time anything is evaluated with this context,
	// every block is declared and every variable has its final value.
	if d.baseVars == nil {
		d.baseVars = d.addressVars()
		vals := map[string]cty.Value{}
		for name, v := range d.c.Variables {
			vals[name] = valueOrUnknown(v.Value)
		}
		for a := range d.c.broken {
			if name, ok := strings.CutPrefix(a, "var."); ok {
				vals[name] = cty.DynamicVal
			}
		}
		d.baseVars["var"] = objectOrEmpty(vals)
	}
	vars := make(map[string]cty.Value, len(d.baseVars)+1)
	for k, v := range d.baseVars {
		vars[k] = v
	}
	locals := map[string]cty.Value{}
	for _, r := range refs {
		if name, ok := strings.CutPrefix(r.Address, "local."); ok {
			if l, ok := d.c.Locals[name]; ok {
				locals[name] = valueOrUnknown(l.Value)
			}
		}
	}
	vars["local"] = objectOrEmpty(locals)
	return &hcl.EvalContext{Variables: vars, Functions: d.functions(baseDir)}
}

func (d *decoder) functions(baseDir string) map[string]function.Function {
	if f, ok := d.funcs[baseDir]; ok {
		return f
	}
	f := functions(baseDir, nil)
	d.funcs[baseDir] = f
	return f
}

// defaultFunctions are the functions for variable defaults, where env works.
func (d *decoder) defaultFunctions(baseDir string) map[string]function.Function {
	key := "\x00env:" + baseDir
	if f, ok := d.funcs[key]; ok {
		return f
	}
	f := functions(baseDir, d.environ)
	d.funcs[key] = f
	return f
}

func (d *decoder) addressVars() map[string]cty.Value {
	envs := map[string]cty.Value{}
	c := &Config{Dir: d.c.Dir, Targets: map[string]*Target{}, Publishes: map[string]*Publish{}}
	// Rejected blocks are included so that references to them evaluate
	// quietly: their own diagnostic is the root cause.
	addrs := mapKeys(d.declared)
	for a := range d.c.broken {
		addrs = append(addrs, a)
	}
	for _, addr := range addrs {
		switch {
		case strings.HasPrefix(addr, "environment."):
			envs[strings.TrimPrefix(addr, "environment.")] = cty.StringVal(addr)
		case strings.HasPrefix(addr, "target."):
			c.Targets[addr] = nil
		case strings.HasPrefix(addr, "publish."):
			c.Publishes[addr] = nil
		}
	}
	vars := c.addressVariables()
	vars["environment"] = objectOrEmpty(envs)
	return vars
}

// Sensitive reports whether the value at addr ("var.x" or "local.y") is or
// derives from a sensitive variable, so that callers printing values can
// mask it. Sensitivity is tracked through references, not through values:
// a local that mentions a sensitive variable counts as sensitive.
func (c *Config) Sensitive(addr string) bool {
	seen := map[string]bool{}
	queue := []string{addr}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		if seen[a] {
			continue
		}
		seen[a] = true
		if name, ok := strings.CutPrefix(a, "var."); ok {
			if v := c.Variables[name]; v != nil && v.Sensitive {
				return true
			}
			continue
		}
		if name, ok := strings.CutPrefix(a, "local."); ok {
			for _, r := range c.localRefs[name] {
				queue = append(queue, r.Address)
			}
		}
	}
	return false
}
