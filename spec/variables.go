package spec

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvPrefix marks environment variables that set input variables:
// SPARKENV_VAR_region sets var.region.
const EnvPrefix = "SPARKENV_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"},
		{Name: "default"},
		{Name: "description"},
		{Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var typeKeywordRe = regexp.MustCompile(`^The keyword "([^"]*)" is not a valid type specification\.$`)

var typeKeywords = []string{"string", "number", "bool", "any", "list", "map", "set", "object", "tuple", "optional"}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true},
		{Name: "error_message", Required: true},
	},
}

type validation struct {
	cond, msg hcl.Expression
}

// varState tracks one variable through the value layers.
type varState struct {
	p           *pendingVar
	defaults    *typeexpr.Defaults
	failed      bool // type or default broken: the cause is reported, the value stays unknown
	hasDefault  bool
	defVal      cty.Value
	defRange    hcl.Range
	set         bool // a layer above the default set a value
	valFailed   bool // that value could not be parsed (reported)
	val         cty.Value
	valRange    hcl.Range
	source      string
	from        string // for details: where the value came from
	literal     bool   // raw text is taken as a string, not parsed as HCL
	validations []validation
}

func (d *decoder) decodeVariables() {
	states := map[string]*varState{}
	var order []*varState
	for _, p := range d.vars {
		st := d.decodeVariableBlock(p)
		states[p.v.Name] = st
		order = append(order, st)
	}

	// Layers in increasing precedence; each replaces the previous value.
	var envNames []string
	for k := range d.environ {
		if strings.HasPrefix(k, EnvPrefix) && len(k) > len(EnvPrefix) {
			envNames = append(envNames, k)
		}
	}
	sort.Strings(envNames)
	for _, k := range envNames {
		name := strings.TrimPrefix(k, EnvPrefix)
		fname := fmt.Sprintf("<environment variable %s>", k)
		st, ok := states[name]
		if !ok {
			if d.c.broken["var."+name] {
				continue
			}
			r := d.syntheticSource(fname, d.environ[k])
			d.add(&hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Value for undeclared variable",
				Detail: fmt.Sprintf("The environment variable %s sets var.%s, but no variable %q is declared, so the value is ignored.%s Declare the variable, or unset %s.",
					k, name, name, didYouMean(name, mapKeys(states)), k),
				Subject: &r,
			})
			continue
		}
		d.setRaw(st, d.environ[k], fname, "environment", "from "+k)
	}
	for _, vf := range d.opts.VarFiles {
		d.readVarFile(vf, states)
	}
	var flagNames []string
	for k := range d.opts.Vars {
		flagNames = append(flagNames, k)
	}
	sort.Strings(flagNames)
	for _, name := range flagNames {
		raw := d.opts.Vars[name]
		fname := fmt.Sprintf("<value for var.%s>", name)
		st, ok := states[name]
		if !ok && d.c.broken["var."+name] {
			continue
		}
		if !ok {
			r := d.syntheticSource(fname, raw)
			d.errorf(&r, "Value for undeclared variable",
				"A value was given for var.%s with -var, but no variable %q is declared.%s Declare it with a variable block, or remove the -var flag.",
				name, name, didYouMean(name, mapKeys(states)))
			continue
		}
		d.setRaw(st, raw, fname, "flag", "given with -var")
	}

	for _, st := range order {
		d.finishVariable(st)
	}
}

// syntheticSource registers text that did not come from a file (a -var flag,
// an environment variable) under a made-up name, so that diagnostics about
// it can quote it, and returns its range.
func (d *decoder) syntheticSource(fname, text string) hcl.Range {
	d.c.Files[fname] = &hcl.File{Body: hcl.EmptyBody(), Bytes: []byte(text)}
	return syntheticRange(fname, text)
}

