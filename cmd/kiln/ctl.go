package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/api/client"
	"github.com/kiln-build/kiln/protocol"
)

// ctlFlags are shared by every ctl subcommand.
type ctlFlags struct {
	master string
	token  string
	json   bool
}

func newCtlCmd() *cobra.Command {
	f := &ctlFlags{}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Talk to a running master: force builds, list and show them, read logs, cancel, explain",
	}
	cmd.PersistentFlags().StringVar(&f.master, "master", "", "master URL (default $KILN_MASTER, then http://localhost:8010)")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "a user's API token for force, cancel and rebuild, and for reading when pages are private (default $KILN_TOKEN)")
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print the API's JSON instead of tables")
	cmd.AddCommand(
		ctlForceCmd(f), ctlBuildersCmd(f), ctlBuildsCmd(f), ctlShowCmd(f), ctlLogCmd(f), ctlCancelCmd(f),
		ctlRebuildCmd(f), ctlWorkersCmd(f), ctlExplainCmd(f), ctlChangesCmd(f),
		ctlConfigCmd(f), ctlPollersCmd(f), ctlRepoCmd(f),
	)
	return cmd
}

func (f *ctlFlags) client() *client.Client { return client.New(f.master, f.token) }

// emit prints v as the API's JSON with --json, or calls table otherwise.
func (f *ctlFlags) emit(w io.Writer, v any, table func(*tabwriter.Writer)) error {
	if f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// ctlQuery makes cmd ask the API one thing and print the answer: as a
// table, or as the API's JSON with --json.
func ctlQuery[T any](f *ctlFlags, cmd *cobra.Command, ask func(ctx context.Context, c *client.Client, args []string) (T, error), table func(*tabwriter.Writer, T)) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		res, err := ask(cmd.Context(), f.client(), args)
		if err != nil {
			return err
		}
		return f.emit(cmd.OutOrStdout(), res, func(tw *tabwriter.Writer) { table(tw, res) })
	}
	return cmd
}

// aboutBuild asks about the build its one argument names.
func aboutBuild[T any](ask func(*client.Client, context.Context, int64) (T, error)) func(context.Context, *client.Client, []string) (T, error) {
	return func(ctx context.Context, c *client.Client, args []string) (T, error) {
		id, err := buildID(args[0])
		if err != nil {
			var zero T
			return zero, err
		}
		return ask(c, ctx, id)
	}
}

func buildID(arg string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(arg, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("bad build id %q: want a positive number", arg)
	}
	return id, nil
}

func ctlForceCmd(f *ctlFlags) *cobra.Command {
	var rev string
	cmd := ctlQuery(f, &cobra.Command{
		Use:   "force COMPONENT[@TARGET]",
		Short: "Build a component (and its reverse dependencies per its rebuild policy) now",
		Args:  cobra.ExactArgs(1),
	}, func(ctx context.Context, c *client.Client, args []string) (*api.ForceResult, error) {
		return c.Force(ctx, api.ForceRequest{Component: args[0], Rev: rev})
	}, func(tw *tabwriter.Writer, res *api.ForceResult) {
		ids := make([]string, len(res.Builds))
		for i, id := range res.Builds {
			ids[i] = strconv.FormatInt(id, 10)
		}
		fmt.Fprintf(tw, "change %d, buildset %d: %d builds: %s\n", res.Change, res.Buildset, len(res.Builds), strings.Join(ids, " "))
	})
	cmd.Flags().StringVar(&rev, "rev", "", "revision to build (default: branch head)")
	return cmd
}

