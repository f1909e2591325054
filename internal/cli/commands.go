package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gofrs/flock"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"

	"github.com/sparkenv/sparkenv/internal/conda/matchspec"
	"github.com/sparkenv/sparkenv/planner"
	"github.com/sparkenv/sparkenv/spec"
)

func validateMatchSpec(s string) error {
	_, err := matchspec.Parse(s)
	return err
}

// project is a loaded configuration with its graph and executor.
type project struct {
	cfg   *spec.Config
	graph *planner.Graph
	exec  *planner.Executor
}

type projectOptions struct {
	json      bool
	jobs      int
	offline   bool
	dryRun    bool
	republish bool
	reporter  planner.Reporter
}

// openProject loads the configuration, builds its graph and opens the
// store. Diagnostics are printed; the error is then an exit code.
func (a *app) openProject(po projectOptions) (*project, error) {
	cfg, err := a.loadOrReport(po.json)
	if err != nil {
		return nil, err
	}
	lf, err := readLock(cfg.Dir)
	if err != nil {
		return nil, err
	}
	g, diags := planner.NewGraph(cfg, defaultRegistries(), lf)
	if diags.HasErrors() {
		a.reportDiagnostics(diags, cfg, po.json)
		return nil, exitCode(1)
	}
	opts := planner.Options{
		CacheDir:        envOr(a.environ, "SPARKENV_CACHE_DIR", ""),
		PackageCacheDir: packageCacheDir(a.environ),
		Jobs:            po.jobs,
		Environ:         builderEnviron(a.environ),
		Offline:         po.offline,
		DryRun:          po.dryRun,
		Republish:       po.republish,
		Reporter:        po.reporter,
	}
	x, err := planner.NewExecutor(g, opts)
	if err != nil {
		return nil, err
	}
	return &project{cfg: cfg, graph: g, exec: x}, nil
}

func (a *app) validateCommand() *cobra.Command {
	var jsonOut bool
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration and report every problem with its position",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, diags, err := a.load(jsonOut)
			if err != nil {
				return err
			}
			// The graph stage runs on whatever decoded, so that one run
			// reports problems of both stages.
			lf, err := readLock(cfg.Dir)
			if err != nil {
				return err
			}
			_, gd := planner.NewGraph(cfg, defaultRegistries(), lf)
			diags = append(diags, withoutBrokenFiles(gd, cfg)...)
			if jsonOut {
				writeJSON(a.stdout, diagnosticsJSON(diags, cfg.Dir))
			} else if len(diags) > 0 {
				renderDiagnostics(a.stderr, diags, cfg.Files, cfg.Dir)
			}
			if diags.HasErrors() {
				return exitCode(1)
			}
			if !jsonOut {
				fmt.Fprintln(a.stdout, "The configuration is valid.")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&jsonOut, "json", false, "print the result as JSON")
	return c
}

type planAction struct {
	Address string   `json:"address"`
	Kind    string   `json:"kind"`
	Status  string   `json:"status"`
	Key     string   `json:"key,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func (a *app) planCommand() *cobra.Command {
	var jsonOut, detailed bool
	c := &cobra.Command{
		Use:   "plan [ADDR...]",
		Short: "Show what a build would do, and why",
		Long: `plan lists every action a build of the given addresses (default: all) would
take: "build" with the reason (new, a config attribute, an input file or a
dependency changed), "cached", "maybe" (runs unless its dependencies rebuild
into identical bytes) or "blocked". With --detailed-exitcode it exits 2 when
anything would run.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.openProject(projectOptions{json: jsonOut})
			if err != nil {
				return err
			}
			res, err := p.exec.Plan(cmd.Context(), args)
			if err != nil {
				return err
			}
			acts := []planAction{}
			changes := 0
			blocked := 0
			for _, addr := range res.Order {
				ar := res.Actions[addr]
				pa := planAction{Address: addr, Kind: ar.Kind, Status: string(ar.Status), Key: ar.Key}
				for _, ch := range ar.Changes {
					pa.Reasons = append(pa.Reasons, ch.String())
				}
				if ar.Err != nil {
					pa.Error = ar.Err.Error()
				}
				switch ar.Status {
				case planner.StatusBuild, planner.StatusMaybe:
					changes++
				case planner.StatusBlocked, planner.StatusSkipped:
					blocked++
				}
				acts = append(acts, pa)
			}
			if jsonOut {
				writeJSON(a.stdout, map[string]any{"actions": acts, "changes": changes, "blocked": blocked})
			} else {
				for _, pa := range acts {
					mark := map[string]string{"build": "+", "maybe": "~", "cached": "=", "blocked": "!", "skipped": "-"}[pa.Status]
					line := fmt.Sprintf("%s %-7s %s", mark, pa.Status, pa.Address)
					if len(pa.Reasons) > 0 {
						line += " (" + strings.Join(pa.Reasons, "; ") + ")"
					}
					if pa.Error != "" {
						line += ": " + pa.Error
					}
					fmt.Fprintln(a.stdout, line)
				}
				fmt.Fprintf(a.stdout, "\nPlan: %d to run, %d cached, %d blocked.\n", changes, len(acts)-changes-blocked, blocked)
			}
			if blocked > 0 {
				return exitCode(1)
			}
			if detailed && changes > 0 {
				return exitCode(2)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&jsonOut, "json", false, "print the plan as JSON")
	c.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when something would run")
	return c
}

