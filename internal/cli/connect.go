package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sparkenv/sparkenv/planner"
	"github.com/sparkenv/sparkenv/runtime/connect"
)

func init() {
	extraCommands = append(extraCommands, (*app).connectCommand)
}

func (a *app) connectCommand() *cobra.Command {
	c := &cobra.Command{Use: "connect", Short: "Push bundles into a Spark Connect session (Spark 3.5+)"}
	c.AddCommand(a.connectPushCommand(), a.connectHelperCommand())
	return c
}

// bundleArtifacts builds the given targets (a no-op when cached) and
// returns them as Spark Connect artifacts with content-addressed names.
func (a *app) bundleArtifacts(ctx context.Context, addrs []string, alias string) ([]connect.Artifact, error) {
	p, err := a.openProject(projectOptions{reporter: &lineReporter{w: a.stderr}})
	if err != nil {
		return nil, err
	}
	res, err := p.exec.Build(ctx, addrs)
	if err != nil {
		return nil, err
	}
	if err := a.reportBuild(p, res, false, a.stderr); err != nil {
		return nil, err
	}
	var out []connect.Artifact
	for _, addr := range addrs {
		ar := res.Actions[addr]
		n := p.graph.Nodes[addr]
		if ar == nil || ar.Record == nil || n.Class != planner.ClassTarget {
			return nil, fmt.Errorf("%s is not a built target", addr)
		}
		main := ar.Record.Metadata["main"]
		if main == "" && len(ar.Record.Manifest.Files) == 1 {
			main = ar.Record.Manifest.Files[0].Path
		}
		f, ok := ar.Record.Manifest.Lookup(main)
		if !ok {
			return nil, fmt.Errorf("%s has no main file to push", addr)
		}
		var name string
		switch n.Kind {
		case "conda_pack", "venv_pack":
			name = connect.ArchiveName(main, alias)
		case "pex":
			name = connect.FileName(main)
		case "pyfiles":
			name = connect.PyFileName(main)
		default:
			return nil, fmt.Errorf("%s: a %s target cannot be pushed into a Spark Connect session (push conda_pack, venv_pack, pex or pyfiles targets)", addr, n.Kind)
		}
		out = append(out, connect.Artifact{
			Name:   connect.ContentAddressed(name, f.SHA256),
			Path:   filepath.Join(p.cfg.Dir, "dist", n.Kind, n.Name, filepath.FromSlash(main)),
			Size:   f.Size,
			SHA256: f.SHA256,
		})
	}
	return out, nil
}

