package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kiln-build/kiln/builders"
	"github.com/spf13/cobra"
)

func newCheckconfigCmd() *cobra.Command {
	var (
		list    bool
		explain string
	)
	cmd := &cobra.Command{
		Use:   "checkconfig PATH",
		Short: "Check a farm configuration and summarise its build matrix",
		Long: `Check a farm configuration (one YAML file, or a directory of them) the way the
master would load it. On success print a summary of the build matrix; otherwise
print every problem as file:line:column: key path: message (hint: ...) on
stderr and exit with status 1.`,
		Example: `  kiln checkconfig configs/demo.yaml
  kiln checkconfig --list /etc/kiln/farm.d
  kiln checkconfig --explain 'opencore@debian/bookworm/amd64' configs/demo.yaml`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			_, m, err := builders.LoadMatrix(args[0])
			if err != nil {
				var errs builders.Errors
				if errors.As(err, &errs) {
					for _, e := range errs {
						fmt.Fprintln(cmd.ErrOrStderr(), e)
					}
					return &exitError{code: 1, err: fmt.Errorf("%s: %d %s", args[0], len(errs), plural(len(errs), "error"))}
				}
				return &exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			switch {
			case explain != "":
				return explainBuilder(out, m, explain)
			case list:
				for _, b := range m.Builders {
					fmt.Fprintln(out, b.Name)
				}
				return nil
			}
			summarize(out, args[0], m)
			return nil
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "print the builders in dependency order, one per line")
	cmd.Flags().StringVar(&explain, "explain", "", "print a builder's steps, tags, what it needs and what needs it")
	cmd.MarkFlagsMutuallyExclusive("list", "explain")
	_ = cmd.RegisterFlagCompletionFunc("explain", func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		_, m, err := builders.LoadMatrix(args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]string, len(m.Builders))
		for i, b := range m.Builders {
			names[i] = b.Name
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func summarize(w io.Writer, path string, m *builders.Matrix) {
	slots := 0
	for _, wk := range m.Config.Workers {
		slots += wk.Slots
	}
	var channels []string
	for _, ch := range m.Config.Repos.Channels {
		channels = append(channels, ch.Name)
	}
	chain := m.LongestChain()
	fmt.Fprintf(w, "%s: OK\n", path)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  components\t%d\n", len(m.Config.Components))
	fmt.Fprintf(tw, "  targets\t%d\n", len(m.Targets))
	fmt.Fprintf(tw, "  builders\t%d\n", len(m.Builders))
	fmt.Fprintf(tw, "  dependency edges\t%d\n", m.Edges())
	fmt.Fprintf(tw, "  longest chain\t%d: %s\n", len(chain), strings.Join(chain, " → "))
	fmt.Fprintf(tw, "  workers\t%d (%d slots)\n", len(m.Config.Workers), slots)
	fmt.Fprintf(tw, "  channels\t%s\n", strings.Join(channels, ", "))
	tw.Flush()
}

func explainBuilder(w io.Writer, m *builders.Matrix, name string) error {
	b, ok := m.Builder(name)
	if !ok {
		err := fmt.Errorf("unknown builder %q", name)
		if bs := m.ComponentBuilders(name); len(bs) > 0 {
			err = fmt.Errorf("%w; %s is a component, its builders are %s", err, name, names(bs[:min(len(bs), 3)]))
		} else if !strings.Contains(name, "@") {
			err = fmt.Errorf("%w; builder names look like component@distro/version/arch (see --list)", err)
		}
		return &exitError{code: 1, err: err}
	}
	c := b.Component
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "builder\t%s\n", b.Name)
	fmt.Fprintf(tw, "component\t%s (git %s, branches %s, rebuild %s)\n", c.Name, c.Git, strings.Join(c.Branches, ", "), c.Rebuild)
	fmt.Fprintf(tw, "kind\t%s, %s repository\n", b.Kind, b.Format)
	fmt.Fprintf(tw, "tags\t%s\n", cmp.Or(strings.Join(b.Tags, ", "), "(none)"))
	fmt.Fprintf(tw, "priority\t%d, collapse %t\n", b.Priority, b.Collapse)
	rows(tw, "needs", b.Deps)
	rows(tw, "needs (all)", m.DepsClosure(b.Name))
	rows(tw, "needed by", b.Dependents)
	rows(tw, "needed by (all)", m.DependentsClosure(b.Name))
	steps := make([]string, len(b.Steps))
	for i, s := range b.Steps {
		steps[i] = fmt.Sprintf("%d. %s", i+1, s.Name)
		switch {
		case len(s.Command) > 0:
			steps[i] += " (" + s.Type + ": " + strings.Join(s.Command, " ") + ")"
		case s.Script != "":
			steps[i] += " (" + s.Type + ": " + strings.TrimSpace(strings.SplitN(s.Script, "\n", 2)[0]) + ")"
		case s.Name != s.Type:
			steps[i] += " (" + s.Type + ")"
		}
	}
	rows(tw, "steps", steps)
	return tw.Flush()
}

func names(bs []*builders.Builder) string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return strings.Join(out, ", ")
}

// rows writes a labelled list one item per line, so long closures stay
// readable and greppable.
func rows(w io.Writer, label string, items []string) {
	if len(items) == 0 {
		fmt.Fprintf(w, "%s\t(none)\n", label)
		return
	}
	for i, item := range items {
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "%s\t%s\n", label, item)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
