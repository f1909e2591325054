package sparksubmit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Argv is the wiring as spark-submit arguments: the flags, then one
// --conf per setting, sorted by key.
func (w *Wiring) Argv() []string {
	out := append([]string{}, w.Flags...)
	for _, k := range sortedKeys(w.Conf) {
		out = append(out, "--conf", k+"="+w.Conf[k])
	}
	return out
}

// FormatArgs renders the spark-submit arguments shell-quoted on one line.
func FormatArgs(w *Wiring) string {
	argv := w.Argv()
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// FormatConf renders spark-defaults.conf lines: the notes as comments, the
// flags as the configuration spark-submit would turn them into on the
// wiring's master, then the settings.
func FormatConf(w *Wiring) string {
	var b strings.Builder
	for _, n := range w.Notes {
		fmt.Fprintf(&b, "# %s\n", n)
	}
	for _, kv := range confPairs(w) {
		fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
	}
	return b.String()
}

// confPairs is every setting of w, flags included, sorted by key.
func confPairs(w *Wiring) [][2]string {
	all := map[string]string{}
	for k, v := range w.Conf {
		all[k] = v
	}
	for i := 0; i+1 < len(w.Flags); i += 2 {
		k := confKey(w.Flags[i], w.Master)
		if prev := all[k]; prev != "" {
			all[k] = prev + "," + w.Flags[i+1]
		} else {
			all[k] = w.Flags[i+1]
		}
	}
	out := make([][2]string, 0, len(all))
	for _, k := range sortedKeys(all) {
		out = append(out, [2]string{k, all[k]})
	}
	return out
}

// FormatJSON renders the wiring and its argv as indented JSON.
func FormatJSON(w *Wiring) ([]byte, error) {
	v := struct {
		*Wiring
		Args []string `json:"args"`
	}{w, w.Argv()}
	if v.Flags == nil || v.Notes == nil {
		c := *w
		if c.Flags == nil {
			c.Flags = []string{}
		}
		if c.Notes == nil {
			c.Notes = []string{}
		}
		v.Wiring = &c
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// FormatEMRServerless renders the sparkSubmitParameters string of an EMR
// Serverless job run: every setting as --conf key=value. EMR splits the
// string at spaces, so a value holding whitespace is refused.
func FormatEMRServerless(w *Wiring) (string, error) {
	var parts []string
	for _, kv := range confPairs(w) {
		if strings.ContainsAny(kv[0]+kv[1], " \t\n") {
			return "", fmt.Errorf("%s=%q: sparkSubmitParameters cannot hold whitespace", kv[0], kv[1])
		}
		parts = append(parts, "--conf", kv[0]+"="+kv[1])
	}
	return strings.Join(parts, " "), nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	// '#' starts a comment only at the start of a word.
	if s != "" && s[0] != '#' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@%+#") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