func ctlBuildsCmd(f *ctlFlags) *cobra.Command {
	var lf listFilter
	cmd := ctlQuery(f, &cobra.Command{Use: "builds", Short: "List builds, newest first", Args: cobra.NoArgs},
		func(ctx context.Context, c *client.Client, _ []string) (*api.BuildList, error) {
			return c.Builds(ctx, api.BuildFilter{Component: lf.component, Target: lf.target, Status: lf.status, Limit: lf.limit, Offset: lf.offset})
		}, func(tw *tabwriter.Writer, list *api.BuildList) {
			fmt.Fprintln(tw, "ID\tBUILDER\tSTATUS\tWORKER\tSTARTED\tTOOK\tSUMMARY")
			for _, b := range list.Builds {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Builder, b.Status, or(b.Worker, "-"), ago(b.Started), took(b.Started, b.Ended), b.Summary)
			}
			fmt.Fprintf(tw, "(%d of %d)\n", len(list.Builds), list.Total)
		})
	lf.register(cmd, "only this status ("+strings.Join(protocol.Statuses, ", ")+")", 50, "at most this many")
	return cmd
}

// listFilter is the filter and page flags shared by the list commands,
// which the API's list endpoints all take as the same query parameters.
type listFilter struct {
	component, target, status string
	limit, offset             int
}

func (lf *listFilter) register(cmd *cobra.Command, statusUsage string, limit int, limitUsage string) {
	fl := cmd.Flags()
	fl.StringVar(&lf.component, "component", "", "only this component")
	fl.StringVar(&lf.target, "target", "", "only this target (distro/version/arch)")
	fl.StringVar(&lf.status, "status", "", statusUsage)
	fl.IntVar(&lf.limit, "limit", limit, limitUsage)
	fl.IntVar(&lf.offset, "offset", 0, "skip this many")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func ctlShowCmd(f *ctlFlags) *cobra.Command {
	return ctlQuery(f, &cobra.Command{
		Use:   "show BUILD",
		Short: "Show a build: steps, timings, properties, artifacts, attempts",
		Args:  cobra.ExactArgs(1),
	}, aboutBuild((*client.Client).Build), showBuild)
}

func showBuild(tw *tabwriter.Writer, b *api.BuildDetail) {
	fmt.Fprintf(tw, "build\t%d\n", b.ID)
	fmt.Fprintf(tw, "builder\t%s\n", b.Builder)
	fmt.Fprintf(tw, "status\t%s\n", b.Status)
	if b.Summary != "" {
		fmt.Fprintf(tw, "summary\t%s\n", b.Summary)
	}
	if b.SupersededBy != 0 {
		fmt.Fprintf(tw, "superseded by\t%d\n", b.SupersededBy)
	}
	if b.Change != nil {
		fmt.Fprintf(tw, "change\t%d (%s, revision %s)\n", b.Change.ID, b.Change.Reason, or(b.Change.Revision, "branch head"))
	}
	fmt.Fprintf(tw, "worker\t%s\n", or(b.Worker, "-"))
	fmt.Fprintf(tw, "created\t%s\n", b.Created.Local().Format("2006-01-02 15:04:05.000"))
	fmt.Fprintf(tw, "started\t%s\n", ago(b.Started))
	fmt.Fprintf(tw, "took\t%s\n", took(b.Started, b.Ended))
	if len(b.Steps) > 0 {
		fmt.Fprintln(tw, "\nSTEP\tNAME\tSTATUS\tTOOK\tSUMMARY")
		for _, s := range b.Steps {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", s.Index, s.Name, s.Status, took(s.Started, s.Ended), s.Summary)
		}
	}
	if len(b.Properties) > 0 {
		fmt.Fprintln(tw, "\nPROPERTY\tVALUE")
		keys := make([]string, 0, len(b.Properties))
		for k := range b.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\n", k, b.Properties[k])
		}
	}
	if len(b.Artifacts) > 0 {
		fmt.Fprintln(tw, "\nARTIFACT\tSIZE\tSHA256")
		for _, a := range b.Artifacts {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", a.Name, a.Size, a.SHA256)
		}
	}
	if len(b.Attempts) > 0 {
		fmt.Fprintln(tw, "\nATTEMPT\tWORKER\tSTATUS\tASSIGNED\tTOOK\tREASON")
		for _, a := range b.Attempts {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.N, a.Worker, a.Status, ago(a.Assigned), took(a.Started, a.Ended), a.Reason)
		}
	}
}

