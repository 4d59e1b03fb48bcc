package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagfile"
)

// lintOptions holds the flags of `flagwire lint`.
type lintOptions struct {
	format      string
	env         string
	now         string
	strict      bool
	maxSegments int
}

// The output formats of `flagwire lint`.
const (
	formatHuman  = "human"
	formatJSON   = "json"
	formatGitHub = "github"
)

// newLintCmd builds `flagwire lint`.
func newLintCmd() *cobra.Command {
	var o lintOptions
	cmd := &cobra.Command{
		Use:   "lint [DIR]",
		Short: "Check flags as code: types, unknown attributes, PII, expired flags",
		Long: `Lint the flags-as-code files under DIR (default "."), every environment
they define, with the flags-as-code checks (flagfile.Lint):

  errors    compile errors (unknown segments, bad weights, rule syntax, …),
            type errors and unknown attributes against the declared schema,
            PII in variants and payloads, a flag past its metadata.ttl that
            is still on, an invalid ttl
  warnings  missing owners or ttl, unreachable rules, large static
            segments, an expired flag that is off, a non-boolean kill switch

Each finding is reported at its file:line:col. Formats: human (default),
json (one object: findings, errors, warnings) and github (workflow
commands: ::error file=…,line=…,col=…::message, shown as annotations on
the pull request).

Exit status: 0 when there are no errors (warnings alone pass; with
--strict they fail too), 1 when there are errors, 2 on a usage error or
an unreadable DIR.`,
		Example: `  flagwire lint flags/
  flagwire lint --format github flags/          # in a GitHub Actions step
  flagwire lint --format json flags/ | jq '.findings[] | select(.severity == "error")'
  flagwire lint --now 2026-12-01 flags/         # which flags will have expired by then?`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeDirs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runLint(cmd, dir, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", formatHuman, "output format: human, json or github")
	f.StringVar(&o.env, "env", "", "lint only this environment (default: every environment in DIR)")
	f.StringVar(&o.now, "now", "", "check ttls as of this time (RFC 3339 or YYYY-MM-DD; default: now)")
	f.BoolVar(&o.strict, "strict", false, "exit 1 on warnings too")
	f.IntVar(&o.maxSegments, "max-segment-ids", 0, "warn about static segments with more ids than this (0: 10000; negative: never)")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{formatHuman, formatJSON, formatGitHub}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// lintFinding is a finding with its environment, as printed.
type lintFinding struct {
	env string
	evaluate.Finding
}

// runLint lints every environment under dir (or --env) and prints the
// findings in o.format.
func runLint(cmd *cobra.Command, dir string, o lintOptions) error {
	switch o.format {
	case formatHuman, formatJSON, formatGitHub:
	default:
		return usageError("--format %q: want human, json or github", o.format)
	}
	now, err := parseTime("now", o.now)
	if err != nil {
		return err
	}
	var found []lintFinding
	cfgs, names, err := loadFlags(dir)
	var fe *findingsError
	if errors.As(err, &fe) {
		for _, f := range names.fix(fe.findings) {
			found = append(found, lintFinding{Finding: f})
		}
	} else if err != nil {
		return err
	}
	flags := 0
	if cfgs != nil {
		envs := make([]string, 0, len(cfgs))
		for env := range cfgs {
			envs = append(envs, env)
		}
		sort.Strings(envs)
		if o.env != "" {
			if _, ok := cfgs[o.env]; !ok {
				return usageError("environment %q is not defined in %s (it defines: %s)", o.env, dir, strings.Join(envs, ", "))
			}
			envs = []string{o.env}
		}
		for _, env := range envs {
			flags += len(cfgs[env].Flags)
			for _, f := range names.fix(flagfile.Lint(cfgs[env], now, flagfile.LintOptions{MaxStaticSegmentIDs: o.maxSegments})) {
				found = append(found, lintFinding{env: env, Finding: f})
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i].Pos, found[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	errs, warns := 0, 0
	for _, f := range found {
		if f.Severity == evaluate.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	out := cmd.OutOrStdout()
	switch o.format {
	case formatJSON:
		err = writeLintJSON(out, found, errs, warns)
	case formatGitHub:
		err = writeLintGitHub(out, found)
	default:
		err = writeLintHuman(out, found, errs, warns, flags, len(cfgs))
	}
	if err != nil {
		return err
	}
	switch {
	case errs > 0:
		return failure("lint: %s, %s", plural(errs, "error"), plural(warns, "warning"))
	case o.strict && warns > 0:
		return failure("lint: %s (--strict)", plural(warns, "warning"))
	}
	return nil
}

// plural formats a count with its noun: "1 error", "2 errors".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// writeLintHuman prints one finding per line (file:line:col: severity:
// … [code]) and a summary.
func writeLintHuman(w io.Writer, found []lintFinding, errs, warns, flags, envs int) error {
	var b strings.Builder
	for _, f := range found {
		b.WriteString(findingLine(f.Finding))
		b.WriteByte('\n')
	}
	if len(found) == 0 {
		fmt.Fprintf(&b, "ok: %s in %s, no findings\n", plural(flags, "flag"), plural(envs, "environment"))
	} else {
		fmt.Fprintf(&b, "%s, %s (%s in %s)\n", plural(errs, "error"), plural(warns, "warning"), plural(flags, "flag"), plural(envs, "environment"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// lintJSONFinding is one finding in --format json.
type lintJSONFinding struct {
	File        string `json:"file,omitempty"`
	Line        int    `json:"line,omitempty"`
	Col         int    `json:"col,omitempty"`
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Environment string `json:"environment,omitempty"`
	Flag        string `json:"flag,omitempty"`
	Segment     string `json:"segment,omitempty"`
	Rule        string `json:"rule,omitempty"`
	Field       string `json:"field,omitempty"`
	Message     string `json:"message"`
}

// writeLintJSON prints {"findings": […], "errors": N, "warnings": M}.
func writeLintJSON(w io.Writer, found []lintFinding, errs, warns int) error {
	doc := struct {
		Findings []lintJSONFinding `json:"findings"`
		Errors   int               `json:"errors"`
		Warnings int               `json:"warnings"`
	}{Findings: make([]lintJSONFinding, 0, len(found)), Errors: errs, Warnings: warns}
	for _, f := range found {
		doc.Findings = append(doc.Findings, lintJSONFinding{
			File: f.Pos.File, Line: f.Pos.Line, Col: f.Pos.Col,
			Severity: string(f.Severity), Code: f.Code, Environment: f.env,
			Flag: f.Flag, Segment: f.Segment, Rule: f.Rule, Field: f.Field, Message: f.Msg,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(&doc)
}

// writeLintGitHub writes GitHub Actions workflow commands
// (::error file=F,line=L,col=C,title=CODE::MESSAGE), which the runner turns
// into annotations on the changed lines.
func writeLintGitHub(w io.Writer, found []lintFinding) error {
	var b strings.Builder
	for _, f := range found {
		level := "warning"
		if f.Severity == evaluate.SeverityError {
			level = "error"
		}
		var props []string
		if f.Pos.File != "" {
			props = append(props, "file="+ghProperty(f.Pos.File))
			if f.Pos.Line > 0 {
				props = append(props, "line="+strconv.Itoa(f.Pos.Line))
				if f.Pos.Col > 0 {
					props = append(props, "col="+strconv.Itoa(f.Pos.Col))
				}
			}
		}
		if f.Code != "" {
			props = append(props, "title="+ghProperty("flagwire "+f.Code))
		}
		msg := f.Finding
		msg.Pos = evaluate.Position{}
		text := strings.TrimPrefix(msg.String(), string(f.Severity)+": ")
		b.WriteString("::" + level)
		if len(props) > 0 {
			b.WriteString(" " + strings.Join(props, ","))
		}
		b.WriteString("::" + ghData(text) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData escapes a workflow command's message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command's property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
