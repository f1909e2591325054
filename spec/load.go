package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// DefaultFile is the configuration file read from Dir when no files are named.
const DefaultFile = "env.hcl"

// blockTypes lists the top-level block types in the order they are
// suggested and documented.
var blockTypes = []string{"sparkenv", "variable", "locals", "environment", "target", "publish", "spark_connect"}

var labelRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// source is one configuration file's bytes with the name used in ranges.
type source struct {
	name string // as shown in diagnostics
	path string // absolute, for resolving relative paths
	src  []byte
}

// Load reads the configuration files named by opts (Dir/env.hcl by default)
// and evaluates them. It always returns a non-nil Config holding whatever
// could be decoded; the diagnostics say what could not.
func Load(opts LoadOptions) (*Config, hcl.Diagnostics) {
	dir := absDir(opts.Dir)
	names := opts.Files
	defaulted := len(names) == 0
	if defaulted {
		names = []string{DefaultFile}
	}
	var diags hcl.Diagnostics
	var srcs []source
	seen := map[string]bool{}
	for _, n := range names {
		p := resolvePath(dir, n)
		if seen[p] {
			continue
		}
		seen[p] = true
		data, err := os.ReadFile(p)
		if err != nil {
			detail := fmt.Sprintf("Reading %s failed: %s. Check the file name, or run sparkenv from the directory that holds the configuration.", p, err)
			if defaulted && os.IsNotExist(err) {
				detail = fmt.Sprintf("There is no %s in %s. Create one, or name the configuration files to load.", DefaultFile, dir)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read configuration file",
				Detail:   detail,
			})
			continue
		}
		srcs = append(srcs, source{name: displayName(dir, p), path: p, src: data})
	}
	cfg, more := load(dir, srcs, opts)
	return cfg, append(diags, more...)
}

// Parse evaluates a single in-memory configuration file named filename, as
// if it were the only file given to Load. Variable files named in opts are
// still read from disk.
func Parse(filename string, src []byte, opts LoadOptions) (*Config, hcl.Diagnostics) {
	dir := absDir(opts.Dir)
	return load(dir, []source{{name: filename, path: resolvePath(dir, filename), src: src}}, opts)
}

func absDir(dir string) string {
	if dir == "" {
		dir = "."
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// displayName shortens paths under dir so that diagnostics and golden
// output do not depend on where the checkout lives.
func displayName(dir, p string) string {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return rel
}

// fileBody is one parsed configuration file.
type fileBody struct {
	name    string
	baseDir string
	body    *hclsyntax.Body
}

type pendingVar struct {
	v     *Variable
	block *hclsyntax.Block
	file  *fileBody
}

type pendingLocal struct {
	l    *Local
	attr *hclsyntax.Attribute
	file *fileBody
}

type pendingBlock struct {
	block *hclsyntax.Block
	file  *fileBody
	addr  string
}

// decoder carries the state of one load. Its phases run in a fixed order
// (declarations, variables, locals, then environments, targets and
// publishes) because each phase may refer to what the earlier ones produced.
type decoder struct {
	c       *Config
	opts    LoadOptions
	environ map[string]string
	diags   hcl.Diagnostics

	vars     []*pendingVar
	locals   []*pendingLocal
	envs     []*pendingBlock
	targets  []*pendingBlock
	pubs     []*pendingBlock
	connects []*pendingBlock
	versions []string

	funcs    map[string]map[string]function.Function // by baseDir
	baseVars map[string]cty.Value
	declared map[string]hcl.Range // declared block addresses → DefRange of the first
}

func load(dir string, srcs []source, opts LoadOptions) (*Config, hcl.Diagnostics) {
	d := &decoder{
		c:        newConfig(dir),
		opts:     opts,
		environ:  parseEnviron(opts.Environ),
		funcs:    map[string]map[string]function.Function{},
		declared: map[string]hcl.Range{},
	}
	var files []*fileBody
	for i, s := range srcs {
		f, diags := hclsyntax.ParseConfig(s.src, s.name, hcl.InitialPos)
		d.diags = append(d.diags, diags...)
		d.c.fileOrder[s.name] = i
		if f == nil {
			continue
		}
		d.c.Files[s.name] = f
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			continue
		}
		files = append(files, &fileBody{name: s.name, baseDir: filepath.Dir(s.path), body: body})
	}
	for _, f := range files {
		d.declare(f)
	}
	if len(d.versions) > 0 {
		d.c.RequiredVersion = strings.Join(d.versions, ", ")
	}
	d.decodeVariables()
	d.decodeLocals()
	for _, p := range d.envs {
		d.decodeEnvironment(p)
	}
	for _, p := range d.targets {
		d.decodeTarget(p)
	}
	for _, p := range d.pubs {
		d.decodePublish(p)
	}
	for _, p := range d.connects {
		d.decodeSparkConnect(p)
	}
	d.sortDiags()
	return d.c, d.diags
}

func parseEnviron(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = v // later entries win, as in os/exec
	}
	return m
}