func (a *app) buildCommand() *cobra.Command {
	var jsonOut, offline, dryRun, republish bool
	var jobs int
	c := &cobra.Command{
		Use:   "build [ADDR...]",
		Short: "Build targets and run publishes that are not up to date",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			var rep planner.Reporter
			var bars *barReporter
			switch {
			case jsonOut:
				rep = &jsonReporter{enc: json.NewEncoder(a.stdout)}
			case isTerminal(a.stderr):
				bars = newBarReporter(a.stderr)
				rep = bars
			default:
				rep = &lineReporter{w: a.stderr}
			}
			p, err := a.openProject(projectOptions{json: jsonOut, jobs: jobs, offline: offline, dryRun: dryRun, republish: republish, reporter: rep})
			if err != nil {
				return err
			}
			res, err := p.exec.Build(ctx, args)
			if bars != nil {
				bars.Wait()
			}
			if err != nil {
				return err
			}
			if err := writeConnectHelpers(p, res); err != nil {
				return err
			}
			return a.reportBuild(p, res, jsonOut, a.stdout)
		},
	}
	c.Flags().BoolVar(&jsonOut, "json", false, "print events and the result as JSON lines")
	c.Flags().IntVarP(&jobs, "jobs", "j", 0, "run `N` actions at once (default: number of cores)")
	c.Flags().BoolVar(&offline, "offline", false, "use cached packages only")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "publishers report what they would upload and change nothing")
	c.Flags().BoolVar(&republish, "republish", false, "run publishes even when cached (verifies the destination)")
	return c
}

// reportBuild prints the root causes and a summary line to summary: stdout
// for build, stderr for commands whose stdout is their own output.
func (a *app) reportBuild(p *project, res *planner.Result, jsonOut bool, summary io.Writer) error {
	counts := res.Counts()
	roots := res.RootCauses()
	if jsonOut {
		type failure struct {
			Address string     `json:"address"`
			Error   string     `json:"error"`
			Log     string     `json:"log,omitempty"`
			Range   *jsonRange `json:"range,omitempty"`
		}
		fs := []failure{}
		for _, r := range roots {
			f := failure{Address: r.Address, Error: r.Err.Error(), Log: r.LogTail}
			f.Range = &jsonRange{Filename: displayPath(r.Range.Filename, p.cfg.Dir),
				Start: jsonPos{r.Range.Start.Line, r.Range.Start.Column, r.Range.Start.Byte},
				End:   jsonPos{r.Range.End.Line, r.Range.End.Column, r.Range.End.Byte}}
			fs = append(fs, f)
		}
		enc := json.NewEncoder(a.stdout)
		enc.Encode(map[string]any{"type": "result", "built": counts[planner.StatusBuilt], "cached": counts[planner.StatusCached],
			"failed": counts[planner.StatusFailed] + counts[planner.StatusBlocked], "skipped": counts[planner.StatusSkipped], "failures": fs})
	} else {
		var diags hcl.Diagnostics
		for _, r := range roots {
			detail := r.Err.Error()
			if r.LogTail != "" {
				detail += "\n\nLast lines of its log:\n" + indent(r.LogTail, "    ")
			}
			rng := r.Range
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: r.Address + " failed", Detail: detail, Subject: &rng})
		}
		renderDiagnostics(a.stderr, diags, p.cfg.Files, p.cfg.Dir)
		fmt.Fprintf(summary, "Built %d, cached %d, failed %d, skipped %d.\n",
			counts[planner.StatusBuilt], counts[planner.StatusCached],
			counts[planner.StatusFailed]+counts[planner.StatusBlocked], counts[planner.StatusSkipped])
	}
	if len(roots) > 0 {
		return exitCode(1)
	}
	return nil
}

