package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/api/client"
)

// ctlBuildersCmd is the grid of the web page as a table: each builder and
// its latest build.
func ctlBuildersCmd(f *ctlFlags) *cobra.Command {
	var lf listFilter
	cmd := ctlQuery(f, &cobra.Command{Use: "builders", Short: "List builders with their latest build (the web page's grid)", Args: cobra.NoArgs},
		func(ctx context.Context, c *client.Client, _ []string) (*api.BuilderList, error) {
			return c.Builders(ctx, api.BuilderFilter{Component: lf.component, Target: lf.target, Status: lf.status, Limit: lf.limit, Offset: lf.offset})
		}, func(tw *tabwriter.Writer, list *api.BuilderList) {
			fmt.Fprintln(tw, "BUILDER\tLATEST\tSTATUS")
			for _, b := range list.Builders {
				latest, st := "-", api.StatusNever
				if b.Latest != nil {
					latest, st = strconv.FormatInt(b.Latest.ID, 10), b.Latest.Status
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, latest, st)
			}
			fmt.Fprintf(tw, "(%d of %d)\n", len(list.Builders), list.Total)
		})
	lf.register(cmd, "only builders whose latest build has this status, or never", 0, "at most this many (0: all)")
	return cmd
}
