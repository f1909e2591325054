package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sparkenv/sparkenv/internal/condaindex"
)

func init() {
	extraCommands = append(extraCommands, (*app).indexCommand)
}

func (a *app) indexCommand() *cobra.Command {
	var shards, noCache, noHTML bool
	var jobs int
	c := &cobra.Command{
		Use:   "index DIR",
		Short: "Index a folder of conda packages in place (what conda index does)",
		Long: `index writes repodata.json, repodata.json.zst, channeldata.json and an
index.html per folder for a folder laid out as a conda channel
(<DIR>/<subdir>/*.conda|*.tar.bz2), reading only each package's info/, in
parallel. Re-runs read only new or changed packages.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wd, err := a.workDir()
			if err != nil {
				return err
			}
			dir := args[0]
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(wd, dir)
			}
			st, err := condaindex.Index(cmd.Context(), dir, condaindex.Options{
				Jobs: jobs, Zst: true, Shards: shards, Channeldata: true, HTML: !noHTML, NoCache: noCache,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Indexed %d packages in %v (%d read, %d unchanged).\n", st.Packages, st.Subdirs, st.Read, st.Reused)
			return nil
		},
	}
	c.Flags().BoolVar(&shards, "shards", false, "also write CEP 16 sharded repodata")
	c.Flags().BoolVar(&noCache, "no-cache", false, "read every package again")
	c.Flags().BoolVar(&noHTML, "no-html", false, "do not write index.html files")
	c.Flags().IntVarP(&jobs, "jobs", "j", 0, "packages read at once (default: number of cores)")
	return c
}
