package cli

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, (*app).serveCommand)
	// Conda clients do not care, but people's browsers and curl -I do.
	mime.AddExtensionType(".conda", "application/octet-stream")
	mime.AddExtensionType(".bz2", "application/x-bzip2")
	mime.AddExtensionType(".zst", "application/zstd")
	mime.AddExtensionType(".whl", "application/zip")
	mime.AddExtensionType(".sqfs", "application/octet-stream")
	mime.AddExtensionType(".pex", "application/zip")
}

func (a *app) serveCommand() *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "serve [DIR]",
		Short: "Serve a built mirror or dist/ over HTTP (for development and tests)",
		Long: `serve serves DIR (default: dist/ beside the configuration) read-only over HTTP
on a loopback address, so that a conda client, pip or a node bootstrap script
can be pointed at what sparkenv built. It prints the URL, then serves until
interrupted.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wd, err := a.workDir()
			if err != nil {
				return err
			}
			dir := filepath.Join(wd, "dist")
			if len(args) == 1 {
				dir = args[0]
				if !filepath.IsAbs(dir) {
					dir = filepath.Join(wd, dir)
				}
			}
			if info, err := os.Stat(dir); err != nil || !info.IsDir() {
				return fmt.Errorf("serve %s: not a directory", dir)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			srv := &http.Server{Handler: logRequests(a, http.FileServer(http.Dir(dir))), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(a.stdout, "Serving %s at http://%s/\n", dir, ln.Addr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			go func() {
				<-ctx.Done()
				shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(shut)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8000", "listen `ADDRESS` (host:port; port 0 picks a free one)")
	return c
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) { w.code = c; w.ResponseWriter.WriteHeader(c) }

func logRequests(a *app, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: 200}
		h.ServeHTTP(sw, r)
		fmt.Fprintf(a.stderr, "%s %s %d\n", r.Method, r.URL.Path, sw.code)
	})
}
