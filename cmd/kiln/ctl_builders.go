package main

import (
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/master/api"
)

// ctlBuildersCmd is the grid of the web page as a table: each builder and
// its latest build.
func ctlBuildersCmd(f *ctlFlags) *cobra.Command {
	var component, target, status string
	var limit, offset int
	cmd := &cobra.Command{
		Use:   "builders",
		Short: "List builders with their latest build (the web page's grid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
			for k, v := range map[string]string{"component": component, "target": target, "status": status} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var list api.BuilderList
			raw, err := f.client().getJSON("/api/v1/builders?"+q.Encode(), &list)
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), raw, func(tw *tabwriter.Writer) {
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
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&component, "component", "", "only this component")
	fl.StringVar(&target, "target", "", "only this target (distro/version/arch)")
	fl.StringVar(&status, "status", "", "only builders whose latest build has this status, or never")
	fl.IntVar(&limit, "limit", 0, "at most this many (0: all)")
	fl.IntVar(&offset, "offset", 0, "skip this many")
	return cmd
}