func (d *decoder) add(diags ...*hcl.Diagnostic) { d.diags = append(d.diags, diags...) }

func (d *decoder) errorf(subject *hcl.Range, summary, detail string, args ...any) {
	d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: subject})
}

// sortDiags orders diagnostics by file and position so output is stable;
// diagnostics without a source position in a configuration file come first.
func (d *decoder) sortDiags() {
	rank := func(diag *hcl.Diagnostic) (int, string, int) {
		if diag.Subject == nil {
			return -2, "", 0
		}
		if r, ok := d.c.fileOrder[diag.Subject.Filename]; ok {
			return r, "", diag.Subject.Start.Byte
		}
		return -1, diag.Subject.Filename, diag.Subject.Start.Byte
	}
	sort.SliceStable(d.diags, func(i, j int) bool {
		ri, ni, bi := rank(d.diags[i])
		rj, nj, bj := rank(d.diags[j])
		if ri != rj {
			return ri < rj
		}
		if ni != nj {
			return ni < nj
		}
		return bi < bj
	})
}

// posString renders a range start as file:line,column for details that
// mention another place in the configuration.
func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

// declare registers every block of one file, checking block types, labels
// and uniqueness. Decoding bodies waits until all files are declared, so
// references may point to blocks in any file.
func (d *decoder) declare(f *fileBody) {
	for _, attr := range sortedAttrs(f.body.Attributes) {
		if _, isBlock := labelNames[attr.Name]; isBlock {
			d.errorf(attr.NameRange.Ptr(), "Unsupported argument",
				"%s is a block, not an argument. Write it without the equals sign, like %s ... }.",
				attr.Name, labelExamples[attr.Name])
			continue
		}
		d.errorf(attr.NameRange.Ptr(), "Unsupported argument",
			"An argument named %q is not allowed at the top level.%s Put named values in a locals block, or declare a variable block for inputs.",
			attr.Name, didYouMean(attr.Name, blockTypes))
	}
	for _, b := range f.body.Blocks {
		switch b.Type {
		case "sparkenv":
			if d.checkLabels(b) {
				d.decodeSparkenv(b)
			}
		case "locals":
			if d.checkLabels(b) {
				d.declareLocals(b, f)
			}
		case "variable":
			if !d.checkLabels(b) {
				continue
			}
			name := b.Labels[0]
			if !d.checkName(b, 0, "variable name") {
				d.c.broken["var."+name] = true
				continue
			}
			if prev, ok := d.c.Variables[name]; ok {
				d.duplicate(b, "variable", fmt.Sprintf("variable %q", name), prev.DeclRange)
				continue
			}
			v := &Variable{Name: name, Type: cty.DynamicPseudoType, Value: cty.DynamicVal, DeclRange: b.DefRange()}
			d.c.Variables[name] = v
			d.vars = append(d.vars, &pendingVar{v: v, block: b, file: f})
		case "environment":
			if !d.checkLabels(b) {
				continue
			}
			addr := "environment." + b.Labels[0]
			if !d.checkName(b, 0, "environment name") {
				d.c.broken[addr] = true
				continue
			}
			if prev, ok := d.declared[addr]; ok {
				d.duplicate(b, "environment", fmt.Sprintf("environment %q", b.Labels[0]), prev)
				continue
			}
			d.declared[addr] = b.DefRange()
			d.envs = append(d.envs, &pendingBlock{block: b, file: f, addr: addr})
		case "spark_connect":
			if !d.checkLabels(b) {
				continue
			}
			addr := "spark_connect." + b.Labels[0]
			if !d.checkName(b, 0, "spark_connect name") {
				continue
			}
			if prev, ok := d.declared[addr]; ok {
				d.duplicate(b, "spark_connect", fmt.Sprintf("spark_connect %q", b.Labels[0]), prev)
				continue
			}
			d.declared[addr] = b.DefRange()
			d.connects = append(d.connects, &pendingBlock{block: b, file: f, addr: addr})
		case "target", "publish":
			if !d.checkLabels(b) {
				continue
			}
			addr := b.Type + "." + b.Labels[0] + "." + b.Labels[1]
			okKind := d.checkName(b, 0, b.Type+" kind")
			okName := d.checkName(b, 1, b.Type+" name")
			if !okKind || !okName {
				d.c.broken[addr] = true
				continue
			}
			if prev, ok := d.declared[addr]; ok {
				d.duplicate(b, b.Type, fmt.Sprintf("%s %q %q", b.Type, b.Labels[0], b.Labels[1]), prev)
				continue
			}
			d.declared[addr] = b.DefRange()
			p := &pendingBlock{block: b, file: f, addr: addr}
			if b.Type == "target" {
				d.targets = append(d.targets, p)
			} else {
				d.pubs = append(d.pubs, p)
			}
		default:
			d.errorf(b.TypeRange.Ptr(), "Unsupported block type",
				"Blocks of type %q are not expected here.%s The block types are sparkenv, variable, locals, environment, target, publish and spark_connect.",
				b.Type, didYouMean(b.Type, blockTypes))
		}
	}
}

