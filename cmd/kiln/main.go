// Command kiln is the one binary of the Kiln build farm: master, worker,
// signer, the ctl client and the config checker are its subcommands.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Set at link time by the Makefile (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		os.Exit(exitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "kiln",
		Short:         "Kiln: a distributed package build farm",
		Long:          "Kiln turns VCS changes into dependency-ordered package builds on a matrix of\ndistributions, versions and architectures, signs what they make and publishes\nsigned apt and yum repositories.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newMasterCmd(),
		newCtlCmd(),
		newCheckconfigCmd(),
		newSignerCmd(),
		newWorkerCmd(),
		newDemoCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "kiln %s (commit %s)\n", version, commit)
			return nil
		},
	}
}

// exitError carries a specific process exit status (checkconfig exits 1 on a
// bad config after it has printed the errors itself).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if ee, ok := err.(*exitError); ok {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "kiln:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "kiln:", err)
	return 1
}
