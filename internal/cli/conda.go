package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/s3read"
	"github.com/sparkenv/sparkenv/planner"
)

func init() {
	extraCommands = append(extraCommands, (*app).lockCommand, (*app).solveCommand, (*app).installCommand)
}

func (a *app) engine(offline bool, jobs int) *engine.Engine {
	return &engine.Engine{
		PkgsDir:      packageCacheDir(a.environ),
		Offline:      offline,
		Jobs:         jobs,
		ChannelAlias: envOr(a.environ, "SPARKENV_CHANNEL_ALIAS", ""),
		S3:           &s3read.Client{},
		Log:          a.stderr,
	}
}

func (a *app) lockCommand() *cobra.Command {
	var update []string
	var updateAll, offline bool
	var export string
	c := &cobra.Command{
		Use:   "lock [ENV...]",
		Short: "Solve environments and write the lock file beside the configuration",
		Long: `lock solves each environment (default: all) against its channels and writes
sparkenv.lock.json beside the configuration. Packages already locked are kept
when they still satisfy the specs; --update NAME or --update-all lets them
move. An environment whose lock is up to date is not solved again.

--export explicit ENV prints the environment as a CEP 23 @EXPLICIT file for
conda create --file, and changes nothing.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadOrReport(false)
			if err != nil {
				return err
			}
			lf, err := readLock(cfg.Dir)
			if err != nil {
				return err
			}
			if export != "" {
				return a.exportLock(lf, export, args)
			}
			if lf == nil {
				lf = &lock.File{Version: lock.Version, Environments: map[string]*lock.Environment{}}
			}
			names := args
			if len(names) == 0 {
				for n := range cfg.Environments {
					names = append(names, n)
				}
				sort.Strings(names)
			}
			eng := a.engine(offline, 0)
			changed := false
			for _, name := range names {
				e := cfg.Environments[name]
				if e == nil {
					return fmt.Errorf("no environment %q in the configuration", name)
				}
				hash := planner.EnvironmentInputHash(e)
				prev := lf.Environments[name]
				if prev != nil && prev.InputHash == hash && len(update) == 0 && !updateAll {
					fmt.Fprintf(a.stdout, "environment.%s: up to date (%d packages)\n", name, len(prev.Packages))
					continue
				}
				env, err := eng.Solve(cmd.Context(), engine.SolveRequest{
					Platform: e.Platform, Channels: e.Channels, Specs: e.Dependencies,
					VirtualPackages: e.VirtualPackages, ChannelPriority: e.ChannelPriority,
					Previous: prev, Update: update, UpdateAll: updateAll, BaseDir: e.BaseDir,
					Pip: e.Pip, PipIndex: e.PipIndex, PipFindLinks: e.PipFindLinks, Environ: a.environ,
				})
				if err != nil {
					if msg, ok := engine.ExplainUnsatisfiable(err); ok {
						return fmt.Errorf("environment.%s cannot be solved:\n%s", name, msg)
					}
					return fmt.Errorf("environment.%s: %w", name, err)
				}
				env.InputHash = hash
				lf.Environments[name] = env
				changed = true
				fmt.Fprintf(a.stdout, "environment.%s: locked %d packages\n", name, len(env.Packages))
			}
			if !changed {
				return nil
			}
			return lock.Write(filepath.Join(cfg.Dir, lock.FileName), lf)
		},
	}
	c.Flags().StringArrayVar(&update, "update", nil, "let package `NAME` move to another version (repeatable)")
	c.Flags().BoolVar(&updateAll, "update-all", false, "solve from scratch, ignoring the current lock")
	c.Flags().BoolVar(&offline, "offline", false, "use cached channel indexes only")
	c.Flags().StringVar(&export, "export", "", "print the lock of one environment in `FORMAT` (explicit)")
	return c
}

func (a *app) exportLock(lf *lock.File, format string, args []string) error {
	if format != "explicit" {
		return fmt.Errorf("--export %q: the supported format is explicit", format)
	}
	if len(args) != 1 {
		return fmt.Errorf("--export explicit takes exactly one environment name")
	}
	if lf == nil || lf.Environments[args[0]] == nil {
		return fmt.Errorf("environment %q is not locked: run `sparkenv lock %s`", args[0], args[0])
	}
	_, err := a.stdout.Write(lock.Explicit(lf.Environments[args[0]]))
	return err
}

func (a *app) solveCommand() *cobra.Command {
	var channels, virtual []string
	var platform, priority string
	var jsonOut, offline bool
	c := &cobra.Command{
		Use:   "solve --channel URL --platform P [SPEC...]",
		Short: "Solve specs against channels and print the solution (no configuration needed)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(channels) == 0 {
				return fmt.Errorf("at least one --channel is required")
			}
			vp := map[string]string{}
			for _, v := range virtual {
				k, val, ok := strings.Cut(v, "=")
				if !ok {
					return fmt.Errorf("--virtual %q: want NAME=VERSION", v)
				}
				vp[k] = val
			}
			wd, err := a.workDir()
			if err != nil {
				return err
			}
			env, err := a.engine(offline, 0).Solve(cmd.Context(), engine.SolveRequest{
				Platform: platform, Channels: channels, Specs: args, VirtualPackages: vp, ChannelPriority: priority, BaseDir: wd,
			})
			if err != nil {
				if msg, ok := engine.ExplainUnsatisfiable(err); ok {
					return fmt.Errorf("cannot solve:\n%s", msg)
				}
				return err
			}
			if jsonOut {
				return writeJSON(a.stdout, env.Packages)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			for _, r := range env.Packages {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Version, r.Build, r.Channel)
			}
			return tw.Flush()
		},
	}
	c.Flags().StringArrayVarP(&channels, "channel", "c", nil, "channel name or URL, highest priority first (repeatable)")
	c.Flags().StringVarP(&platform, "platform", "p", "linux-64", "conda subdir to solve for")
	c.Flags().StringArrayVar(&virtual, "virtual", nil, "virtual package `NAME=VERSION` of the target machine, e.g. __glibc=2.31")
	c.Flags().StringVar(&priority, "channel-priority", "strict", "strict or flexible")
	c.Flags().BoolVar(&jsonOut, "json", false, "print the records as JSON")
	c.Flags().BoolVar(&offline, "offline", false, "use cached channel indexes only")
	return c
}

func (a *app) installCommand() *cobra.Command {
	var lockPath, envName, prefix string
	var offline bool
	var jobs int
	c := &cobra.Command{
		Use:   "install --lock FILE --env NAME --prefix DIR",
		Short: "Install a locked environment at DIR (no solving; the fast path for cluster nodes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if lockPath == "" || envName == "" || prefix == "" {
				return fmt.Errorf("--lock, --env and --prefix are required")
			}
			wd, err := a.workDir()
			if err != nil {
				return err
			}
			if !filepath.IsAbs(lockPath) {
				lockPath = filepath.Join(wd, lockPath)
			}
			if !filepath.IsAbs(prefix) {
				prefix = filepath.Join(wd, prefix)
			}
			lf, err := lock.Read(lockPath)
			if err != nil {
				return err
			}
			env := lf.Environments[envName]
			if env == nil {
				return fmt.Errorf("%s has no environment %q", lockPath, envName)
			}
			abs, err := filepath.Abs(prefix)
			if err != nil {
				return err
			}
			if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 {
				return fmt.Errorf("--prefix %s exists and is not empty", abs)
			}
			rep, err := a.engine(offline, jobs).Install(cmd.Context(), env, abs, engine.InstallOptions{
				TargetPrefix: abs, AllowHardlinks: true, History: "sparkenv install --env " + envName,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Installed %d packages (%d files, %s) at %s.\n", len(env.Packages), rep.Files, humanBytes(rep.Bytes), abs)
			for _, s := range rep.LinkScripts {
				fmt.Fprintf(a.stderr, "warning: link script %s was not run\n", s)
			}
			return nil
		},
	}
	c.Flags().StringVar(&lockPath, "lock", lock.FileName, "lock `FILE`")
	c.Flags().StringVar(&envName, "env", "", "environment `NAME` in the lock")
	c.Flags().StringVar(&prefix, "prefix", "", "where to install (`DIR`, absent or empty)")
	c.Flags().BoolVar(&offline, "offline", false, "use cached packages only")
	c.Flags().IntVarP(&jobs, "jobs", "j", 0, "parallel downloads and file writes")
	return c
}
