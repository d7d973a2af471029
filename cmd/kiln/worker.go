package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/worker"
)

func newWorkerCmd() *cobra.Command {
	var (
		cfg         worker.Config
		credentials string
		verbose     bool
	)
	cmd := &cobra.Command{
		Use:   "worker --master nats://HOST:4222 --name NAME --credentials FILE",
		Short: "Run a build host: connect out to the master and run the builds it sends",
		Long: "Runs builds for a Kiln master. The worker only dials out (no inbound port),\n" +
			"advertises tags detected from /etc/os-release, uname -m and the build tools\n" +
			"on PATH plus --tags, and reconnects with backoff when the master goes away.\n\n" +
			"The first SIGTERM or SIGINT drains: running builds finish, no new ones start.\n" +
			"A second one cancels the running builds; the master retries them elsewhere.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Name == "" {
				return errors.New("worker: --name is required")
			}
			if credentials == "" {
				return errors.New("worker: --credentials is required (a file holding the worker's token, mode 0600)")
			}
			tok, err := readCredentials(credentials)
			if err != nil {
				return err
			}
			cfg.Token = tok
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Version = version
			w, err := worker.New(cfg)
			if err != nil {
				return err
			}
			return runWorker(cmd.Context(), w, cfg.Logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NATSURL, "master", "nats://localhost:4222", "the master's NATS URL(s), comma-separated")
	f.StringVar(&cfg.Name, "name", "", "worker name, as in the master's configuration (its NATS user)")
	f.StringVar(&credentials, "credentials", "", "file holding the worker's token (one line, mode 0600)")
	f.StringSliceVar(&cfg.Tags, "tags", nil, "extra tags to advertise, comma-separated")
	f.IntVar(&cfg.Slots, "slots", 1, "builds to run at once")
	f.StringVar(&cfg.WorkDir, "workdir", "/var/lib/kiln/worker", "directory for build workspaces")
	f.StringVar(&cfg.CacheDir, "cache", "", "directory for caches kept between builds (default WORKDIR/cache)")
	f.BoolVar(&cfg.KeepWorkspaces, "keep-workspaces", false, "leave each build's workspace behind for debugging")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

// runWorker runs w until it stops: the first signal drains, the second cancels.
func runWorker(parent context.Context, w *worker.Worker, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)

	var handler sync.WaitGroup
	defer handler.Wait()
	defer cancel()
	handler.Go(func() {
		drained := false
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if !drained {
					drained = true
					log.Info("draining: running builds finish, no new ones start; signal again to cancel them", "signal", sig.String())
					w.Drain()
					continue
				}
				log.Info("cancelling running builds", "signal", sig.String())
				cancel()
				return
			}
		}
	})
	return w.Run(ctx)
}

// readCredentials reads the worker's token. A file others can read is
// refused: the token is all it takes to run builds in this worker's name.
func readCredentials(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("worker credentials: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("worker credentials %s are readable by group or others (mode %04o): run chmod 600 %s", path, perm, filepath.Clean(path))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("worker credentials: %w", err)
	}
	tok, _, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", fmt.Errorf("worker credentials %s: empty file", path)
	}
	return tok, nil
}
