package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/api/client"
)

func ctlRepoCmd(f *ctlFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "The published apt and yum repositories: list packages, client configuration, rollback",
	}
	cmd.AddCommand(ctlRepoLsCmd(f), ctlRepoClientConfigCmd(f), ctlRepoRollbackCmd(f))
	return cmd
}

func ctlRepoLsCmd(f *ctlFlags) *cobra.Command {
	var target string
	cmd := ctlQuery(f, &cobra.Command{
		Use:   "ls CHANNEL [--target DISTRO/VERSION/ARCH]",
		Short: "List the packages and versions a channel publishes, per target",
		Args:  cobra.ExactArgs(1),
	}, func(ctx context.Context, c *client.Client, args []string) (*api.RepoList, error) {
		return c.Repos(ctx, args[0], target)
	}, func(tw *tabwriter.Writer, list *api.RepoList) {
		fmt.Fprintln(tw, "TARGET\tPACKAGE\tVERSION\tARCH\tBUILD\tFILE")
		for _, r := range list.Repos {
			if len(r.Packages) == 0 {
				fmt.Fprintf(tw, "%s\t(none)\t\t\t\t\n", r.Target)
			}
			for _, p := range r.Packages {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.Target, p.Name, p.Version, p.Arch, p.Build, p.FileName)
			}
		}
	})
	cmd.Flags().StringVar(&target, "target", "", "only this target")
	return cmd
}

func ctlRepoClientConfigCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "client-config CHANNEL DISTRO/VERSION/ARCH",
		Short: "Print an apt .sources (deb822, key inline in Signed-By) or a yum .repo for one target",
		Long: `Print what a machine needs to install from a channel's target.
For apt targets save it as /etc/apt/sources.list.d/kiln-CHANNEL.sources: the
signing key is inline. For yum targets save it under /etc/yum.repos.d/ and
put the key (printed after the .repo, as comments say) where gpgkey= points.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := f.client().ClientConfig(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), text)
			return err
		},
	}
}

func ctlRepoRollbackCmd(f *ctlFlags) *cobra.Command {
	return ctlQuery(f, &cobra.Command{Use: "rollback CHANNEL", Short: "Serve a channel's previous published version again", Args: cobra.ExactArgs(1)},
		func(ctx context.Context, c *client.Client, args []string) (*api.RollbackResult, error) {
			return c.Rollback(ctx, args[0])
		}, func(tw *tabwriter.Writer, res *api.RollbackResult) {
			fmt.Fprintf(tw, "%s now serves version %s\n", res.Channel, res.Version)
		})
}
