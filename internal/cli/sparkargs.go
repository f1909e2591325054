package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sparkenv/sparkenv/planner"
	"github.com/sparkenv/sparkenv/publishers"
	"github.com/sparkenv/sparkenv/runtime/sparksubmit"
)

func init() {
	extraCommands = append(extraCommands, (*app).sparkArgsCommand, (*app).submitCommand)
}

type wiringOptions struct {
	via, master, deployMode, alias, localPython string
}

func (o *wiringOptions) flags(c *cobra.Command) {
	c.Flags().StringVar(&o.via, "via", "", "publish `ADDR` whose URLs nodes fetch from (default: the local files)")
	c.Flags().StringVar(&o.master, "master", "yarn", "cluster manager: yarn, k8s, standalone, local or emr-serverless")
	c.Flags().StringVar(&o.deployMode, "deploy-mode", "", "client or cluster (default client; cluster for emr-serverless)")
	c.Flags().StringVar(&o.alias, "alias", "", "directory archives unpack into (default environment)")
	c.Flags().StringVar(&o.localPython, "local-python", "", "driver interpreter on this machine in client mode")
}

// wiring builds the targets (and the publish) and computes what
// spark-submit needs for them.
func (a *app) wiring(ctx context.Context, addrs []string, o wiringOptions) (*sparksubmit.Wiring, error) {
	p, err := a.openProject(projectOptions{reporter: &lineReporter{w: a.stderr}})
	if err != nil {
		return nil, err
	}
	want := append([]string{}, addrs...)
	if o.via != "" {
		want = append(want, o.via)
	}
	res, err := p.exec.Build(ctx, want)
	if err != nil {
		return nil, err
	}
	if err := a.reportBuild(p, res, false, a.stderr); err != nil {
		return nil, err
	}
	var receipt *publishers.Receipt
	if o.via != "" {
		n := p.graph.Nodes[o.via]
		if n == nil || n.Class != planner.ClassPublish {
			return nil, fmt.Errorf("--via %s: not a publish block", o.via)
		}
		b, err := os.ReadFile(filepath.Join(p.cfg.Dir, "dist", "publish", n.Kind, n.Name, "receipt.json"))
		if err != nil {
			return nil, fmt.Errorf("--via %s: %w", o.via, err)
		}
		receipt = &publishers.Receipt{}
		if err := json.Unmarshal(b, receipt); err != nil {
			return nil, fmt.Errorf("--via %s: %w", o.via, err)
		}
	}
	var out *sparksubmit.Wiring
	for _, addr := range addrs {
		n := p.graph.Nodes[addr]
		ar := res.Actions[addr]
		if n == nil || n.Class != planner.ClassTarget || ar == nil || ar.Record == nil {
			return nil, fmt.Errorf("%s is not a built target", addr)
		}
		main := ar.Record.Metadata["main"]
		if _, ok := ar.Record.Manifest.Lookup(main); !ok {
			return nil, fmt.Errorf("%s has no main file", addr)
		}
		art := sparksubmit.Artifact{Path: filepath.Join(p.cfg.Dir, "dist", n.Kind, n.Name, filepath.FromSlash(main))}
		if receipt != nil {
			urls, err := receiptURLs(receipt, addr, main)
			if err != nil {
				return nil, fmt.Errorf("--via %s: %w", o.via, err)
			}
			art.URLs = urls
		}
		alias := o.alias
		if alias == "" {
			alias = ar.Record.Metadata["alias"]
		}
		w, err := sparksubmit.Args(sparksubmit.Input{
			Kind: n.Kind, Artifacts: []sparksubmit.Artifact{art}, Alias: alias,
			Interpreter: ar.Record.Metadata["interpreter"], Master: o.master, DeployMode: o.deployMode,
			PythonVersion: ar.Record.Metadata["python"], LocalPython: o.localPython,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		if out, err = mergeWiring(out, w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func receiptURLs(r *publishers.Receipt, target, path string) (map[string]string, error) {
	for _, it := range r.Items {
		if it.Target != target {
			continue
		}
		for _, f := range it.Files {
			if f.Path == path {
				return f.URLs, nil
			}
		}
	}
	return nil, fmt.Errorf("%s did not publish %s of %s", r.Address, path, target)
}

// mergeWiring combines the wiring of several targets: list-valued flags
// (--archives, --py-files, --files) are joined with commas, because
// spark-submit keeps only the last of a repeated option; two different
// values of one conf are a conflict.
func mergeWiring(a, b *sparksubmit.Wiring) (*sparksubmit.Wiring, error) {
	if a == nil {
		return b, nil
	}
	out := &sparksubmit.Wiring{Master: a.Master, DeployMode: a.DeployMode, Conf: map[string]string{}, Env: map[string]string{}}
	lists := map[string][]string{}
	var order []string
	add := func(flags []string) {
		for i := 0; i+1 < len(flags); i += 2 {
			if _, seen := lists[flags[i]]; !seen {
				order = append(order, flags[i])
			}
			lists[flags[i]] = append(lists[flags[i]], flags[i+1])
		}
	}
	add(a.Flags)
	add(b.Flags)
	for _, f := range order {
		out.Flags = append(out.Flags, f, strings.Join(lists[f], ","))
	}
	for _, m := range []map[string]string{a.Conf, b.Conf} {
		for k, v := range m {
			if old, ok := out.Conf[k]; ok && old != v && !strings.HasSuffix(k, ".pyFiles") {
				return nil, fmt.Errorf("conflicting %s: %q and %q (two targets each set the Python interpreter)", k, old, v)
			}
			out.Conf[k] = v
		}
	}
	for _, m := range []map[string]string{a.Env, b.Env} {
		for k, v := range m {
			out.Env[k] = v
		}
	}
	out.Notes = append(append([]string{}, a.Notes...), b.Notes...)
	return out, nil
}

func (a *app) sparkArgsCommand() *cobra.Command {
	var o wiringOptions
	var format string
	c := &cobra.Command{
		Use:   "spark-args ADDR... [--via PUBLISH] [--master M] [--deploy-mode D] [--format F]",
		Short: "Print what to add to spark-submit to use the built bundles",
		Long: `spark-args builds the given targets (conda_pack, venv_pack, pex, pyfiles)
and prints the spark-submit options that ship them and make Python use
them: --archives URL#environment (or --files for a PEX, --py-files for
pyfiles) and the interpreter confs for that cluster manager and deploy mode.
With --via the URLs are the published ones (s3a:// on Hadoop-based
clusters); otherwise local paths.

Formats: args (shell words), conf (spark-defaults.conf lines), json, and
emr-serverless (the sparkSubmitParameters string).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := a.wiring(cmd.Context(), args, o)
			if err != nil {
				return err
			}
			var text string
			switch format {
			case "args":
				text = sparksubmit.FormatArgs(w)
			case "conf":
				text = sparksubmit.FormatConf(w)
			case "json":
				b, err := sparksubmit.FormatJSON(w)
				if err != nil {
					return err
				}
				text = string(b)
			case "emr-serverless":
				text, err = sparksubmit.FormatEMRServerless(w)
				if err != nil {
					return err
				}
			default:
				return fmt.Errorf("--format %q: want args, conf, json or emr-serverless", format)
			}
			fmt.Fprintln(a.stdout, strings.TrimRight(text, "\n"))
			if format != "json" {
				for _, n := range w.Notes {
					fmt.Fprintf(a.stderr, "note: %s\n", n)
				}
			}
			return nil
		},
	}
	o.flags(c)
	c.Flags().StringVar(&format, "format", "args", "args, conf, json or emr-serverless")
	return c
}

func (a *app) submitCommand() *cobra.Command {
	var o wiringOptions
	c := &cobra.Command{
		Use:   "submit ADDR... [flags] -- SPARK-SUBMIT-ARGS...",
		Short: "Run spark-submit with the wiring of the built bundles added",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			addrs, pass := args, []string(nil)
			if dash >= 0 {
				addrs, pass = args[:dash], args[dash:]
			}
			if len(addrs) == 0 {
				return fmt.Errorf("name at least one target before --")
			}
			submit, err := findSparkSubmit(a.environ)
			if err != nil {
				return err
			}
			w, err := a.wiring(cmd.Context(), addrs, o)
			if err != nil {
				return err
			}
			argv := []string{"--master", sparkMasterURL(o.master, pass)}
			if w.DeployMode != "" && o.master != "local" {
				argv = append(argv, "--deploy-mode", w.DeployMode)
			}
			argv = append(argv, w.Flags...)
			keys := make([]string, 0, len(w.Conf))
			for k := range w.Conf {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				argv = append(argv, "--conf", k+"="+w.Conf[k])
			}
			argv = append(argv, stripMaster(pass)...)
			run := exec.CommandContext(cmd.Context(), submit, argv...)
			run.Stdin, run.Stdout, run.Stderr = a.stdin, a.stdout, a.stderr
			run.Env = append([]string{}, a.environ...)
			for k, v := range w.Env {
				run.Env = append(run.Env, k+"="+v)
			}
			fmt.Fprintf(a.stderr, "sparkenv: %s %s\n", submit, strings.Join(argv, " "))
			if err := run.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					return exitCode(ee.ExitCode())
				}
				return err
			}
			return nil
		},
	}
	o.flags(c)
	return c
}

// findSparkSubmit looks in $SPARK_HOME/bin, then PATH.
func findSparkSubmit(environ []string) (string, error) {
	if home := envOr(environ, "SPARK_HOME", ""); home != "" {
		p := filepath.Join(home, "bin", "spark-submit")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("spark-submit"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("spark-submit not found: set SPARK_HOME or put it on PATH (sparkenv spark-args prints the options to add by hand)")
}

// sparkMasterURL keeps a --master the user passed after --, else maps the
// wiring's cluster manager to a spark-submit master.
func sparkMasterURL(master string, pass []string) string {
	for i, a := range pass {
		if a == "--master" && i+1 < len(pass) {
			return pass[i+1]
		}
		if strings.HasPrefix(a, "--master=") {
			return strings.TrimPrefix(a, "--master=")
		}
	}
	switch master {
	case "local":
		return "local[*]"
	case "k8s":
		return "k8s://https://kubernetes.default.svc"
	}
	return master
}

func stripMaster(pass []string) []string {
	var out []string
	for i := 0; i < len(pass); i++ {
		if pass[i] == "--master" {
			i++
			continue
		}
		if strings.HasPrefix(pass[i], "--master=") {
			continue
		}
		out = append(out, pass[i])
	}
	return out
}