func syntheticRange(filename, text string) hcl.Range {
	line, col := 1, 1
	for _, r := range text {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return hcl.Range{
		Filename: filename,
		Start:    hcl.InitialPos,
		End:      hcl.Pos{Line: line, Column: col, Byte: len(text)},
	}
}

func (d *decoder) decodeVariableBlock(p *pendingVar) *varState {
	st := &varState{p: p, literal: true}
	v := p.v
	content, diags := p.block.Body.Content(variableSchema)
	d.add(diags...)

	if attr, ok := content.Attributes["type"]; ok {
		ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(attr.Expr)
		for _, diag := range diags {
			if m := typeKeywordRe.FindStringSubmatch(diag.Detail); m != nil {
				diag.Detail += didYouMean(m[1], typeKeywords) +
					" Types are written like string, number, bool, list(string), map(number) or object({ name = string })."
			}
		}
		d.add(diags...)
		if diags.HasErrors() {
			st.failed = true
		} else {
			v.Type = ty
			st.defaults = defaults
			// Text from -var and the environment is parsed as an HCL
			// expression unless the variable is a plain string, so that
			// lists and maps can be given on the command line.
			st.literal = ty == cty.String || ty == cty.DynamicPseudoType
		}
	}
	if attr, ok := content.Attributes["description"]; ok {
		if s, ok := d.staticString(attr, "description"); ok {
			v.Description = s
		}
	}
	if attr, ok := content.Attributes["sensitive"]; ok {
		val, diags := attr.Expr.Value(nil)
		d.add(diags...)
		if !diags.HasErrors() {
			b, err := convert.Convert(val, cty.Bool)
			if err != nil || b.IsNull() || !b.IsKnown() {
				d.errorf(attr.Expr.Range().Ptr(), "Invalid sensitive", "sensitive must be true or false.")
			} else {
				v.Sensitive = b.True()
			}
		}
	}
	if attr, ok := content.Attributes["default"]; ok {
		st.hasDefault = true
		st.defRange = attr.Expr.Range()
		if _, ok := d.checkExpr(attr.Expr, scope{noRefs: true, env: true}); !ok {
			st.failed = true
		} else {
			ctx := &hcl.EvalContext{Functions: d.defaultFunctions(p.file.baseDir)}
			val, diags := attr.Expr.Value(ctx)
			d.add(diags...)
			if diags.HasErrors() {
				st.failed = true
			} else if !st.failed {
				if conv, ok := d.convertValue(st, val, st.defRange, "default value"); ok {
					st.defVal = conv
				} else {
					st.failed = true
				}
			}
		}
	}
	for _, b := range content.Blocks {
		vc, diags := b.Body.Content(validationSchema)
		d.add(diags...)
		cond, okc := vc.Attributes["condition"]
		msg, okm := vc.Attributes["error_message"]
		if !okc || !okm {
			continue
		}
		_, ok1 := d.checkExpr(cond.Expr, scope{onlyVar: v.Name})
		_, ok2 := d.checkExpr(msg.Expr, scope{onlyVar: v.Name})
		if ok1 && ok2 {
			st.validations = append(st.validations, validation{cond: cond.Expr, msg: msg.Expr})
		}
	}
	return st
}

// staticString evaluates an attribute that must be a literal string.
func (d *decoder) staticString(attr *hcl.Attribute, what string) (string, bool) {
	val, diags := attr.Expr.Value(nil)
	d.add(diags...)
	if diags.HasErrors() {
		return "", false
	}
	s, err := convert.Convert(val, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid "+what, "The %s must be a string.", what)
		return "", false
	}
	return s.AsString(), true
}

// convertValue applies optional-attribute defaults and converts val to the
// variable's type, reporting a mismatch at rng.
func (d *decoder) convertValue(st *varState, val cty.Value, rng hcl.Range, from string) (out cty.Value, ok bool) {
	v := st.p.v
	if st.defaults != nil && val.IsWhollyKnown() {
		val = st.defaults.Apply(val)
	}
	out, err := convert.Convert(val, v.Type)
	if err != nil {
		d.errorf(&rng, "Invalid value for variable",
			"The %s for var.%s is not a valid %s: %s. Give a value of the declared type.",
			from, v.Name, typeexpr.TypeString(v.Type), convertError(err))
		return cty.DynamicVal, false
	}
	return out, true
}

func convertError(err error) string {
	pe, ok := err.(cty.PathError)
	if !ok || len(pe.Path) == 0 {
		return err.Error()
	}
	var b strings.Builder
	for _, s := range pe.Path {
		switch s := s.(type) {
		case cty.GetAttrStep:
			b.WriteString("." + s.Name)
		case cty.IndexStep:
			if s.Key.Type() == cty.String && s.Key.IsKnown() {
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			} else if s.Key.Type() == cty.Number && s.Key.IsKnown() {
				fmt.Fprintf(&b, "[%s]", s.Key.AsBigFloat().Text('f', -1))
			} else {
				b.WriteString("[...]")
			}
		}
	}
	return fmt.Sprintf("at %s: %s", strings.TrimPrefix(b.String(), "."), pe.Error())
}

// setRaw applies a value given as text (-var or environment).
func (d *decoder) setRaw(st *varState, raw, fname, source, from string) {
	rng := d.syntheticSource(fname, raw)
	if st.literal {
		d.setValue(st, cty.StringVal(raw), rng, source, from)
		return
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), fname, hcl.InitialPos)
	if !diags.HasErrors() {
		var val cty.Value
		val, diags = expr.Value(nil)
		if !diags.HasErrors() {
			d.setValue(st, val, expr.Range(), source, from)
			return
		}
	}
	// A broken value still counts as set, so that no "missing value" error
	// follows the parse error.
	st.set, st.val, st.valRange, st.source, st.valFailed = true, cty.DynamicVal, rng, source, true
	msg := diags[0].Summary
	if diags[0].Detail != "" {
		msg += ": " + strings.TrimSuffix(diags[0].Detail, ".")
	}
	d.errorf(&rng, "Invalid value for variable",
		"The value %s for var.%s cannot be parsed (%s). Values of type %s are written as HCL expressions, for example %s.",
		from, st.p.v.Name, msg, typeexpr.TypeString(st.p.v.Type), exampleFor(st.p.v.Type))
}

