package spec

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Platforms are the conda subdirs sparkenv knows; an environment targets
// exactly one.
var Platforms = []string{
	"linux-64", "linux-aarch64", "linux-ppc64le", "linux-s390x", "linux-armv6l", "linux-armv7l",
	"linux-riscv64", "linux-32", "linux-ppc64",
	"osx-64", "osx-arm64",
	"win-64", "win-arm64", "win-32",
	"emscripten-wasm32", "wasi-wasm32", "zos-z",
	"noarch",
}

// DefaultPrefix is where an environment lives on cluster nodes unless its
// prefix says otherwise.
const DefaultPrefix = "/opt/conda"

var environmentSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "platform"},
		{Name: "channels"},
		{Name: "dependencies"},
		{Name: "virtual_packages"},
		{Name: "channel_priority"},
		{Name: "prefix"},
		{Name: "pip"},
		{Name: "pip_index"},
		{Name: "pip_find_links"},
	},
}

var windowsAbs = regexp.MustCompile(`^[A-Za-z]:[\\/]`)

// evalAttr statically checks and evaluates one attribute. ok is false when
// the value is unusable: a problem was reported, or the value depends on
// something that failed earlier (unknown), which was reported there.
func (d *decoder) evalAttr(attr *hcl.Attribute, baseDir string, refs *[]Reference) (cty.Value, bool) {
	rs, ok := d.checkExpr(attr.Expr, scope{})
	*refs = append(*refs, rs...)
	if !ok {
		return cty.DynamicVal, false
	}
	val, diags := attr.Expr.Value(d.evalContext(baseDir, rs))
	d.add(diags...)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return cty.DynamicVal, false
	}
	return val, true
}

func (d *decoder) asString(attr *hcl.Attribute, val cty.Value) (string, bool) {
	s, err := convert.Convert(val, cty.String)
	if err != nil || s.IsNull() {
		d.errorf(attr.Expr.Range().Ptr(), fmt.Sprintf("Invalid %s", attr.Name),
			"%s must be a string, not %s.", attr.Name, friendly(val))
		return "", false
	}
	return s.AsString(), true
}

func friendly(val cty.Value) string {
	if val.IsNull() {
		return "null"
	}
	return val.Type().FriendlyName()
}

// asStrings converts a list and also returns the range of each element when
// the expression is a literal tuple, else the whole expression's range.
func (d *decoder) asStrings(attr *hcl.Attribute, val cty.Value) ([]string, []hcl.Range, bool) {
	l, err := convert.Convert(val, cty.List(cty.String))
	if err != nil || l.IsNull() {
		d.errorf(attr.Expr.Range().Ptr(), fmt.Sprintf("Invalid %s", attr.Name),
			"%s must be a list of strings, like [\"a\", \"b\"], not %s.", attr.Name, friendly(val))
		return nil, nil, false
	}
	elems := l.AsValueSlice()
	var ranges []hcl.Range
	tup, isTuple := attr.Expr.(*hclsyntax.TupleConsExpr)
	if isTuple && len(tup.Exprs) != len(elems) {
		isTuple = false
	}
	out := make([]string, 0, len(elems))
	ok := true
	for i, e := range elems {
		r := attr.Expr.Range()
		if isTuple {
			r = tup.Exprs[i].Range()
		}
		if e.IsNull() {
			d.errorf(&r, fmt.Sprintf("Invalid %s", attr.Name), "The elements of %s must not be null; remove the element.", attr.Name)
			ok = false
			continue
		}
		out = append(out, e.AsString())
		ranges = append(ranges, r)
	}
	return out, ranges, ok
}

func (d *decoder) decodeEnvironment(p *pendingBlock) {
	b := p.block
	name := b.Labels[0]
	e := &Environment{
		Name:            name,
		Address:         p.addr,
		ChannelPriority: "strict",
		Prefix:          DefaultPrefix,
		DeclRange:       b.DefRange(),
		AttrRanges:      map[string]hcl.Range{},
		BaseDir:         p.file.baseDir,
	}
	d.c.Environments[name] = e
	content, diags := b.Body.Content(environmentSchema)
	d.add(diags...)
	for _, req := range []struct{ name, example string }{
		{"platform", `platform = "linux-64"`},
		{"channels", `channels = ["conda-forge"]`},
	} {
		if _, ok := content.Attributes[req.name]; !ok {
			d.errorf(e.DeclRange.Ptr(), "Missing required argument",
				"The environment %q has no %s. Add one, for example %s.", name, req.name, req.example)
		}
	}
	// Unsupported arguments are not in content; still collect their
	// references so the environment's edges are complete.
	var refs []Reference
	known := map[string]bool{}
	for _, a := range environmentSchema.Attributes {
		known[a.Name] = true
	}
	for _, attr := range sortedAttrs(b.Body.Attributes) {
		if !known[attr.Name] {
			rs, _ := d.checkExpr(attr.Expr, scope{})
			refs = append(refs, rs...)
		}
	}
	for _, a := range environmentSchema.Attributes {
		attr, ok := content.Attributes[a.Name]
		if !ok {
			continue
		}
		e.AttrRanges[a.Name] = attr.Range
		val, ok := d.evalAttr(attr, p.file.baseDir, &refs)
		if !ok {
			continue
		}
		if val.IsNull() {
			// null means "not set", so a variable can leave an optional
			// argument at its default.
			if a.Name == "platform" || a.Name == "channels" {
				d.errorf(attr.Expr.Range().Ptr(), "Missing required argument",
					"The environment %q needs a %s, but the expression is null. Give it a value.", name, a.Name)
			}
			continue
		}
		d.environmentAttr(e, attr, val)
	}
	e.Refs = d.c.finishRefs(refs)
}

