// Command flagwire is Flagwire's command-line tool: it runs the reference
// Flag API server (serve) and works with flags as code.
//
//	flagwire serve --addr 127.0.0.1:8080 --flags ./flags --dev-token dev
//
// Run "flagwire help" for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	// SIGINT/SIGTERM cancel the context; long-running subcommands (serve)
	// shut down gracefully on it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(exitCode(err))
	}
}

// newRootCmd builds the flagwire command tree. Each subcommand lives in
// its own file as newXxxCmd() and is added here.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "flagwire",
		Short: "Flagwire feature flags: reference server and flags-as-code tools",
		Long:  "Flagwire feature flags: reference server and flags-as-code tools.\n\n" + exitStatusHelp,
		Example: `  flagwire serve --addr 127.0.0.1:8080 --flags flags/ --dev-token dev
  flagwire lint flags/
  flagwire eval checkout-new-flow --attr userId=8a7f4c91 --attr plan=pro --flags flags/
  flagwire help serve`,
		SilenceUsage:  true,
		SilenceErrors: false,
		// --version prints what `flagwire version` prints.
		Version: buildVersion(),
	}
	root.SetVersionTemplate("flagwire {{.Version}}\n")
	root.SetErrPrefix("flagwire:")
	root.AddCommand(
		newServeCmd(),
		newLintCmd(),
		newKeygenCmd(),
		newSignCmd(),
		newVerifyCmd(),
		newApplyCmd(),
		newChangesCmd(),
		newEvalCmd(),
		newImportEnvCmd(),
		newVersionCmd(),
	)
	return root
}
