package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// renderDiagnostics prints diagnostics for people: a summary line, the
// position as file:line:column, the source line with a caret under the
// subject, and the detail sentence.
func renderDiagnostics(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File, baseDir string) {
	sortDiagnostics(diags)
	for _, d := range diags {
		sev := "Error"
		if d.Severity == hcl.DiagWarning {
			sev = "Warning"
		}
		fmt.Fprintf(w, "%s: %s\n", sev, d.Summary)
		if d.Subject != nil {
			r := *d.Subject
			fmt.Fprintf(w, "  --> %s:%d:%d\n", displayPath(r.Filename, baseDir), r.Start.Line, r.Start.Column)
			if f := files[r.Filename]; f != nil {
				if line, ok := sourceLine(f.Bytes, r.Start.Line); ok {
					num := fmt.Sprint(r.Start.Line)
					pad := strings.Repeat(" ", len(num))
					fmt.Fprintf(w, "  %s |\n", pad)
					fmt.Fprintf(w, "  %s | %s\n", num, strings.ReplaceAll(line, "\t", " "))
					width := 1
					if r.End.Line == r.Start.Line && r.End.Column > r.Start.Column {
						width = r.End.Column - r.Start.Column
					} else if r.End.Line > r.Start.Line {
						width = max(1, len([]rune(line))-r.Start.Column+1)
					}
					fmt.Fprintf(w, "  %s | %s%s\n", pad, strings.Repeat(" ", max(0, r.Start.Column-1)), strings.Repeat("^", width))
				}
			}
		}
		if d.Detail != "" {
			fmt.Fprintf(w, "  = %s\n", d.Detail)
		}
		fmt.Fprintln(w)
	}
}

func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil && b == nil:
			return false
		case a == nil:
			return false
		case b == nil:
			return true
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

func sourceLine(src []byte, line int) (string, bool) {
	lines := bytes.Split(src, []byte("\n"))
	if line < 1 || line > len(lines) {
		return "", false
	}
	return strings.TrimRight(string(lines[line-1]), "\r"), true
}

func displayPath(name, base string) string {
	if base != "" && filepath.IsAbs(name) {
		if rel, err := filepath.Rel(base, name); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return name
}

// The JSON shape of diagnostics follows `terraform validate -json`.
type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonDiag struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail"`
	Range    *jsonRange `json:"range,omitempty"`
}

type jsonValidation struct {
	Valid        bool       `json:"valid"`
	ErrorCount   int        `json:"error_count"`
	WarningCount int        `json:"warning_count"`
	Diagnostics  []jsonDiag `json:"diagnostics"`
}

func diagnosticsJSON(diags hcl.Diagnostics, baseDir string) jsonValidation {
	sortDiagnostics(diags)
	out := jsonValidation{Diagnostics: []jsonDiag{}}
	for _, d := range diags {
		jd := jsonDiag{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
			out.WarningCount++
		} else {
			out.ErrorCount++
		}
		if d.Subject != nil {
			r := d.Subject
			jd.Range = &jsonRange{
				Filename: displayPath(r.Filename, baseDir),
				Start:    jsonPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:      jsonPos{r.End.Line, r.End.Column, r.End.Byte},
			}
		}
		out.Diagnostics = append(out.Diagnostics, jd)
	}
	out.Valid = out.ErrorCount == 0
	return out
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
