package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Action types are versioned: bump one when the meaning of its pre-image
// changes, and every key of that type changes with it.
const (
	actionBuild       = "sparkenv.build.v2"
	actionEnvironment = "sparkenv.environment.v1"
	actionPublish     = "sparkenv.publish.v2"
)

// Preimage is what a cache key is the hash of. It is kept beside each action
// result so that `sparkenv explain` can say what changed.
type Preimage struct {
	Action string `json:"action"`
	Kind   string `json:"kind"`
	// Address is part of the key because builders name their outputs after
	// the block (job.zip for target "pyfiles" "job").
	Address string `json:"address,omitempty"`
	// Place is where a publish writes relative paths from (the declaring
	// file's directory): the same block in another checkout publishes
	// somewhere else.
	Place   string            `json:"place,omitempty"`
	Version string            `json:"version"`
	Config  json.RawMessage   `json:"config"`
	Inputs  map[string]string `json:"inputs"` // path relative to the config dir → sha256
	Deps    map[string]string `json:"deps"`   // address → output digest
	Tools   map[string]string `json:"tools"`
}

// Key is the sha256 of the canonical encoding of p.
func (p *Preimage) Key() string {
	sum := sha256.Sum256(p.canonical())
	return hex.EncodeToString(sum[:])
}

func (p *Preimage) canonical() []byte {
	c := *p
	if c.Inputs == nil {
		c.Inputs = map[string]string{}
	}
	if c.Deps == nil {
		c.Deps = map[string]string{}
	}
	if c.Tools == nil {
		c.Tools = map[string]string{}
	}
	if c.Config == nil {
		c.Config = json.RawMessage("null")
	}
	// encoding/json sorts map keys; Config is already canonical.
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// NormalizeConfig encodes a decoded configuration struct canonically: fields
// by their hcl name, sorted, with fields tagged `key:"-"` (those that do not
// change the output) and hcl.Body/remain fields left out.
func NormalizeConfig(cfg any) (json.RawMessage, error) {
	v, err := normalize(reflect.ValueOf(cfg))
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

var ctyValueType = reflect.TypeOf(cty.Value{})

func normalize(v reflect.Value) (any, error) {
	if !v.IsValid() {
		return nil, nil
	}
	if v.Type() == ctyValueType {
		cv := v.Interface().(cty.Value)
		if cv.IsNull() {
			return nil, nil
		}
		b, err := ctyjson.Marshal(cv, cv.Type())
		if err != nil {
			return nil, err
		}
		return json.RawMessage(b), nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		return normalize(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("key") == "-" {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("hcl"), ",")
			if opts == "remain" || opts == "body" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			nv, err := normalize(v.Field(i))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[name] = nv
		}
		return out, nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil, nil
		}
		out := make([]any, v.Len())
		for i := range out {
			nv, err := normalize(v.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	case reflect.Map:
		if v.IsNil() {
			return nil, nil
		}
		out := map[string]any{}
		iter := v.MapRange()
		for iter.Next() {
			nv, err := normalize(iter.Value())
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(iter.Key().Interface())] = nv
		}
		return out, nil
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return nil, fmt.Errorf("cannot hash a %s", v.Kind())
	default:
		return v.Interface(), nil
	}
}

// Change is one difference between two pre-images.
type Change struct {
	What string `json:"what"` // "new", "action", "version", "config", "input", "dependency", "tool"
	Name string `json:"name,omitempty"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

func (c Change) String() string {
	switch c.What {
	case "new":
		return "new"
	case "version":
		return fmt.Sprintf("builder version changed (%s → %s)", c.Old, c.New)
	case "action":
		return "action format changed"
	case "config":
		return fmt.Sprintf("config attribute %q changed", c.Name)
	case "input":
		switch {
		case c.Old == "":
			return fmt.Sprintf("input file %s added", c.Name)
		case c.New == "":
			return fmt.Sprintf("input file %s removed", c.Name)
		}
		return fmt.Sprintf("input file %s changed", c.Name)
	case "dependency":
		if c.Old == "" {
			return fmt.Sprintf("dependency %s added", c.Name)
		}
		if c.New == "" {
			return fmt.Sprintf("dependency %s removed", c.Name)
		}
		return fmt.Sprintf("dependency %s changed", c.Name)
	case "tool":
		return fmt.Sprintf("tool %s changed (%s → %s)", c.Name, c.Old, c.New)
	case "address":
		return fmt.Sprintf("block renamed from %s", c.Old)
	case "place":
		return fmt.Sprintf("declared in another directory (%s)", c.New)
	case "missing":
		return "not in the cache"
	}
	return c.What
}

// Diff lists what differs from old to cur; nil old means the action is new.
func Diff(old, cur *Preimage) []Change {
	if old == nil {
		return []Change{{What: "new"}}
	}
	var out []Change
	if old.Action != cur.Action || old.Kind != cur.Kind {
		out = append(out, Change{What: "action", Old: old.Action, New: cur.Action})
	}
	if old.Address != cur.Address {
		out = append(out, Change{What: "address", Old: old.Address, New: cur.Address})
	}
	if old.Place != cur.Place {
		out = append(out, Change{What: "place", Old: old.Place, New: cur.Place})
	}
	if old.Version != cur.Version {
		out = append(out, Change{What: "version", Old: old.Version, New: cur.Version})
	}
	out = append(out, diffConfig(old.Config, cur.Config)...)
	out = append(out, diffMap("input", old.Inputs, cur.Inputs)...)
	out = append(out, diffMap("dependency", old.Deps, cur.Deps)...)
	out = append(out, diffMap("tool", old.Tools, cur.Tools)...)
	return out
}

func diffMap(what string, a, b map[string]string) []Change {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []Change
	for _, k := range sortedKeys(keys) {
		if a[k] != b[k] {
			out = append(out, Change{What: what, Name: k, Old: a[k], New: b[k]})
		}
	}
	return out
}

func diffConfig(a, b json.RawMessage) []Change {
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		if string(a) != string(b) {
			return []Change{{What: "config", Name: "*"}}
		}
		return nil
	}
	keys := map[string]bool{}
	for k := range ma {
		keys[k] = true
	}
	for k := range mb {
		keys[k] = true
	}
	var out []Change
	for _, k := range sortedKeys(keys) {
		if string(ma[k]) != string(mb[k]) {
			out = append(out, Change{What: "config", Name: k, Old: string(ma[k]), New: string(mb[k])})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// outputDigest is what dependents see of an action: its manifest digest and
// its metadata, never its key or address.
func outputDigest(manifestDigest string, meta map[string]string) string {
	b, _ := json.Marshal(struct {
		Manifest string            `json:"manifest"`
		Metadata map[string]string `json:"metadata"`
	}{manifestDigest, meta})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