func indent(s, pre string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n")
}

func (a *app) explainCommand() *cobra.Command {
	var jsonOut bool
	c := &cobra.Command{
		Use:   "explain ADDR",
		Short: "Show what an action's cache key is made of, and what changed since the last run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.openProject(projectOptions{json: jsonOut})
			if err != nil {
				return err
			}
			res, err := p.exec.Plan(cmd.Context(), args)
			if err != nil {
				return err
			}
			ar := res.Actions[args[0]]
			last := p.exec.Store().Last(args[0])
			var changes []planner.Change
			if ar.Preimage != nil {
				changes = planner.Diff(last, ar.Preimage)
			}
			if jsonOut {
				return writeJSON(a.stdout, map[string]any{"address": ar.Address, "status": ar.Status, "key": ar.Key,
					"preimage": ar.Preimage, "last": last, "changes": changes})
			}
			fmt.Fprintf(a.stdout, "%s: %s\n", ar.Address, ar.Status)
			if ar.Preimage == nil {
				reason := "its dependencies have no result yet"
				if ar.Err != nil {
					reason = ar.Err.Error()
				}
				fmt.Fprintf(a.stdout, "The key cannot be computed now: %s.\n", reason)
				return nil
			}
			fmt.Fprintf(a.stdout, "key: %s\n\npre-image:\n", ar.Key)
			b, _ := json.MarshalIndent(ar.Preimage, "  ", "  ")
			fmt.Fprintf(a.stdout, "  %s\n\n", b)
			switch {
			case last == nil:
				fmt.Fprintln(a.stdout, "No earlier run recorded for this address.")
			case len(changes) == 0:
				fmt.Fprintln(a.stdout, "Unchanged since the last run.")
			default:
				fmt.Fprintln(a.stdout, "Changed since the last run:")
				for _, ch := range changes {
					fmt.Fprintf(a.stdout, "  - %s", ch)
					if ch.What == "config" || ch.What == "input" || ch.What == "dependency" {
						fmt.Fprintf(a.stdout, ": %s → %s", short(ch.Old), short(ch.New))
					}
					fmt.Fprintln(a.stdout)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	return c
}

func short(s string) string {
	if s == "" {
		return "(none)"
	}
	if len(s) == 64 && !strings.ContainsAny(s, " \"{[") {
		return s[:12]
	}
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func (a *app) graphCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "graph",
		Short: "Print the action graph in Graphviz DOT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.openProject(projectOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "digraph sparkenv {")
			fmt.Fprintln(a.stdout, "  rankdir = LR;")
			fmt.Fprintln(a.stdout, "  node [shape = box, fontname = \"Helvetica\"];")
			shapes := map[planner.Class]string{planner.ClassEnvironment: "ellipse", planner.ClassTarget: "box", planner.ClassPublish: "cds"}
			for _, addr := range p.graph.Order {
				n := p.graph.Nodes[addr]
				fmt.Fprintf(a.stdout, "  %q [shape = %s];\n", addr, shapes[n.Class])
			}
			for _, addr := range p.graph.Order {
				for _, d := range p.graph.Nodes[addr].Deps {
					fmt.Fprintf(a.stdout, "  %q -> %q;\n", d, addr)
				}
			}
			fmt.Fprintln(a.stdout, "}")
			return nil
		},
	}
}

func (a *app) fmtCommand() *cobra.Command {
	var check bool
	c := &cobra.Command{
		Use:   "fmt [FILE...]",
		Short: "Rewrite configuration files in the canonical format",
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.workDir()
			if err != nil {
				return err
			}
			files := args
			if len(files) == 0 {
				files = a.files
			}
			if len(files) == 0 {
				files, _ = filepath.Glob(filepath.Join(dir, "*.hcl"))
			}
			sort.Strings(files)
			changed := 0
			var diags hcl.Diagnostics
			parsed := map[string]*hcl.File{}
			for _, f := range files {
				p := f
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				src, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				// Refuse to format what does not parse: formatting would
				// hide the error.
				if _, d := hclwriteParse(src, p); d.HasErrors() {
					diags = append(diags, d...)
					parsed[p] = &hcl.File{Bytes: src}
					continue
				}
				out := hclwrite.Format(src)
				if string(out) == string(src) {
					continue
				}
				changed++
				if check {
					fmt.Fprintln(a.stdout, displayPath(p, dir))
					continue
				}
				if err := writeFileAtomic(p, out); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, displayPath(p, dir))
			}
			if diags.HasErrors() {
				renderDiagnostics(a.stderr, diags, parsed, dir)
				return exitCode(1)
			}
			if check && changed > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&check, "check", false, "list files that are not formatted and exit 1; change nothing")
	return c
}

func (a *app) cleanCommand() *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "clean",
		Short: "Remove dist/ (and with --cache the project's build cache)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.workDir()
			if err != nil {
				return err
			}
			targets := []string{filepath.Join(dir, "dist")}
			cache := envOr(a.environ, "SPARKENV_CACHE_DIR", filepath.Join(dir, ".sparkenv"))
			if all {
				targets = append(targets, cache)
			} else {
				targets = append(targets, filepath.Join(cache, "tmp"))
			}
			// Not while a build runs: take its lock (when the cache exists).
			if _, err := os.Stat(cache); err == nil {
				fl := flock.New(filepath.Join(cache, "build.lock"))
				if err := fl.Lock(); err != nil {
					return err
				}
				defer fl.Unlock()
			}
			for _, t := range targets {
				if err := os.RemoveAll(t); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "cache", false, "also remove the build cache")
	return c
}