func (d *decoder) environmentAttr(e *Environment, attr *hcl.Attribute, val cty.Value) {
	exprRange := attr.Expr.Range()
	switch attr.Name {
	case "platform":
		s, ok := d.asString(attr, val)
		if !ok {
			return
		}
		for _, p := range Platforms {
			if s == p {
				e.Platform = s
				return
			}
		}
		d.errorf(&exprRange, "Unknown platform",
			"%q is not a conda platform.%s Use one of %s.", s, didYouMean(s, Platforms), strings.Join(Platforms, ", "))
	case "channels":
		list, ranges, ok := d.asStrings(attr, val)
		if !ok {
			return
		}
		if len(list) == 0 {
			d.errorf(&exprRange, "No channels",
				"An environment needs at least one channel to install packages from; add one, for example channels = [\"conda-forge\"].")
			return
		}
		for i, ch := range list {
			if strings.TrimSpace(ch) == "" {
				d.errorf(&ranges[i], "Empty channel", "A channel must be a name like \"conda-forge\" or a URL; remove the empty entry.")
				return
			}
		}
		e.Channels = list
	case "dependencies":
		list, ranges, ok := d.asStrings(attr, val)
		if !ok {
			return
		}
		var deps []string
		var depRanges []hcl.Range
		for i, s := range list {
			switch {
			case strings.TrimSpace(s) == "":
				d.errorf(&ranges[i], "Empty package spec", "A dependency must be a MatchSpec like \"numpy >=1.26\"; remove the empty entry.")
				continue
			case d.opts.ValidateSpec != nil:
				if err := d.opts.ValidateSpec(s); err != nil {
					d.errorf(&ranges[i], "Invalid package spec",
						"%q is not a valid conda MatchSpec: %s. Write specs like \"numpy >=1.26\", \"python 3.11.*\" or \"conda-forge::pyarrow\".", s, err)
					continue
				}
			}
			deps = append(deps, s)
			depRanges = append(depRanges, ranges[i])
		}
		e.Dependencies, e.DependencyRanges = deps, depRanges
	case "virtual_packages":
		m, err := convert.Convert(val, cty.Map(cty.String))
		if err != nil || m.IsNull() {
			d.errorf(&exprRange, "Invalid virtual_packages",
				"virtual_packages must be a map from virtual package name to version, like { __glibc = \"2.17\", __cuda = \"12.2\" }, not %s.", friendly(val))
			return
		}
		out := map[string]string{}
		vals := m.AsValueMap()
		for _, k := range mapKeys(vals) {
			v := vals[k]
			if !strings.HasPrefix(k, "__") {
				r := objectKeyRange(attr.Expr, k)
				d.errorf(&r, "Invalid virtual package name",
					"%q is not a virtual package: their names start with two underscores, like \"__glibc\" or \"__cuda\". Rename it to %q.", k, "__"+strings.TrimLeft(k, "_"))
				continue
			}
			if v.IsNull() {
				r := objectKeyRange(attr.Expr, k)
				d.errorf(&r, "Invalid virtual package version", "The version of %q must be a string like \"2.17\", not null.", k)
				continue
			}
			out[k] = v.AsString()
		}
		e.VirtualPackages = out
	case "channel_priority":
		s, ok := d.asString(attr, val)
		if !ok {
			return
		}
		if s != "strict" && s != "flexible" {
			d.errorf(&exprRange, "Invalid channel_priority",
				"%q is not a channel priority.%s Use \"strict\" (packages come from the first channel that has them) or \"flexible\".",
				s, didYouMean(s, []string{"strict", "flexible"}))
			return
		}
		e.ChannelPriority = s
	case "prefix":
		s, ok := d.asString(attr, val)
		if !ok {
			return
		}
		if !path.IsAbs(s) && !windowsAbs.MatchString(s) {
			d.errorf(&exprRange, "Prefix must be absolute",
				"The prefix %q is not an absolute path. The prefix is where the environment lives on the cluster nodes, so it must be absolute, for example %q.",
				s, path.Join(DefaultPrefix, "envs", e.Name))
			return
		}
		e.Prefix = s
	case "pip":
		list, ranges, ok := d.asStrings(attr, val)
		if !ok {
			return
		}
		for i, s := range list {
			if strings.TrimSpace(s) == "" {
				d.errorf(&ranges[i], "Empty pip requirement", "A pip requirement must be like \"requests>=2\"; remove the empty entry.")
				return
			}
		}
		e.Pip = list
	case "pip_index":
		if s, ok := d.asString(attr, val); ok {
			e.PipIndex = s
		}
	case "pip_find_links":
		list, _, ok := d.asStrings(attr, val)
		if !ok {
			return
		}
		out := make([]string, len(list))
		for i, s := range list {
			if strings.Contains(s, "://") {
				out[i] = s
			} else {
				out[i] = resolvePath(e.BaseDir, s)
			}
		}
		e.PipFindLinks = out
	}
}

