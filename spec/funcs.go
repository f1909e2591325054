package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// maxFileSize bounds file() so that a mistaken path (a device, a huge data
// file) fails clearly instead of exhausting memory.
const maxFileSize = 64 << 20

// envOnlyInDefaults explains why env() failed outside variable defaults.
const envOnlyInDefaults = "the env function is only allowed in variable defaults: declare a variable with default = env(\"NAME\") and refer to it as var.<name>, so that every outside input is a declared variable"

// functions returns the functions available to expressions in files located
// in baseDir. Path arguments of the file functions resolve against baseDir so
// that a file means the same thing wherever sparkenv runs from. env is only
// functional when environ is non-nil (variable defaults).
func functions(baseDir string, environ map[string]string) map[string]function.Function {
	fns := map[string]function.Function{
		// numeric
		"abs":      stdlib.AbsoluteFunc,
		"ceil":     stdlib.CeilFunc,
		"floor":    stdlib.FloorFunc,
		"log":      stdlib.LogFunc,
		"max":      stdlib.MaxFunc,
		"min":      stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc,
		"pow":      stdlib.PowFunc,
		"signum":   stdlib.SignumFunc,
		// strings
		"chomp":      stdlib.ChompFunc,
		"format":     limitPadding(stdlib.FormatFunc, checkFormatWidths),
		"formatlist": limitPadding(stdlib.FormatListFunc, checkFormatWidths),
		"indent":     limitPadding(stdlib.IndentFunc, checkIndent),
		"join":       stdlib.JoinFunc,
		"lower":      stdlib.LowerFunc,
		"regex":      stdlib.RegexFunc,
		"regexall":   stdlib.RegexAllFunc,
		"replace":    replaceFunc,
		"split":      stdlib.SplitFunc,
		"strrev":     stdlib.ReverseFunc,
		"substr":     stdlib.SubstrFunc,
		"title":      stdlib.TitleFunc,
		"trim":       stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"upper":      stdlib.UpperFunc,
		// collections
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"index":           indexFunc,
		"keys":            stdlib.KeysFunc,
		"length":          lengthFunc,
		"lookup":          stdlib.LookupFunc,
		"merge":           stdlib.MergeFunc,
		"range":           stdlib.RangeFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,
		// encodings
		"jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"csvdecode":  stdlib.CSVDecodeFunc,
		// conversions
		"tostring": stdlib.MakeToFunc(cty.String),
		"tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool":   stdlib.MakeToFunc(cty.Bool),
		"tolist":   stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":    stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tomap":    stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		// paths and files
		"file":       fileFunc(baseDir),
		"fileset":    filesetFunc(baseDir),
		"filesha256": filesha256Func(baseDir),
		"abspath":    abspathFunc(baseDir),
		"basename":   basenameFunc,
		"dirname":    dirnameFunc,
		"env":        envFunc(environ),
		// error handling, mostly for validation conditions
		"can": tryfunc.CanFunc,
		"try": tryfunc.TryFunc,
	}
	return fns
}

// maxPadding bounds widths and indents: a typo such as %99999999d must fail
// instead of allocating gigabytes.
const maxPadding = 10000

// limitPadding wraps f so that its first argument is checked before the call.
func limitPadding(f function.Function, check func(cty.Value) error) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type:        f.ReturnTypeForValues,
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 0 && args[0].IsKnown() && !args[0].IsNull() {
				if err := check(args[0]); err != nil {
					return cty.NilVal, function.NewArgError(0, err)
				}
			}
			return f.Call(args)
		},
	})
}

var formatNumberRe = regexp.MustCompile(`%[-+# 0]*(\[[0-9]+\])?([0-9]+)?(\.([0-9]+))?`)

func checkFormatWidths(v cty.Value) error {
	if v.Type() != cty.String {
		return nil
	}
	for _, m := range formatNumberRe.FindAllStringSubmatch(v.AsString(), -1) {
		for _, n := range []string{m[2], m[4]} {
			if len(n) > 5 || n != "" && mustAtoi(n) > maxPadding {
				return fmt.Errorf("widths and precisions above %d are not supported", maxPadding)
			}
		}
	}
	return nil
}

func checkIndent(v cty.Value) error {
	n, err := convert.Convert(v, cty.Number)
	if err != nil || !n.IsKnown() || n.IsNull() {
		return nil
	}
	if bf := n.AsBigFloat(); bf.Cmp(big.NewFloat(maxPadding)) > 0 {
		return fmt.Errorf("indents above %d spaces are not supported", maxPadding)
	}
	return nil
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return maxPadding + 1
	}
	return n
}

