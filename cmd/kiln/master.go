package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/master"
)

func newMasterCmd() *cobra.Command {
	var o master.Options
	var verbose bool
	cmd := &cobra.Command{
		Use:   "master --config PATH --data DIR",
		Short: "Run the control plane: embedded NATS, raft state, scheduler, REST API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ConfigPath == "" && o.ConfigGit.Git == "" {
				return errors.New("master: --config or --config-git is required")
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			m, err := master.New(o)
			if err != nil {
				return err
			}
			defer reloadOnHangup(ctx, m, o.Logger)()
			return m.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigPath, "config", "", "farm configuration file or directory (with --config-git or master.config.git: the bootstrap file)")
	f.StringVar(&o.ConfigGit.Git, "config-git", "", "load the configuration from this git repository and follow its branch")
	f.StringVar(&o.ConfigGit.Branch, "config-branch", "", "branch of --config-git (default main)")
	f.StringVar(&o.ConfigGit.Path, "config-path", "", "file or directory inside --config-git (default its root)")
	f.Var((*durationFlag)(&o.ConfigGit.Poll), "config-poll", "how often to poll --config-git (default 1m)")
	f.StringVar(&o.DataDir, "data", "", "data directory (raft state, NATS JetStream, secrets); default master.data_dir")
	f.StringVar(&o.HTTPAddr, "http", "", "HTTP listen address (default master.http, then :8010)")
	f.StringVar(&o.NATSAddr, "nats", "", "embedded NATS listen address (default master.nats, then :4222)")
	f.StringVar(&o.NATSURL, "nats-url", "", "use this external NATS cluster instead of the embedded server")
	f.StringVar(&o.RaftAddr, "raft", "", "raft transport address (default 127.0.0.1:0, one-node cluster)")
	f.StringVar(&o.SignerSocket, "signer", "", "signing agent's Unix socket, which signs repositories and rpms (default DATA/signer.sock when it exists; without one nothing is published)")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}