// objectKeyRange finds the range of key in a literal object expression, or
// falls back to the whole expression.
func objectKeyRange(expr hcl.Expression, key string) hcl.Range {
	if obj, ok := expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			k, diags := item.KeyExpr.Value(nil)
			if diags.HasErrors() || !k.IsKnown() || k.IsNull() {
				continue
			}
			if ks, err := convert.Convert(k, cty.String); err == nil && ks.AsString() == key {
				return item.KeyExpr.Range()
			}
		}
	}
	return expr.Range()
}

var targetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "depends_on"}, {Name: "description"}},
}

var publishSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "targets"}, {Name: "depends_on"}, {Name: "description"}},
}

// bodyRefs validates every expression of a block (attributes of nested
// blocks included) and returns the references found.
func (d *decoder) bodyRefs(body *hclsyntax.Body) []Reference {
	var refs []Reference
	walkBody(body, func(a *hclsyntax.Attribute) {
		rs, _ := d.checkExpr(a.Expr, scope{})
		refs = append(refs, rs...)
	})
	return refs
}

// addressList decodes a literal list of references whose roots are in
// allowed. Whether the addresses exist is checked by bodyRefs.
func (d *decoder) addressList(attr *hcl.Attribute, allowed []string, example string) []Reference {
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() {
		d.errorf(attr.Expr.Range().Ptr(), fmt.Sprintf("Invalid %s", attr.Name),
			"%s must be a list of addresses written out literally, like [%s].", attr.Name, example)
		return nil
	}
	var out []Reference
	for _, ex := range exprs {
		tr, diags := hcl.AbsTraversalForExpr(ex)
		if diags.HasErrors() {
			d.errorf(ex.Range().Ptr(), fmt.Sprintf("Invalid %s entry", attr.Name),
				"Each entry of %s must be an address written without quotes, like %s.", attr.Name, example)
			continue
		}
		root := tr.RootName()
		allowedRoot := false
		for _, a := range allowed {
			allowedRoot = allowedRoot || a == root
		}
		if !allowedRoot {
			r := tr.SourceRange()
			d.errorf(&r, fmt.Sprintf("Invalid %s entry", attr.Name),
				"%s cannot list %s: only %s addresses are allowed here, like %s.",
				attr.Name, traversalString(tr), strings.Join(allowed, " or "), example)
			continue
		}
		ref, diag := d.resolveTraversal(tr)
		if diag != nil {
			continue // reported by bodyRefs
		}
		if (root == "target" || root == "publish") && len(tr) > 3 || root == "environment" && len(tr) > 2 {
			r := tr.SourceRange()
			d.errorf(&r, fmt.Sprintf("Invalid %s entry", attr.Name),
				"%s lists whole blocks; write %s without the trailing attribute.", attr.Name, ref.Address)
			continue
		}
		out = append(out, ref)
	}
	return out
}

// quiet runs f and drops what it reports: used to repeat a static check
// whose problems were already reported.
func (d *decoder) quiet(f func()) {
	saved := len(d.diags)
	f()
	d.diags = d.diags[:saved]
}

func (d *decoder) decodeTarget(p *pendingBlock) {
	b := p.block
	t := &Target{
		Kind: b.Labels[0], Name: b.Labels[1], Address: p.addr,
		DeclRange: b.DefRange(), KindRange: b.LabelRanges[0], NameRange: b.LabelRanges[1],
		BaseDir: p.file.baseDir,
	}
	d.c.Targets[p.addr] = t
	content, remain, diags := b.Body.PartialContent(targetSchema)
	d.add(diags...)
	t.Body = remain
	refs := d.bodyRefs(b.Body)
	if attr, ok := content.Attributes["description"]; ok {
		t.Description = d.descriptionValue(attr, p.file.baseDir)
	}
	if attr, ok := content.Attributes["depends_on"]; ok {
		t.DependsOn = d.addressList(attr, []string{"target", "publish", "environment"}, "target.conda_pack.ml, environment.base")
	}
	t.Refs = d.c.finishRefs(refs)
}

