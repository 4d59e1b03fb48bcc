package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire/internal/wire"
)

// changesOptions holds the flags shared by `flagwire changes` subcommands.
type changesOptions struct {
	server  string
	timeout time.Duration
	json    bool
	// list
	env, status string
	limit       int
	// approve, reject
	reason string
}

// newChangesCmd builds `flagwire changes` and its subcommands.
func newChangesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "changes",
		Short: "List, show, approve and reject change requests of protected environments",
		Long: `Change requests of protected environments (flagwire serve --protect ENV,
or requireApproval: true in flags as code): a write to such an environment
is not applied but opens a change request, which a principal other than
the requester, holding the flags:approve scope, approves (applying it) or
rejects. An approval applies the change only if the entity is still as it
was when the change was requested; otherwise the change request becomes
stale and must be proposed again (run flagwire apply again).

The API token is read from the FLAGWIRE_TOKEN environment variable, never
from a flag, so it stays out of shell history.

Exit status: 0 on success, 1 when the server refused (403: no
flags:approve scope or your own change; 404: no such change request; 409:
already decided, or stale), 2 on a usage error or an unreachable server.`,
		Example: `  export FLAGWIRE_TOKEN=…   # a token with flags:approve
  flagwire changes list --server https://flags.example.com --env prod
  flagwire changes show c-abc123 --server https://flags.example.com
  flagwire changes approve c-abc123 --server https://flags.example.com --reason "Reviewed (PAY-1234)"
  flagwire changes reject c-abc123 --server https://flags.example.com --reason "Wait for the freeze to end"`,
	}
	cmd.AddCommand(newChangesListCmd(), newChangesShowCmd(), newChangesDecideCmd("approve"), newChangesDecideCmd("reject"))
	return cmd
}

func (o *changesOptions) common(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "Flag API base URL (required)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each request")
	cmd.MarkFlagRequired("server")
}

func newChangesListCmd() *cobra.Command {
	var o changesOptions
	cmd := &cobra.Command{
		Use:   "list --server URL [--env ENV] [--status STATUS] [--limit N] [--json]",
		Short: "List change requests, newest first",
		Example: `  flagwire changes list --server https://flags.example.com --env prod --status pending
  flagwire changes list --server https://flags.example.com --status stale --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runChangesList(cmd, o)
		},
	}
	o.common(cmd)
	f := cmd.Flags()
	f.StringVar(&o.env, "env", "", "only this environment's change requests")
	f.StringVar(&o.status, "status", "", "only change requests with this status: pending, applied, rejected or stale")
	f.IntVar(&o.limit, "limit", 50, "list at most this many")
	f.BoolVar(&o.json, "json", false, "print the change requests as JSON (one array)")
	return cmd
}

func newChangesShowCmd() *cobra.Command {
	var o changesOptions
	cmd := &cobra.Command{
		Use:     "show ID --server URL [--json]",
		Short:   "Show a change request with its diff",
		Example: `  flagwire changes show c-abc123 --server https://flags.example.com`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runChangesShow(cmd, args[0], o)
		},
	}
	o.common(cmd)
	cmd.Flags().BoolVar(&o.json, "json", false, "print the change request as JSON")
	return cmd
}

func newChangesDecideCmd(action string) *cobra.Command {
	var o changesOptions
	short := "Approve a change request: apply it (needs flags:approve; not your own)"
	if action == "reject" {
		short = "Reject a change request (needs flags:approve, or be its requester)"
	}
	cmd := &cobra.Command{
		Use:     action + " ID --server URL [--reason TEXT]",
		Short:   short,
		Example: "  flagwire changes " + action + " c-abc123 --server https://flags.example.com --reason \"Reviewed (PAY-1234)\"",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runChangesDecide(cmd, action, args[0], o)
		},
	}
	o.common(cmd)
	cmd.Flags().StringVar(&o.reason, "reason", "", "reason for the audit log (required where the server requires change reasons, such as prod)")
	return cmd
}

// validChangeID checks an id argument before it goes into a URL path.
func validChangeID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/?#% \t") {
		return usageError("%q is not a change request id (such as c-abc123)", id)
	}
	return nil
}

// changeClient checks the change request id argument and opens the
// client of --server for a command about that change request.
func (o changesOptions) changeClient(cmd *cobra.Command, id string) (*apiClient, error) {
	if err := validChangeID(id); err != nil {
		return nil, err
	}
	return newAPIClient(o.server, o.timeout, cmd.ErrOrStderr())
}

func runChangesList(cmd *cobra.Command, o changesOptions) error {
	if o.limit <= 0 {
		return usageError("--limit must be positive")
	}
	switch o.status {
	case "", wire.ChangePending, wire.ChangeApplied, wire.ChangeRejected, wire.ChangeStale:
	default:
		return usageError("--status %q: want pending, applied, rejected or stale", o.status)
	}
	client, err := newAPIClient(o.server, o.timeout, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer client.close()
	var all []wire.ChangeRequest
	cursor := ""
	for len(all) < o.limit {
		q := url.Values{"limit": {strconv.Itoa(min(o.limit-len(all), 1000))}}
		for k, v := range map[string]string{"environment": o.env, "status": o.status, "cursor": cursor} {
			if v != "" {
				q.Set(k, v)
			}
		}
		resp, err := client.do(cmd.Context(), apiRequest{method: http.MethodGet, path: "/v1/changes", query: q})
		if err != nil {
			return err
		}
		var page wire.ChangeList
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return failure("GET /v1/changes: unexpected response: %v", err)
		}
		all = append(all, page.Changes...)
		if page.NextCursor == "" || len(page.Changes) == 0 {
			break
		}
		cursor = page.NextCursor
	}
	out := cmd.OutOrStdout()
	if o.json {
		return writeJSONOut(out, all)
	}
	if len(all) == 0 {
		fmt.Fprintln(out, "No change requests.")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tENVIRONMENT\tCHANGE\tREQUESTED BY\tCREATED\tREASON")
	for _, c := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Environment, changeTitle(&c), c.RequestedBy,
			c.CreatedAt.UTC().Format(time.RFC3339), oneLine(c.ChangeReason, 60))
	}
	return tw.Flush()
}