var labelNames = map[string][]string{
	"sparkenv":      nil,
	"locals":        nil,
	"variable":      {"name"},
	"environment":   {"name"},
	"target":        {"kind", "name"},
	"publish":       {"kind", "name"},
	"spark_connect": {"name"},
}

var labelExamples = map[string]string{
	"sparkenv":      `sparkenv {`,
	"locals":        `locals {`,
	"variable":      `variable "region" {`,
	"environment":   `environment "ml" {`,
	"target":        `target "conda_pack" "ml" {`,
	"publish":       `publish "s3" "prod" {`,
	"spark_connect": `spark_connect "notebook" {`,
}

// checkLabels reports a block with the wrong number of labels.
func (d *decoder) checkLabels(b *hclsyntax.Block) bool {
	want := labelNames[b.Type]
	takes := map[int]string{0: "no labels", 1: "one label, a name", 2: "two labels, a kind and a name"}[len(want)]
	switch {
	case len(b.Labels) > len(want):
		r := b.LabelRanges[len(want)]
		d.errorf(&r, fmt.Sprintf("Extraneous label for %s", b.Type),
			"%s %s block takes %s, like %s ... }. Remove the extra label.", article(b.Type), b.Type, takes, labelExamples[b.Type])
		return false
	case len(b.Labels) < len(want):
		r := b.TypeRange
		if n := len(b.LabelRanges); n > 0 {
			r = b.LabelRanges[n-1]
		}
		d.errorf(&r, fmt.Sprintf("Missing %s for %s", want[len(b.Labels)], b.Type),
			"%s %s block takes %s, like %s ... }. Add the missing label.", article(b.Type), b.Type, takes, labelExamples[b.Type])
		return false
	}
	return true
}

// checkName reports a label that is not a plain lowercase identifier. Such
// names become parts of addresses, file names and object keys, so they are
// kept to one safe alphabet.
func (d *decoder) checkName(b *hclsyntax.Block, i int, what string) bool {
	label := b.Labels[i]
	if labelRe.MatchString(label) {
		return true
	}
	fix := ""
	if s := sanitizeLabel(label); s != "" {
		fix = fmt.Sprintf(" Rename it, for example to %q.", s)
	}
	d.errorf(b.LabelRanges[i].Ptr(), fmt.Sprintf("Invalid %s", what),
		"%q is not a valid %s: names start with a lowercase letter and contain only lowercase letters, digits and underscores.%s",
		label, what, fix)
	return false
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "An"
	}
	return "A"
}

func sanitizeLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '_' || r == '-' || r == '.' || r == ' ':
			if b.Len() > 0 {
				b.WriteByte('_')
			}
		}
	}
	out := strings.TrimRight(b.String(), "_")
	if !labelRe.MatchString(out) {
		return ""
	}
	return out
}

func (d *decoder) duplicate(b *hclsyntax.Block, kind, what string, first hcl.Range) {
	r := b.DefRange()
	d.errorf(&r, fmt.Sprintf("Duplicate %s", kind),
		"The %s was already declared at %s. Each %s must be declared once; rename or remove one of them.",
		what, posString(first), kind)
}

func sortedAttrs(attrs hclsyntax.Attributes) []*hclsyntax.Attribute {
	out := make([]*hclsyntax.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SrcRange.Start.Byte < out[j].SrcRange.Start.Byte })
	return out
}

var sparkenvSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "required_version"}}}

func (d *decoder) decodeSparkenv(b *hclsyntax.Block) {
	content, diags := b.Body.Content(sparkenvSchema)
	d.add(diags...)
	attr, ok := content.Attributes["required_version"]
	if !ok {
		return
	}
	val, diags := attr.Expr.Value(nil)
	d.add(diags...)
	if diags.HasErrors() {
		return
	}
	exprRange := attr.Expr.Range()
	if val.IsNull() || !val.IsKnown() || val.Type() != cty.String {
		d.errorf(&exprRange, "Invalid required_version", "required_version must be a version constraint string, like \">= 0.1\".")
		return
	}
	raw := val.AsString()
	clauses, err := parseConstraint(raw)
	if err != nil {
		d.errorf(&exprRange, "Invalid required_version",
			"%q is not a version constraint: %s. Write clauses like \">= 0.1\" or \"~> 0.3\", separated by commas.", raw, err)
		return
	}
	d.versions = append(d.versions, raw)
	running, err := parseVersion(d.opts.Version)
	if d.opts.Version == "" || err != nil {
		return // development builds carry no comparable version
	}
	for _, cl := range clauses {
		if !cl.allows(running) {
			d.errorf(&exprRange, "Unsupported sparkenv version",
				"This configuration requires sparkenv %s, but this is sparkenv %s. Install a matching sparkenv release, or change required_version if the configuration works with this version.",
				raw, running)
			return
		}
	}
}
