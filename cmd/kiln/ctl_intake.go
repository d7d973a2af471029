package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/api/client"
)

// changeSource says where a change came from in one table cell.
func changeSource(s *api.Source) string {
	if s == nil {
		return "-"
	}
	parts := []string{s.Kind}
	if s.Provider != "" {
		parts = append(parts, s.Provider)
	}
	if s.Delivery != "" {
		parts = append(parts, "delivery "+s.Delivery)
	}
	if s.Poller != "" {
		parts = append(parts, s.Poller)
	}
	if s.User != "" {
		parts = append(parts, "by "+s.User)
	}
	return strings.Join(parts, " ")
}

func ctlConfigCmd(f *ctlFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "The farm's configuration as the master runs it",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Which config is active, when it was loaded, and why a newer one was refused",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := f.client().Config(cmd.Context())
			if err != nil {
				return err
			}
			if err := f.emit(cmd.OutOrStdout(), st, func(tw *tabwriter.Writer) { showConfig(tw, st) }); err != nil {
				return err
			}
			if st.Error != nil && !f.json {
				return fmt.Errorf("the newest config (%s) is refused; the farm runs %s", st.Error.Commit, st.Commit)
			}
			return nil
		},
	})
	return cmd
}

func showConfig(tw *tabwriter.Writer, st *api.ConfigStatus) {
	src := st.Source
	if st.Branch != "" {
		src += " branch " + st.Branch
	}
	if st.Path != "" {
		src += " path " + st.Path
	}
	fmt.Fprintf(tw, "source:\t%s\n", src)
	fmt.Fprintf(tw, "active:\t%s (loaded %s", st.Commit, ago(st.LoadedAt))
	if st.Took != "" {
		fmt.Fprintf(tw, " in %s", st.Took)
	}
	fmt.Fprintf(tw, ")\nbuilders:\t%d (last reload: %d added, %d removed, %d changed, %d queued requests cancelled)\n",
		st.Builders, st.Added, st.Removed, st.Changed, st.Cancelled)
	if e := st.Error; e != nil {
		where := e.File
		if e.Line > 0 {
			where = fmt.Sprintf("%s:%d", e.File, e.Line)
		}
		fmt.Fprintf(tw, "refused:\t%s at %s (%s)\n", e.Commit, or(where, "-"), ago(e.At))
		for _, line := range strings.Split(e.Message, "\n") {
			fmt.Fprintf(tw, "\t%s\n", line)
		}
	}
	if p := st.Fetch; p != nil {
		fmt.Fprintf(tw, "repository:\tlast poll %s, next %s, %d consecutive failures\n", ago(p.LastPoll), until(p.NextPoll), p.Failures)
		if p.LastError != "" {
			fmt.Fprintf(tw, "\tlast error: %s\n", p.LastError)
		}
	}
}

func until(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "in " + time.Until(t).Round(time.Second).String()
}

func ctlPollersCmd(f *ctlFlags) *cobra.Command {
	return ctlQuery(f, &cobra.Command{Use: "pollers", Short: "The repositories' pollers: refs seen, last and next poll, errors", Args: cobra.NoArgs},
		func(ctx context.Context, c *client.Client, _ []string) ([]api.Poller, error) { return c.Pollers(ctx) },
		func(tw *tabwriter.Writer, ps []api.Poller) {
			fmt.Fprintln(tw, "REPOSITORY\tCOMPONENTS\tREFS\tLAST POLL\tNEXT POLL\tLAST CHANGE\tFAILURES\tLAST ERROR")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\n", p.URL, strings.Join(p.Components, ","), p.Refs,
					ago(p.LastPoll), until(p.NextPoll), ago(p.LastChange), p.Failures, or(p.LastError, "-"))
			}
		})
}