// descriptionValue evaluates a description whose references were already
// validated, reporting only evaluation and type problems.
func (d *decoder) descriptionValue(attr *hcl.Attribute, baseDir string) string {
	var rs []Reference
	ok := true
	d.quiet(func() { rs, ok = d.checkExpr(attr.Expr, scope{}) })
	if !ok {
		return ""
	}
	val, diags := attr.Expr.Value(d.evalContext(baseDir, rs))
	d.add(diags...)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return ""
	}
	s, _ := d.asString(attr, val)
	return s
}

func (d *decoder) decodePublish(p *pendingBlock) {
	b := p.block
	pub := &Publish{
		Kind: b.Labels[0], Name: b.Labels[1], Address: p.addr,
		DeclRange: b.DefRange(), KindRange: b.LabelRanges[0], NameRange: b.LabelRanges[1],
		BaseDir: p.file.baseDir,
	}
	d.c.Publishes[p.addr] = pub
	content, remain, diags := b.Body.PartialContent(publishSchema)
	d.add(diags...)
	pub.Body = remain
	refs := d.bodyRefs(b.Body)
	if attr, ok := content.Attributes["description"]; ok {
		pub.Description = d.descriptionValue(attr, p.file.baseDir)
	}
	if attr, ok := content.Attributes["targets"]; !ok {
		d.errorf(pub.DeclRange.Ptr(), "Missing required argument",
			"The publish %q %q has no targets. Add the targets to publish, for example targets = [target.conda_pack.ml].", pub.Kind, pub.Name)
	} else {
		pub.Targets = d.addressList(attr, []string{"target"}, "target.conda_pack.ml")
		if len(pub.Targets) == 0 && len(attr.Expr.Variables()) == 0 {
			if exprs, diags := hcl.ExprList(attr.Expr); !diags.HasErrors() && len(exprs) == 0 {
				d.errorf(attr.Expr.Range().Ptr(), "No targets to publish",
					"A publish block needs at least one target, like targets = [target.conda_pack.ml].")
			}
		}
	}
	if attr, ok := content.Attributes["depends_on"]; ok {
		pub.DependsOn = d.addressList(attr, []string{"target", "publish", "environment"}, "target.conda_pack.ml, environment.base")
	}
	pub.Refs = d.c.finishRefs(refs)
}

var sparkConnectSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "remote", Required: true}, {Name: "bundles", Required: true},
		{Name: "alias"}, {Name: "session"}, {Name: "description"},
	},
}

func (d *decoder) decodeSparkConnect(p *pendingBlock) {
	b := p.block
	sc := &SparkConnect{Name: b.Labels[0], Address: p.addr, DeclRange: b.DefRange(),
		AttrRanges: map[string]hcl.Range{}, BaseDir: p.file.baseDir, Alias: "environment"}
	d.c.SparkConnects[sc.Name] = sc
	content, diags := b.Body.Content(sparkConnectSchema)
	d.add(diags...)
	d.bodyRefs(b.Body) // reports references to undeclared blocks
	var refs []Reference
	for name, attr := range content.Attributes {
		sc.AttrRanges[name] = attr.Range
	}
	str := func(name string, dst *string) {
		attr, ok := content.Attributes[name]
		if !ok {
			return
		}
		val, ok := d.evalAttr(attr, p.file.baseDir, &refs)
		if !ok {
			return
		}
		if s, ok := d.asString(attr, val); ok {
			*dst = s
		}
	}
	str("remote", &sc.Remote)
	str("alias", &sc.Alias)
	str("session", &sc.Session)
	str("description", &sc.Description)
	if attr, ok := content.Attributes["remote"]; ok && sc.Remote != "" && !strings.HasPrefix(sc.Remote, "sc://") {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid Spark Connect remote",
			"%q is not a Spark Connect connection string. Write it as sc://host:port/;user_id=name (the port defaults to 15002).", sc.Remote)
	}
	if attr, ok := content.Attributes["alias"]; ok && (sc.Alias == "" || strings.ContainsAny(sc.Alias, "/#")) {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid alias",
			"The alias %q names the directory an archive unpacks into; it must be a plain, non-empty name without / or #.", sc.Alias)
	}
	if attr, ok := content.Attributes["bundles"]; ok {
		sc.Bundles = d.addressList(attr, []string{"target"}, "target.conda_pack.etl, target.pyfiles.job")
	}
}