func ctlLogCmd(f *ctlFlags) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "log BUILD",
		Short: "Print a build's log; --follow streams it until the build ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := buildID(args[0])
			if err != nil {
				return err
			}
			status, err := f.client().Log(cmd.Context(), id, follow, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if follow && status != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "build %d ended: %s\n", id, status)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream until the build ends")
	return cmd
}

func ctlCancelCmd(f *ctlFlags) *cobra.Command {
	return ctlQuery(f, &cobra.Command{Use: "cancel BUILD", Short: "Cancel a pending or running build", Args: cobra.ExactArgs(1)},
		aboutBuild((*client.Client).Cancel), func(tw *tabwriter.Writer, b *api.Build) {
			fmt.Fprintf(tw, "build %d %s: %s\n", b.ID, b.Builder, b.Status)
		})
}

func ctlRebuildCmd(f *ctlFlags) *cobra.Command {
	return ctlQuery(f, &cobra.Command{Use: "rebuild BUILD", Short: "Request a build's builder again at the same revision", Args: cobra.ExactArgs(1)},
		aboutBuild((*client.Client).Rebuild), func(tw *tabwriter.Writer, res *api.ForceResult) {
			fmt.Fprintf(tw, "change %d: new build %v\n", res.Change, res.Builds)
		})
}

func ctlWorkersCmd(f *ctlFlags) *cobra.Command {
	return ctlQuery(f, &cobra.Command{Use: "workers", Short: "List workers: connection, tags, slots, running builds", Args: cobra.NoArgs},
		func(ctx context.Context, c *client.Client, _ []string) ([]api.Worker, error) { return c.Workers(ctx) },
		func(tw *tabwriter.Writer, ws []api.Worker) {
			fmt.Fprintln(tw, "NAME\tSTATE\tSLOTS\tFREE\tRUNNING\tLAST SEEN\tTAGS")
			for _, w := range ws {
				st := "offline"
				switch {
				case w.Connected && w.Draining:
					st = "draining"
				case w.Connected:
					st = "online"
				}
				run := make([]string, len(w.Running))
				for i, id := range w.Running {
					run[i] = strconv.FormatInt(id, 10)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", w.Name, st, w.Slots, w.Free, or(strings.Join(run, ","), "-"), ago(w.LastSeen), strings.Join(w.Tags, ","))
			}
		})
}

func ctlExplainCmd(f *ctlFlags) *cobra.Command {
	return ctlQuery(f, &cobra.Command{
		Use:   "explain REQUEST",
		Short: "Say why a build request waits: a dependency, missing worker tags, or busy slots",
		Args:  cobra.ExactArgs(1),
	}, aboutBuild((*client.Client).Explain), func(tw *tabwriter.Writer, e *api.Explanation) {
		fmt.Fprintf(tw, "request %d (%s, %s): %s\n", e.Build, e.Builder, e.Status, e.Reason)
	})
}

func ctlChangesCmd(f *ctlFlags) *cobra.Command {
	var (
		limit     int
		component string
	)
	cmd := ctlQuery(f, &cobra.Command{Use: "changes", Short: "List changes, newest first", Args: cobra.NoArgs},
		func(ctx context.Context, c *client.Client, _ []string) (*api.ChangeList, error) {
			return c.Changes(ctx, api.ChangeFilter{Component: component, Limit: limit})
		}, func(tw *tabwriter.Writer, cs *api.ChangeList) {
			fmt.Fprintln(tw, "ID\tCOMPONENT\tTARGET\tREVISION\tBUILDSET\tCREATED\tSOURCE\tREASON")
			for _, c := range cs.Changes {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.ID, c.Component, or(c.Target, "all"), or(c.Revision, "head"), c.Buildset, ago(c.Created), changeSource(c.Source), c.Reason)
			}
		})
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	cmd.Flags().StringVar(&component, "component", "", "only this component's changes")
	return cmd
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("15:04:05")
}

func took(start, end time.Time) string {
	if start.IsZero() {
		return "-"
	}
	if end.IsZero() {
		return time.Since(start).Truncate(time.Second).String() + "…"
	}
	return end.Sub(start).Round(time.Millisecond).String()
}