// replaceFunc follows the widespread convention that a search string wrapped
// in slashes is a regular expression; anything else is a literal substring.
var replaceFunc = function.New(&function.Spec{
	Description: "Replaces each occurrence of substr in str; substr wrapped in slashes is a regular expression.",
	Params: []function.Parameter{
		{Name: "str", Type: cty.String},
		{Name: "substr", Type: cty.String},
		{Name: "replace", Type: cty.String},
	},
	Type:         function.StaticReturnType(cty.String),
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sub := args[1].AsString()
		if len(sub) > 1 && sub[0] == '/' && sub[len(sub)-1] == '/' {
			return stdlib.RegexReplace(args[0], cty.StringVal(sub[1:len(sub)-1]), args[2])
		}
		return stdlib.Replace(args[0], args[1], args[2])
	},
})

// lengthFunc counts characters of a string or elements of a collection.
var lengthFunc = function.New(&function.Spec{
	Description: "Returns the number of characters in a string or elements in a collection.",
	Params: []function.Parameter{
		{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true},
	},
	Type: func(args []cty.Value) (cty.Type, error) {
		ty := args[0].Type()
		switch {
		case ty == cty.String, ty == cty.DynamicPseudoType, ty.IsCollectionType(), ty.IsTupleType(), ty.IsObjectType():
			return cty.Number, nil
		}
		return cty.NilType, function.NewArgErrorf(0, "argument must be a string or a collection, not %s", ty.FriendlyName())
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		switch {
		case v.Type() == cty.String:
			return stdlib.Strlen(v)
		case v.Type().IsObjectType():
			return cty.NumberIntVal(int64(len(v.Type().AttributeTypes()))), nil
		}
		return v.Length(), nil
	},
})

// indexFunc returns the position of the first element equal to value.
var indexFunc = function.New(&function.Spec{
	Description: "Returns the index of the first element of list equal to value.",
	Params: []function.Parameter{
		{Name: "list", Type: cty.DynamicPseudoType},
		{Name: "value", Type: cty.DynamicPseudoType},
	},
	Type: function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		list := args[0]
		if !(list.Type().IsListType() || list.Type().IsTupleType()) {
			return cty.NilVal, function.NewArgErrorf(0, "argument must be a list or tuple, not %s", list.Type().FriendlyName())
		}
		if !list.IsWhollyKnown() {
			return cty.UnknownVal(cty.Number), nil
		}
		i := 0
		for it := list.ElementIterator(); it.Next(); i++ {
			_, el := it.Element()
			eq := el.Equals(args[1])
			if !eq.IsKnown() {
				return cty.UnknownVal(cty.Number), nil
			}
			if eq.True() {
				return cty.NumberIntVal(int64(i)), nil
			}
		}
		return cty.NilVal, function.NewArgErrorf(1, "the value is not in the list")
	},
})

func resolvePath(baseDir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(baseDir, p)
}

// openRegular opens p only if it is a regular file, so that devices and
// directories give a clear error instead of hanging or reading garbage.
func openRegular(p string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	return f, fi, nil
}

func fileFunc(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a UTF-8 text file; a relative path resolves against the directory of the file that calls it.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := resolvePath(baseDir, args[0].AsString())
			f, fi, err := openRegular(p)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read file: %s", err)
			}
			defer f.Close()
			if fi.Size() > maxFileSize {
				return cty.NilVal, function.NewArgErrorf(0, "file %s is larger than %d bytes", p, maxFileSize)
			}
			data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read file: %s", err)
			}
			if len(data) > maxFileSize {
				return cty.NilVal, function.NewArgErrorf(0, "file %s is larger than %d bytes", p, maxFileSize)
			}
			if !utf8.Valid(data) {
				return cty.NilVal, function.NewArgErrorf(0, "file %s is not valid UTF-8; use filesha256 to refer to binary files", p)
			}
			return cty.StringVal(string(data)), nil
		},
	})
}

func filesha256Func(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the hex SHA-256 of a file's contents.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := resolvePath(baseDir, args[0].AsString())
			f, _, err := openRegular(p)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read file: %s", err)
			}
			defer f.Close()
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read file %s: %s", p, err)
			}
			return cty.StringVal(hex.EncodeToString(h.Sum(nil))), nil
		},
	})
}