// changeTitle is a change request's plan line: "~ flag checkout-new-flow".
func changeTitle(c *wire.ChangeRequest) string {
	op := map[string]string{"create": "+", "update": "~", "delete": "-"}[c.Action]
	if op == "" {
		op = c.Action
	}
	return op + " " + c.Entity.Kind + " " + c.Entity.Key
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func writeJSONOut(out io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

func runChangesShow(cmd *cobra.Command, id string, o changesOptions) error {
	client, err := o.changeClient(cmd, id)
	if err != nil {
		return err
	}
	defer client.close()
	cr, err := getChange(cmd.Context(), client, id)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSONOut(cmd.OutOrStdout(), cr)
	}
	writeChange(cmd.OutOrStdout(), cr)
	return nil
}

func getChange(ctx context.Context, client *apiClient, id string) (*wire.ChangeRequest, error) {
	resp, err := client.do(ctx, apiRequest{method: http.MethodGet, path: "/v1/changes/" + id})
	if err != nil {
		return nil, err
	}
	var cr wire.ChangeRequest
	if err := json.Unmarshal(resp.body, &cr); err != nil {
		return nil, failure("GET /v1/changes/%s: unexpected response: %v", id, err)
	}
	return &cr, nil
}

// writeChange prints a change request and its diff, field by field.
func writeChange(out io.Writer, c *wire.ChangeRequest) {
	var b strings.Builder
	fmt.Fprintf(&b, "change request %s: %s\n", c.ID, c.Status)
	fmt.Fprintf(&b, "  environment:   %s\n", c.Environment)
	fmt.Fprintf(&b, "  change:        %s\n", changeTitle(c))
	fmt.Fprintf(&b, "  requested by:  %s at %s\n", c.RequestedBy, c.CreatedAt.UTC().Format(time.RFC3339))
	if c.ChangeReason != "" {
		fmt.Fprintf(&b, "  reason:        %s\n", c.ChangeReason)
	}
	if c.BaseETag != "" {
		fmt.Fprintf(&b, "  base ETag:     %s\n", c.BaseETag)
	}
	if c.DecidedBy != "" && c.DecidedAt != nil {
		fmt.Fprintf(&b, "  decided by:    %s at %s\n", c.DecidedBy, c.DecidedAt.UTC().Format(time.RFC3339))
	}
	if c.DecisionReason != "" {
		fmt.Fprintf(&b, "  decision:      %s\n", c.DecisionReason)
	}
	if c.AppliedVersion != 0 {
		fmt.Fprintf(&b, "  applied at version %d\n", c.AppliedVersion)
	}
	if c.Status == wire.ChangeStale {
		fmt.Fprintf(&b, "  stale: the %s changed since (ETag now %s); propose the change again\n", c.Entity.Kind, orNone(c.CurrentETag))
	}
	before, after := docMap(c.Diff.Before), docMap(c.Diff.After)
	if lines := capLines(diffLines(before, after, true)); len(lines) > 0 {
		b.WriteString("  diff:\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "      %s\n", l)
		}
	}
	io.WriteString(out, b.String())
}

func orNone(s string) string {
	if s == "" {
		return "none: it was deleted"
	}
	return s
}

// docMap decodes an entity document for diffLines, without the fields
// the server owns (version, etag); nil for none.
func docMap(b json.RawMessage) map[string]any {
	if len(b) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	delete(m, "version")
	delete(m, "etag")
	delete(m, "environment")
	return m
}

func runChangesDecide(cmd *cobra.Command, action, id string, o changesOptions) error {
	client, err := o.changeClient(cmd, id)
	if err != nil {
		return err
	}
	defer client.close()
	body, err := json.Marshal(wire.ChangeDecisionBody{ChangeReason: strings.TrimSpace(o.reason)})
	if err != nil {
		return err
	}
	path := "/v1/changes/" + id + "/" + action
	// A key derived from the decision: a retried request is answered once.
	sum := sha256.Sum256(append([]byte(path+"\x00"), body...))
	hdr := map[string]string{wire.HeaderIdempotency: "flagwire-changes-" + hex.EncodeToString(sum[:16])}
	resp, err := client.do(cmd.Context(), apiRequest{method: http.MethodPost, path: path, body: body, header: hdr})
	if err != nil {
		return err
	}
	var cr wire.ChangeRequest
	if err := json.Unmarshal(resp.body, &cr); err != nil {
		return failure("POST %s: unexpected response: %v", path, err)
	}
	out := cmd.OutOrStdout()
	switch cr.Status {
	case wire.ChangeApplied:
		fmt.Fprintf(out, "Approved and applied change request %s: %s in environment %q (version %d).\n", cr.ID, changeTitle(&cr), cr.Environment, cr.AppliedVersion)
	default:
		fmt.Fprintf(out, "Change request %s is %s: %s in environment %q.\n", cr.ID, cr.Status, changeTitle(&cr), cr.Environment)
	}
	return nil
}

// capBody is a response body for an error message: one line, at most 200
// bytes.
func capBody(b []byte) string {
	return oneLine(string(b), 200)
}