func exampleFor(ty cty.Type) string {
	switch {
	case ty == cty.Number:
		return "42"
	case ty == cty.Bool:
		return "true"
	case ty.IsListType(), ty.IsSetType(), ty.IsTupleType():
		return `["a", "b"]`
	case ty.IsMapType(), ty.IsObjectType():
		return `{ key = "value" }`
	}
	return `"text"`
}

func (d *decoder) setValue(st *varState, val cty.Value, rng hcl.Range, source, from string) {
	st.set, st.val, st.valRange, st.source, st.from, st.valFailed = true, val, rng, source, from, false
}

func (d *decoder) readVarFile(path string, states map[string]*varState) {
	p := resolvePath(d.c.Dir, path)
	data, err := os.ReadFile(p)
	if err != nil {
		d.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read variable file",
			Detail:   fmt.Sprintf("Reading %s failed: %s. Check the -var-file path; relative paths resolve against %s.", p, err, d.c.Dir),
		})
		return
	}
	name := displayName(d.c.Dir, p)
	f, diags := hclsyntax.ParseConfig(data, name, hcl.InitialPos)
	d.add(diags...)
	if f == nil {
		return
	}
	if _, ok := d.c.fileOrder[name]; !ok {
		d.c.fileOrder[name] = len(d.c.fileOrder)
	}
	d.c.Files[name] = f
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return
	}
	for _, b := range body.Blocks {
		d.errorf(b.TypeRange.Ptr(), "Unexpected block in variable file",
			"A variable file holds only name = value arguments; blocks such as %q belong in the configuration.", b.Type)
	}
	for _, attr := range sortedAttrs(body.Attributes) {
		st, ok := states[attr.Name]
		if !ok {
			if d.c.broken["var."+attr.Name] {
				continue
			}
			d.errorf(attr.NameRange.Ptr(), "Value for undeclared variable",
				"This file sets var.%s, but no variable %q is declared.%s Declare it with a variable block, or remove the line.",
				attr.Name, attr.Name, didYouMean(attr.Name, mapKeys(states)))
			continue
		}
		val, diags := attr.Expr.Value(nil)
		d.add(diags...)
		if diags.HasErrors() {
			st.set, st.val, st.valRange, st.source, st.valFailed = true, cty.DynamicVal, attr.Expr.Range(), "var-file", true
			continue
		}
		d.setValue(st, val, attr.Expr.Range(), "var-file", "in "+name)
	}
}

func (d *decoder) finishVariable(st *varState) {
	v := st.p.v
	v.Value = cty.DynamicVal
	switch {
	case st.set:
		v.ValueRange, v.Source = st.valRange, st.source
		if st.failed || st.valFailed {
			return
		}
		val, ok := d.convertValue(st, st.val, st.valRange, "value "+st.from)
		if !ok {
			return
		}
		v.Value = val
	case st.hasDefault:
		v.ValueRange, v.Source = st.defRange, "default"
		if st.failed {
			return
		}
		v.Value = st.defVal
	default:
		if st.failed {
			return
		}
		d.errorf(v.DeclRange.Ptr(), "No value for required variable",
			"The variable %q has no default, so it needs a value: pass -var '%s=...', add %s = ... to a -var-file, or set %s%s in the environment.",
			v.Name, v.Name, v.Name, EnvPrefix, v.Name)
		return
	}
	d.validate(st)
}

func (d *decoder) validate(st *varState) {
	v := st.p.v
	if !v.Value.IsWhollyKnown() {
		return
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.Name: v.Value})},
		Functions: d.functions(st.p.file.baseDir),
	}
	for _, val := range st.validations {
		res, diags := val.cond.Value(ctx)
		d.add(diags...)
		if diags.HasErrors() {
			continue
		}
		cond, err := convert.Convert(res, cty.Bool)
		if err != nil || cond.IsNull() {
			d.errorf(val.cond.Range().Ptr(), "Invalid validation condition",
				"The condition must give true or false, not %s. Write a comparison or a function call that returns a bool.", res.Type().FriendlyName())
			continue
		}
		if !cond.IsKnown() || cond.True() {
			continue
		}
		msg := "The value does not satisfy the validation rule."
		if m, diags := val.msg.Value(ctx); !diags.HasErrors() {
			if s, err := convert.Convert(m, cty.String); err == nil && s.IsKnown() && !s.IsNull() && utf8.ValidString(s.AsString()) {
				msg = strings.TrimSpace(s.AsString())
			}
		} else {
			d.add(diags...)
		}
		d.errorf(v.ValueRange.Ptr(), "Invalid value for variable",
			"%s\n\nThis was checked by the validation rule at %s. Give var.%s a value that satisfies it.",
			msg, posString(val.cond.Range()), v.Name)
	}
}