func abspathFunc(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns an absolute, cleaned path; a relative path resolves against the directory of the file that calls it.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(resolvePath(baseDir, args[0].AsString())), nil
		},
	})
}

var basenameFunc = function.New(&function.Spec{
	Description: "Returns the last element of a path.",
	Params:      []function.Parameter{{Name: "path", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(filepath.Base(args[0].AsString())), nil
	},
})

var dirnameFunc = function.New(&function.Spec{
	Description: "Returns all but the last element of a path.",
	Params:      []function.Parameter{{Name: "path", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(filepath.Dir(args[0].AsString())), nil
	},
})

// envFunc reads LoadOptions.Environ. Outside variable defaults (environ ==
// nil) it always fails, so that outside inputs enter only through declared
// variables and show up in plans and cache keys.
func envFunc(environ map[string]string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns an environment variable's value, or the optional default (else \"\") when unset. Only allowed in variable defaults.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if environ == nil {
				return cty.NilVal, errors.New(envOnlyInDefaults)
			}
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default")
			}
			if v, ok := environ[args[0].AsString()]; ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.StringVal(""), nil
		},
	})
}

func filesetFunc(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the set of regular files under path matching pattern (*, ?, [...], {a,b} and ** for any number of directories), relative to path.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "pattern", Type: cty.String},
		},
		Type: function.StaticReturnType(cty.Set(cty.String)),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			root := resolvePath(baseDir, args[0].AsString())
			matches, err := fileset(root, args[1].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			if len(matches) == 0 {
				return cty.SetValEmpty(cty.String), nil
			}
			vals := make([]cty.Value, len(matches))
			for i, m := range matches {
				vals[i] = cty.StringVal(m)
			}
			return cty.SetVal(vals), nil
		},
	})
}

// fileset walks root and returns the sorted slash-separated relative paths of
// regular files (symlinks to regular files included) that match pattern.
func fileset(root, pattern string) ([]string, error) {
	pats, err := compileGlob(pattern)
	if err != nil {
		return nil, function.NewArgErrorf(1, "invalid pattern %q: %s", pattern, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, function.NewArgErrorf(0, "cannot read directory: %s", err)
	}
	if !fi.IsDir() {
		return nil, function.NewArgErrorf(0, "%s is not a directory", root)
	}
	var out []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				return nil
			}
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, segs := range pats {
			if matchSegments(segs, strings.Split(rel, "/")) {
				out = append(out, rel)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, err)
	}
	sort.Strings(out)
	return out, nil
}

// compileGlob expands {a,b} alternatives and splits each resulting pattern
// into path segments, checking every segment's syntax up front.
func compileGlob(pattern string) ([][]string, error) {
	if pattern == "" {
		return nil, errors.New("the pattern is empty")
	}
	expanded, err := expandBraces(pattern, 0)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, p := range expanded {
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		var segs []string
		for _, s := range strings.Split(p, "/") {
			if s == "**" {
				if len(segs) > 0 && segs[len(segs)-1] == "**" {
					continue
				}
			} else if _, err := path.Match(s, ""); err != nil {
				return nil, err
			}
			segs = append(segs, s)
		}
		out = append(out, segs)
	}
	return out, nil
}

func expandBraces(p string, depth int) ([]string, error) {
	if depth > 8 {
		return nil, errors.New("too many nested {} groups")
	}
	open := strings.IndexByte(p, '{')
	if open < 0 {
		if strings.IndexByte(p, '}') >= 0 {
			return nil, errors.New("unbalanced }")
		}
		return []string{p}, nil
	}
	// Find the matching close brace and the top-level commas inside it.
	level, closeAt := 0, -1
	var commas []int
	for i := open; i < len(p) && closeAt < 0; i++ {
		switch p[i] {
		case '{':
			level++
		case '}':
			level--
			if level == 0 {
				closeAt = i
			}
		case ',':
			if level == 1 {
				commas = append(commas, i)
			}
		}
	}
	if closeAt < 0 {
		return nil, errors.New("unbalanced {")
	}
	var alts []string
	start := open + 1
	for _, c := range append(commas, closeAt) {
		alts = append(alts, p[start:c])
		start = c + 1
	}
	var out []string
	for _, a := range alts {
		more, err := expandBraces(p[:open]+a+p[closeAt+1:], depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
		if len(out) > 1024 {
			return nil, errors.New("the pattern expands to too many alternatives")
		}
	}
	return out, nil
}

// matchSegments matches path segments against pattern segments, where "**"
// matches any number (including zero) of whole segments.
func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
