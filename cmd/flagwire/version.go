package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// newVersionCmd builds `flagwire version`; `flagwire --version` prints the
// same line.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print flagwire's version",
		Long: `Print the version of this flagwire binary, read from its build info: the
module version when installed from a release (go install …@v1.2.3), or
"(devel)" or a pseudo-version when built from a clone, with the commit it
was built from, the commit's time and "modified" when the working tree had
uncommitted changes; then the Go version that built it.`,
		Example: `  flagwire version
  flagwire --version`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "flagwire "+buildVersion())
			return nil
		},
	}
}

// buildVersion is this binary's version from its build info.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown: built without module support)"
	}
	return versionOf(bi)
}

// versionOf formats bi as "VERSION [(revision REV, TIME[, modified])] GOVERSION":
// VERSION is the main module's version ("(devel)" when the go command had
// none to give), REV the first 12 hex digits of the VCS revision, TIME the
// revision's commit time (RFC 3339), and "modified" present when the build
// included uncommitted changes. The part in parentheses is left out when
// the build carries no VCS information (go run, -buildvcs=false, a build
// outside a repository).
func versionOf(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var b strings.Builder
	b.WriteString(v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		b.WriteString(" (revision " + rev)
		if at != "" {
			b.WriteString(", " + at)
		}
		if modified {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	}
	if bi.GoVersion != "" {
		b.WriteString(" " + bi.GoVersion)
	}
	return b.String()
}
