package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Dump renders the configuration as indented, deterministic JSON: the
// resolved model as sparkenv sees it, for printing and for golden tests.
// Values of sensitive variables, and of locals derived from them, are masked.
func (c *Config) Dump() ([]byte, error) {
	type ref struct {
		Address string `json:"address"`
		At      string `json:"at"`
	}
	refs := func(rs []Reference) []ref {
		out := []ref{}
		for _, r := range rs {
			out = append(out, ref{r.Address, posString(r.Range)})
		}
		return out
	}
	type variable struct {
		Type        string          `json:"type"`
		Value       json.RawMessage `json:"value"`
		Source      string          `json:"source,omitempty"`
		Description string          `json:"description,omitempty"`
		Sensitive   bool            `json:"sensitive,omitempty"`
		Decl        string          `json:"decl"`
	}
	type local struct {
		Value json.RawMessage `json:"value"`
		Decl  string          `json:"decl"`
	}
	type environment struct {
		Platform        string            `json:"platform"`
		Channels        []string          `json:"channels"`
		Dependencies    []string          `json:"dependencies"`
		VirtualPackages map[string]string `json:"virtual_packages"`
		ChannelPriority string            `json:"channel_priority"`
		Prefix          string            `json:"prefix"`
		Pip             []string          `json:"pip"`
		PipIndex        string            `json:"pip_index"`
		PipFindLinks    []string          `json:"pip_find_links"`
		BaseDir         string            `json:"base_dir"`
		Decl            string            `json:"decl"`
		Refs            []ref             `json:"refs"`
	}
	type block struct {
		Kind        string   `json:"kind"`
		Name        string   `json:"name"`
		Description string   `json:"description,omitempty"`
		Targets     []ref    `json:"targets,omitempty"`
		DependsOn   []ref    `json:"depends_on"`
		Body        []string `json:"body"`
		BaseDir     string   `json:"base_dir"`
		Decl        string   `json:"decl"`
		Refs        []ref    `json:"refs"`
	}
	out := struct {
		Dir             string                 `json:"dir"`
		RequiredVersion string                 `json:"required_version,omitempty"`
		Variables       map[string]variable    `json:"variables"`
		Locals          map[string]local       `json:"locals"`
		Environments    map[string]environment `json:"environments"`
		Targets         map[string]block       `json:"targets"`
		Publishes       map[string]block       `json:"publishes"`
	}{
		Dir:             c.Dir,
		RequiredVersion: c.RequiredVersion,
		Variables:       map[string]variable{},
		Locals:          map[string]local{},
		Environments:    map[string]environment{},
		Targets:         map[string]block{},
		Publishes:       map[string]block{},
	}
	for name, v := range c.Variables {
		val := valueJSON(v.Value)
		if v.Sensitive {
			val = json.RawMessage(`"(sensitive)"`)
		}
		out.Variables[name] = variable{
			Type: typeexpr.TypeString(v.Type), Value: val, Source: v.Source,
			Description: v.Description, Sensitive: v.Sensitive, Decl: posString(v.DeclRange),
		}
	}
	for name, l := range c.Locals {
		val := valueJSON(l.Value)
		if c.Sensitive("local." + name) {
			val = json.RawMessage(`"(sensitive)"`)
		}
		out.Locals[name] = local{Value: val, Decl: posString(l.DeclRange)}
	}
	for name, e := range c.Environments {
		out.Environments[name] = environment{
			Platform: e.Platform, Channels: e.Channels, Dependencies: e.Dependencies,
			VirtualPackages: e.VirtualPackages, ChannelPriority: e.ChannelPriority, Prefix: e.Prefix,
			Pip: e.Pip, PipIndex: e.PipIndex, PipFindLinks: e.PipFindLinks,
			BaseDir: e.BaseDir, Decl: posString(e.DeclRange), Refs: refs(e.Refs),
		}
	}
	for addr, t := range c.Targets {
		out.Targets[addr] = block{
			Kind: t.Kind, Name: t.Name, Description: t.Description, DependsOn: refs(t.DependsOn),
			Body: bodyOutline(t.Body, "depends_on", "description"), BaseDir: t.BaseDir,
			Decl: posString(t.DeclRange), Refs: refs(t.Refs),
		}
	}
	for addr, p := range c.Publishes {
		out.Publishes[addr] = block{
			Kind: p.Kind, Name: p.Name, Description: p.Description, Targets: refs(p.Targets),
			DependsOn: refs(p.DependsOn), Body: bodyOutline(p.Body, "targets", "depends_on", "description"),
			BaseDir: p.BaseDir, Decl: posString(p.DeclRange), Refs: refs(p.Refs),
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // constraints like ">= 0.1" stay readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("spec: encoding configuration: %w", err)
	}
	return buf.Bytes(), nil
}

func valueJSON(v cty.Value) json.RawMessage {
	if v == cty.NilVal || !v.IsWhollyKnown() {
		return json.RawMessage(`"(unknown)"`)
	}
	b, err := ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
	if err != nil {
		return json.RawMessage(`"(unencodable)"`)
	}
	// Re-encode without HTML escaping so that version constraints such as
	// ">=1.26" stay readable; UseNumber keeps numbers exact.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return b
	}
	return bytes.TrimSpace(buf.Bytes())
}

// bodyOutline lists the arguments and nested blocks left for a builder or
// publisher, without the ones the core decoded.
func bodyOutline(body hcl.Body, skip ...string) []string {
	out := []string{}
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return out
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	for name, a := range sb.Attributes {
		if !skipped[name] {
			out = append(out, fmt.Sprintf("%s = %s", name, exprText(a.Expr)))
		}
	}
	sort.Strings(out)
	for _, b := range sb.Blocks {
		out = append(out, "block "+b.Type)
	}
	return out
}

// exprText renders traversals and constants; other expressions are shown by
// position, since their source text is not at hand here.
func exprText(e hclsyntax.Expression) string {
	switch e := e.(type) {
	case *hclsyntax.ScopeTraversalExpr:
		return traversalString(e.Traversal)
	case *hclsyntax.LiteralValueExpr:
		return string(valueJSON(e.Val))
	}
	if len(e.Variables()) == 0 {
		// Constant expressions (literal lists, objects, strings) are shown
		// by value; function calls fail here without a context and fall
		// through.
		if v, diags := e.Value(nil); !diags.HasErrors() && v.IsWhollyKnown() {
			return string(valueJSON(v))
		}
	}
	return "expr@" + posString(e.Range())
}