func (a *app) cacheCommand() *cobra.Command {
	c := &cobra.Command{Use: "cache", Short: "Manage the build cache"}
	var shared bool
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove cache entries that no block of the configuration uses any more",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if envOr(a.environ, "SPARKENV_CACHE_DIR", "") != "" && !shared {
				return fmt.Errorf("SPARKENV_CACHE_DIR is set: the cache may be shared with other projects, whose entries gc would remove; pass --shared to do it anyway")
			}
			p, err := a.openProject(projectOptions{})
			if err != nil {
				return err
			}
			res, err := p.exec.Plan(context.Background(), nil)
			if err != nil {
				return err
			}
			keep := map[string]bool{}
			for _, ar := range res.Actions {
				if ar.Key != "" {
					keep[ar.Key] = true
				}
			}
			fl := flock.New(filepath.Join(p.exec.Store().Dir, "build.lock"))
			if err := fl.Lock(); err != nil {
				return err
			}
			defer fl.Unlock()
			files, bytes, err := p.exec.Store().GC(keep)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Removed %d files (%s).\n", files, humanBytes(bytes))
			return nil
		},
	}
	gc.Flags().BoolVar(&shared, "shared", false, "collect a cache set by SPARKENV_CACHE_DIR, removing what other projects use")
	c.AddCommand(gc)
	return c
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// withoutBrokenFiles drops diagnostics in files that failed to parse: their
// blocks are incomplete, and what the later stage says of them is noise.
func withoutBrokenFiles(diags hcl.Diagnostics, cfg *spec.Config) hcl.Diagnostics {
	broken := map[string]bool{}
	for name, f := range cfg.Files {
		if _, d := hclwriteParse(f.Bytes, name); d.HasErrors() {
			broken[name] = true
		}
	}
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Subject != nil && broken[d.Subject.Filename] {
			continue
		}
		out = append(out, d)
	}
	return out
}