func (a *app) connectPushCommand() *cobra.Command {
	var remote, session, alias string
	var plaintextToken bool
	c := &cobra.Command{
		Use:   "push NAME | ADDR... [--remote sc://host:port/;user_id=...]",
		Short: "Build bundles and push them into a Spark Connect session",
		Long: `push builds the given targets (or the bundles of a spark_connect block),
uploads them into a Spark Connect session with AddArtifacts, and prints the
connection string with the session id and the conf that makes Python
workers use the pushed environment. Names carry the content digest, so
pushing the same bundle again is harmless on Spark 3.5 and 4.x. Without
--session (or a session_id in the remote) a new session id is made.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addrs := args
			if len(args) == 1 && !strings.Contains(args[0], ".") {
				cfg, err := a.loadOrReport(false)
				if err != nil {
					return err
				}
				sc := cfg.SparkConnects[args[0]]
				if sc == nil {
					return fmt.Errorf("no spark_connect block named %q", args[0])
				}
				addrs = nil
				for _, b := range sc.Bundles {
					addrs = append(addrs, b.Address)
				}
				if remote == "" {
					remote = sc.Remote
				}
				if session == "" {
					session = sc.Session
				}
				if alias == "" {
					alias = sc.Alias
				}
			}
			if remote == "" {
				return fmt.Errorf("--remote is required (or name a spark_connect block)")
			}
			if alias == "" {
				alias = "environment"
			}
			cs, err := connect.ParseConnString(remote)
			if err != nil {
				return err
			}
			if session != "" {
				if !connect.IsUUID(session) {
					return fmt.Errorf("--session %q is not a UUID", session)
				}
				cs.SessionID = session
			}
			if cs.SessionID == "" {
				cs.SessionID = connect.NewSessionID()
			}
			arts, err := a.bundleArtifacts(cmd.Context(), addrs, alias)
			if err != nil {
				return err
			}
			opts := []connect.Option{connect.WithClientType("sparkenv/" + Version)}
			if plaintextToken {
				opts = append(opts, connect.PlaintextToken())
			}
			if isTerminal(a.stderr) {
				opts = append(opts, connect.WithProgress(progressLine(a.stderr)))
			}
			client, err := connect.Dial(cmd.Context(), cs, opts...)
			if err != nil {
				return err
			}
			defer client.Close()
			user := cs.UserID
			if user == "" {
				user = envOr(a.environ, "USER", "")
			}
			res, err := connect.Push(cmd.Context(), client, connect.Session{ID: cs.SessionID, UserID: user}, arts...)
			if err != nil {
				return err
			}
			for _, pa := range res.Artifacts {
				state := "uploaded"
				if pa.AlreadyPresent {
					state = "already in the session"
				}
				fmt.Fprintf(a.stdout, "%s: %s (%s)\n", pa.Name, state, humanBytes(pa.Size))
			}
			fmt.Fprintf(a.stdout, "\nConnect with:\n  %s\n", cs.Redacted())
			for _, art := range arts {
				if py := connect.PythonConfPython(art); py != "" {
					fmt.Fprintf(a.stdout, "\nThen, in that session:\n  %s\n  %s\n", py, connect.PythonConfSQL(art))
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&remote, "remote", "", "Spark Connect connection string, sc://host:port/;user_id=...")
	c.Flags().StringVar(&session, "session", "", "session id (a UUID) to push into")
	c.Flags().StringVar(&alias, "alias", "", "directory archives unpack into (default environment)")
	c.Flags().BoolVar(&plaintextToken, "plaintext-token", false, "send the token without TLS (a local server only)")
	return c
}

func (a *app) connectHelperCommand() *cobra.Command {
	var alias, out string
	c := &cobra.Command{
		Use:   "helper ADDR... [-o FILE]",
		Short: "Write a Python file that pushes the built bundles from inside a PySpark session",
		Long: `helper builds the targets and writes a Python helper (default: beside the
dist/connect/<kind>-<name>.connect.py) that a notebook runs to push the
bundles into its own Spark Connect session with spark.addArtifacts and set
the interpreter conf:

  import runpy; runpy.run_path("dist/connect/conda_pack-etl.connect.py")["use_sparkenv"](spark)`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if alias == "" {
				alias = "environment"
			}
			arts, err := a.bundleArtifacts(cmd.Context(), args, alias)
			if err != nil {
				return err
			}
			if out == "" {
				// Not inside dist/<kind>/<name>/: a build replaces those
				// directories whole.
				wd, err := a.workDir()
				if err != nil {
					return err
				}
				name := strings.NewReplacer("target.", "", ".", "-").Replace(args[0])
				out = filepath.Join(wd, "dist", "connect", name+".connect.py")
			}
			if out != "-" {
				// The helper names each bundle by its path from the helper.
				abs, err := filepath.Abs(out)
				if err != nil {
					return err
				}
				for i := range arts {
					if rel, err := filepath.Rel(filepath.Dir(abs), arts[i].Path); err == nil {
						arts[i].Path = rel
					}
				}
			}
			b, err := connect.NotebookHelper(arts...)
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := a.stdout.Write(b)
				return err
			}
			if err := writeFileAtomic(out, b); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, out)
			return nil
		},
	}
	c.Flags().StringVar(&alias, "alias", "", "directory archives unpack into (default environment)")
	c.Flags().StringVarP(&out, "output", "o", "", "where to write the helper (- for standard output)")
	return c
}

// progressLine renders upload progress on one terminal line.
func progressLine(w io.Writer) connect.Progress {
	return func(name string, sent, total int64) {
		pct := 100
		if total > 0 {
			pct = int(sent * 100 / total)
		}
		fmt.Fprintf(w, "\r\033[K%s %3d%% of %s", name, pct, humanBytes(total))
		if sent >= total {
			fmt.Fprintln(w)
		}
	}
}

// bundleKinds are the target kinds a Spark Connect session can take.
var bundleKinds = map[string]func(main, alias string) string{
	"conda_pack": connect.ArchiveName,
	"venv_pack":  connect.ArchiveName,
	"pex":        func(main, _ string) string { return connect.FileName(main) },
	"pyfiles":    func(main, _ string) string { return connect.PyFileName(main) },
}

// writeConnectHelpers writes, for every bundle the build produced, the
// Python helper that pushes it from inside a notebook's Spark Connect
// session: dist/connect/<kind>-<name>.connect.py (beside dist/<kind>/, which
// a build replaces whole). A helper whose content is unchanged is not
// rewritten, so a no-op build writes nothing.
func writeConnectHelpers(p *project, res *planner.Result) error {
	dist := filepath.Join(p.cfg.Dir, "dist")
	for _, addr := range res.Order {
		ar := res.Actions[addr]
		n := p.graph.Nodes[addr]
		nameOf, ok := bundleKinds[n.Kind]
		if !ok || ar.Record == nil || n.Class != planner.ClassTarget {
			continue
		}
		main := ar.Record.Metadata["main"]
		f, ok := ar.Record.Manifest.Lookup(main)
		if !ok {
			continue
		}
		alias := ar.Record.Metadata["alias"]
		if alias == "" {
			alias = "environment"
		}
		art := connect.Artifact{
			Name:   connect.ContentAddressed(nameOf(main, alias), f.SHA256),
			Path:   filepath.ToSlash(filepath.Join("..", n.Kind, n.Name, main)),
			Size:   f.Size,
			SHA256: f.SHA256,
		}
		b, err := connect.NotebookHelper(art)
		if err != nil {
			return fmt.Errorf("%s: notebook helper: %w", addr, err)
		}
		out := filepath.Join(dist, "connect", n.Kind+"-"+n.Name+".connect.py")
		if old, err := os.ReadFile(out); err == nil && string(old) == string(b) {
			continue
		}
		if err := writeFileAtomic(out, b); err != nil {
			return err
		}
	}
	return nil
}
