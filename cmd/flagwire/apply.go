package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagfile"
	"github.com/flagwire/flagwire/internal/wire"
)

// applyOptions holds the flags of `flagwire apply`.
type applyOptions struct {
	env     string
	server  string
	reason  string
	dryRun  bool
	noLint  bool
	timeout time.Duration
}

// newApplyCmd builds `flagwire apply`.
func newApplyCmd() *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply DIR --server URL [--env ENV] [--reason TEXT] [--dry-run]",
		Short: "Plan and apply flags as code to the Flag API",
		Long: `Make an environment on the server match the flags as code in DIR,
like "terraform apply": first a plan of every difference,

  + flag NAME     to create
  ~ flag NAME     to change, field by field (old → new)
  - flag NAME     to delete (on the server, not in DIR)

(segments likewise), then the changes, one write each, printing progress
on standard error. Segments are written before the flags that use them,
prerequisites before the flags that need them, and deletions last.

Every change is made safely: the flag is read for its ETag (and must still be what the plan showed), then
written with If-Match, so a concurrent edit is never overwritten: the
server answers 412 and apply stops with the current diff, to be planned
again. Each write carries an Idempotency-Key derived from its content, so
a retried request is applied once; a rerun finds nothing to change and
writes nothing.

DIR is linted first; errors stop the apply (--no-lint skips this).
--reason is recorded in the audit log as the change reason; it is
required for prod (and wherever the server requires one). The API token
is read from the FLAGWIRE_TOKEN environment variable, never from a flag,
so it stays out of shell history.

Exit status: 0 when the plan was applied (or there was nothing to do, or
--dry-run), 1 on lint or compile errors, a conflict (412, or a change made
since the plan) or a write the server refused, 2 on a usage error, an
unreadable DIR or an unreachable server.`,
		Example: `  export FLAGWIRE_TOKEN=…   # a token with flags:write
  flagwire apply flags/ --env prod --server https://flags.example.com --dry-run
  flagwire apply flags/ --env prod --server https://flags.example.com \
      --reason "Expanding canary after stable metrics (PAY-1234)"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeDirs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.env, "env", "", "environment to apply (default: the only one in DIR)")
	f.StringVar(&o.server, "server", "", "Flag API base URL (required)")
	f.StringVar(&o.reason, "reason", "", "change reason for the audit log (required for prod)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&o.noLint, "no-lint", false, "apply even when DIR has lint errors")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each request")
	cmd.MarkFlagRequired("server")
	return cmd
}

// entity kinds.
const (
	kindSegment = "segment"
	kindFlag    = "flag"
)

// change is one step of a plan.
type change struct {
	op     byte   // '+', '~' or '-'
	kind   string // kindSegment or kindFlag
	key    string
	before map[string]any // the server's, normalized; nil for '+'
	after  map[string]any // DIR's, normalized; nil for '-'
	deps   []string       // keys of the same kind this one must follow
}

// title is the change's plan line: "~ flag checkout-new-flow".
func (c *change) title() string { return string(c.op) + " " + c.kind + " " + c.key }

// plan is the difference between DIR and the server.
type plan struct {
	env      string
	changes  []*change
	notes    []string // differences apply cannot make
	required bool     // the server requires a change reason
}

// count returns the number of changes with op.
func (p *plan) count(op byte) int {
	n := 0
	for _, c := range p.changes {
		if c.op == op {
			n++
		}
	}
	return n
}

// runApply plans DIR against the server and, unless --dry-run, applies
// the plan change by change.
func runApply(cmd *cobra.Command, dir string, o applyOptions) error {
	ctx := cmd.Context()
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	client, err := newAPIClient(o.server, o.timeout, errw)
	if err != nil {
		return err
	}
	defer client.close()
	cfgs, names, err := loadFlags(dir)
	if err != nil {
		return err
	}
	want, err := pickEnv(cfgs, o.env, dir)
	if err != nil {
		return err
	}
	env := want.Environment
	o.reason = strings.TrimSpace(o.reason)
	if !o.dryRun && o.reason == "" && env == "prod" {
		return usageError(`--reason is required for environment "prod" (it is recorded in the audit log)`)
	}
	if _, err := compileConfig(want, names, dir+" does not compile"); err != nil {
		return err
	}
	if !o.noLint {
		var errs []evaluate.Finding
		for _, f := range flagfile.Lint(want, time.Now(), flagfile.LintOptions{}) {
			if f.Severity == evaluate.SeverityError {
				errs = append(errs, f)
			}
		}
		if len(errs) > 0 {
			return &findingsError{what: dir + " has lint errors (fix them, or --no-lint)", findings: errs, names: names}
		}
	}

	resp, err := client.do(ctx, apiRequest{method: http.MethodGet, path: "/v1/flags", query: url.Values{"environment": {env}}})
	if err != nil {
		return err
	}
	var have evaluate.Config
	if err := evaluate.DecodeJSON(resp.body, &have, serverJSON()); err != nil {
		return failure("GET /v1/flags?environment=%s: unexpected config from the server: %v", env, err)
	}
	p, err := makePlan(want, &have)
	if err != nil {
		return err
	}
	writePlan(out, p, o.server)
	if len(p.changes) == 0 {
		return nil
	}
	if o.dryRun {
		fmt.Fprintln(out, "Dry run: nothing was changed.")
		return nil
	}
	if o.reason == "" && p.required {
		return usageError("--reason is required: the server requires a change reason for environment %q", env)
	}
	a := &applier{client: client, env: env, reason: o.reason, progress: errw}
	fmt.Fprintf(errw, "Applying %s to environment %q…\n", plural(len(p.changes), "change"), env)
	for i, c := range p.changes {
		if err := a.apply(ctx, c, i+1, len(p.changes)); err != nil {
			for _, o := range a.opened { // still open: say so before the error
				fmt.Fprintf(out, "change request %s opened: %s (awaiting approval)\n", o.id, o.c.title())
			}
			return err
		}
	}
	if len(a.opened) == 0 {
		fmt.Fprintf(out, "Apply complete: %d added, %d changed, %d removed.\n", p.count('+'), p.count('~'), p.count('-'))
		return nil
	}
	writeOpened(out, env, a.opened, len(p.changes))
	return nil
}

// openedChange is a change request a write to a protected environment
// opened (202 Accepted) instead of applying the change.
type openedChange struct {
	id string
	c  *change
}

// writeOpened prints the change requests apply opened, one id a line.
func writeOpened(out io.Writer, env string, opened []openedChange, total int) {
	fmt.Fprintf(out, "Environment %q is protected: %s opened, awaiting approval by another principal (flagwire changes approve ID):\n",
		env, plural(len(opened), "change request"))
	for _, o := range opened {
		fmt.Fprintf(out, "  %s  %s\n", o.id, o.c.title())
	}
	fmt.Fprintf(out, "Apply complete: %d applied, %d awaiting approval.\n", total-len(opened), len(opened))
}

// ---------------------------------------------------------------------
// Planning.

// normalize returns v's JSON as a generic map without the fields the
// server owns (version, etag) or ignores (a flag's environment).
func normalize(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "version")
	delete(m, "environment")
	return m, nil
}

// serverJSON is how apply reads the server's state (its config, and its
// flag and segment documents): with the SDK's decoder, skipping the
// fields a newer server adds (and a document's "etag"), which are not
// apply's to plan.
func serverJSON() evaluate.JSONOptions { return evaluate.JSONOptions{AllowUnknownFields: true} }

// normalizeDoc normalizes an entity document of kind (a GET response) the
// way the plan normalized the config it was made from: through the model,
// so that fields unknown to this version of flagwire do not count.
func normalizeDoc(kind string, b []byte) (map[string]any, error) {
	var v any = &evaluate.Flag{}
	if kind == kindSegment {
		v = &evaluate.Segment{}
	}
	if err := evaluate.DecodeJSON(b, v, serverJSON()); err != nil {
		return nil, err
	}
	return normalize(v)
}

// makePlan diffs the desired config against the server's and orders the
// changes so that every intermediate state compiles: segment creates and
// updates (referenced segments first), flag creates and updates
// (prerequisites first), flag deletes (dependents first), segment deletes.
func makePlan(want, have *evaluate.Config) (*plan, error) {
	p := &plan{env: want.Environment, required: have.RequireChangeReason}
	if want.Salt != "" && want.Salt != have.Salt {
		p.notes = append(p.notes, "the salt differs from the server's; the API cannot change it (bucketing uses the server's)")
	}
	wantSegs := map[string]*evaluate.Segment{}
	for i := range want.Segments {
		wantSegs[want.Segments[i].Key] = &want.Segments[i]
	}
	haveSegs := map[string]*evaluate.Segment{}
	for i := range have.Segments {
		haveSegs[have.Segments[i].Key] = &have.Segments[i]
	}
	wantFlags := map[string]*evaluate.Flag{}
	for i := range want.Flags {
		wantFlags[want.Flags[i].Key] = &want.Flags[i]
	}
	haveFlags := map[string]*evaluate.Flag{}
	for i := range have.Flags {
		haveFlags[have.Flags[i].Key] = &have.Flags[i]
	}
	segUpserts, err := diffEntities(kindSegment, wantSegs, haveSegs, segmentDeps)
	if err != nil {
		return nil, err
	}
	flagUpserts, err := diffEntities(kindFlag, wantFlags, haveFlags, flagDeps)
	if err != nil {
		return nil, err
	}
	var flagDeletes, segDeletes []*change
	for _, k := range sortedKeys(haveFlags) {
		if _, ok := wantFlags[k]; !ok {
			before, err := normalize(haveFlags[k])
			if err != nil {
				return nil, err
			}
			// A deleted flag goes after the deleted flags that need it.
			var deps []string
			for _, other := range sortedKeys(haveFlags) {
				if _, kept := wantFlags[other]; !kept && other != k && slices.Contains(flagDeps(haveFlags[other]), k) {
					deps = append(deps, other)
				}
			}
			flagDeletes = append(flagDeletes, &change{op: '-', kind: kindFlag, key: k, before: before, deps: deps})
		}
	}
	for _, k := range sortedKeys(haveSegs) {
		if _, ok := wantSegs[k]; !ok {
			before, err := normalize(haveSegs[k])
			if err != nil {
				return nil, err
			}
			var deps []string
			for _, other := range sortedKeys(haveSegs) {
				if _, kept := wantSegs[other]; !kept && other != k && slices.Contains(segmentDeps(haveSegs[other]), k) {
					deps = append(deps, other)
				}
			}
			segDeletes = append(segDeletes, &change{op: '-', kind: kindSegment, key: k, before: before, deps: deps})
		}
	}
	for _, group := range [][]*change{segUpserts, flagUpserts, flagDeletes, segDeletes} {
		p.changes = append(p.changes, topoSort(group)...)
	}
	return p, nil
}

// diffEntities returns the creates and updates that make have match want.
func diffEntities[T any](kind string, want, have map[string]*T, deps func(*T) []string) ([]*change, error) {
	var out []*change
	for _, k := range sortedKeys(want) {
		after, err := normalize(want[k])
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, k, err)
		}
		c := &change{op: '+', kind: kind, key: k, after: after, deps: deps(want[k])}
		if h, ok := have[k]; ok {
			before, err := normalize(h)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", kind, k, err)
			}
			if reflect.DeepEqual(before, after) {
				continue
			}
			c.op, c.before = '~', before
		}
		out = append(out, c)
	}
	return out, nil
}

// flagDeps lists the flags f's prerequisites name.
func flagDeps(f *evaluate.Flag) []string {
	var deps []string
	for _, p := range f.Prerequisites {
		deps = append(deps, p.FlagKey)
	}
	return deps
}

// segmentDeps lists the segments s's condition references.
func segmentDeps(s *evaluate.Segment) []string {
	if s.When == "" {
		return nil
	}
	c, err := evaluate.ParseCondition(s.When)
	if err != nil {
		return nil
	}
	return c.Segments()
}

// topoSort orders changes so that each comes after the changes (in the
// same group) named by its deps, keeping key order otherwise. Cycles
// (which Compile rejects) keep their key order.
func topoSort(group []*change) []*change {
	byKey := make(map[string]*change, len(group))
	for _, c := range group {
		byKey[c.key] = c
	}
	state := map[string]int{} // 1 visiting, 2 done
	out := make([]*change, 0, len(group))
	var visit func(c *change)
	visit = func(c *change) {
		if state[c.key] != 0 {
			return
		}
		state[c.key] = 1
		for _, d := range c.deps {
			if dc, ok := byKey[d]; ok && state[d] == 0 {
				visit(dc)
			}
		}
		state[c.key] = 2
		out = append(out, c)
	}
	for _, c := range group {
		visit(c)
	}
	return out
}

// writePlan prints the plan.
func writePlan(w io.Writer, p *plan, server string) {
	var b strings.Builder
	for _, n := range p.notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(p.changes) == 0 {
		fmt.Fprintf(&b, "No changes: environment %q at %s matches.\n", p.env, server)
		io.WriteString(w, b.String())
		return
	}
	fmt.Fprintf(&b, "Plan for environment %q at %s:\n\n", p.env, server)
	for _, c := range p.changes {
		fmt.Fprintf(&b, "  %s\n", c.title())
		for _, line := range capLines(diffLines(c.before, c.after, c.op != '-')) {
			fmt.Fprintf(&b, "      %s\n", line)
		}
	}
	fmt.Fprintf(&b, "\nPlan: %d to add, %d to change, %d to remove.\n", p.count('+'), p.count('~'), p.count('-'))
	io.WriteString(w, b.String())
}

// diffLines describes the difference between two normalized entities
// field by field ("~ default.percentage: 10 → 25", "+ rules[2].id: …",
// "- metadata.jira: …"). A new entity lists its fields; a deleted one
// lists nothing unless showRemoved.
func diffLines(before, after map[string]any, showRemoved bool) []string {
	bf, af := map[string]string{}, map[string]string{}
	flatten("", before, bf)
	flatten("", after, af)
	delete(bf, "key")
	delete(af, "key")
	paths := make([]string, 0, len(bf)+len(af))
	for k := range bf {
		paths = append(paths, k)
	}
	for k := range af {
		if _, ok := bf[k]; !ok {
			paths = append(paths, k)
		}
	}
	sort.Slice(paths, func(i, j int) bool { return pathLess(paths[i], paths[j]) })
	var lines []string
	for _, k := range paths {
		old, hadOld := bf[k]
		nw, hasNew := af[k]
		switch {
		case before == nil && hasNew:
			if nw != "{}" && nw != "[]" { // empty fields of a new entity are noise
				lines = append(lines, k+": "+nw)
			}
		case hadOld && hasNew && old != nw:
			lines = append(lines, "~ "+k+": "+old+" → "+nw)
		case hasNew && !hadOld:
			lines = append(lines, "+ "+k+": "+nw)
		case hadOld && !hasNew && showRemoved && after != nil:
			lines = append(lines, "- "+k+": "+old)
		}
	}
	return lines
}

// maxDiffLines is the most lines a plan shows per change (a static
// segment of a million ids is summarized, not listed).
const maxDiffLines = 40

// capLines keeps the first maxDiffLines lines and says how many more
// there were.
func capLines(lines []string) []string {
	if len(lines) <= maxDiffLines {
		return lines
	}
	return append(lines[:maxDiffLines:maxDiffLines], fmt.Sprintf("… and %d more", len(lines)-maxDiffLines))
}

// flatten records the JSON leaves of v under dotted paths ("rules[0].id").
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			out[prefix] = "{}"
			return
		}
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = "[]"
			return
		}
		for i, e := range x {
			flatten(prefix+"["+strconv.Itoa(i)+"]", e, out)
		}
	default:
		if x == nil && prefix == "" {
			return
		}
		b, err := json.Marshal(x)
		if err != nil {
			b = []byte(fmt.Sprint(x))
		}
		out[prefix] = string(b)
	}
}

// pathLess orders flattened paths with array indexes numerically.
func pathLess(a, b string) bool {
	for a != "" && b != "" {
		ia, ib := strings.IndexAny(a, "[.]"), strings.IndexAny(b, "[.]")
		if ia < 0 {
			ia = len(a)
		}
		if ib < 0 {
			ib = len(b)
		}
		sa, sb := a[:ia], b[:ib]
		if sa != sb {
			na, ea := strconv.Atoi(sa)
			nb, eb := strconv.Atoi(sb)
			if ea == nil && eb == nil {
				return na < nb
			}
			return sa < sb
		}
		a, b = a[ia:], b[ib:]
		if a != "" && b != "" && a[0] != b[0] {
			return a[0] < b[0]
		}
		if a != "" {
			a = a[1:]
		}
		if b != "" {
			b = b[1:]
		}
	}
	return len(a) < len(b)
}

// ---------------------------------------------------------------------
// Applying.

// applier performs a plan's changes.
type applier struct {
	client   *apiClient
	env      string
	reason   string
	progress io.Writer
	// opened are the change requests opened (protected environment).
	opened []openedChange
}

// path is the entity's API path.
func (c *change) path() string {
	if c.kind == kindSegment {
		return "/v1/segments/" + c.key
	}
	return "/v1/flags/" + c.key
}

// collection is the API path entities of c's kind are created at.
func (c *change) collection() string {
	if c.kind == kindSegment {
		return "/v1/segments"
	}
	return "/v1/flags"
}

// conflictError is a change the server refused, or would have, because
// the entity changed since the plan; it exits with exitFailure.
type conflictError struct {
	c      *change
	detail string
	cur    map[string]any // the server's current state; nil if deleted or unknown
	unread error          // why the current state is unknown
}

// Error says what conflicted and shows the current server state
// against DIR.
func (e *conflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conflict: %s %s %s; it was not applied, nor anything after it. Run apply again to plan against the current state.",
		e.c.kind, e.c.key, e.detail)
	var lines []string
	switch {
	case e.unread != nil:
		fmt.Fprintf(&b, "\nIts current state could not be read: %v", e.unread)
	case e.cur == nil:
		b.WriteString("\nIt no longer exists on the server; DIR has:")
		lines = diffLines(nil, e.c.after, true)
	case e.c.after == nil:
		b.WriteString("\nDIR removes it; the server now has:")
		lines = diffLines(nil, e.cur, true)
	default:
		lines = diffLines(e.cur, e.c.after, true)
		if len(lines) == 0 {
			b.WriteString("\nThe server now matches DIR for it.")
		} else {
			b.WriteString("\nCurrent server state → DIR:")
		}
	}
	for _, l := range capLines(lines) {
		b.WriteString("\n    " + l)
	}
	return b.String()
}

// Unwrap makes conflicts exit with exitFailure.
func (e *conflictError) Unwrap() error {
	return &exitError{code: exitFailure, err: errors.New("conflict")}
}

// idempotencyKey derives a write's Idempotency-Key from its content: the
// method, target, precondition and body. Retrying the same write reuses
// it (the server answers once); any other write gets another key.
func idempotencyKey(method, path, env, ifMatch string, body []byte) string {
	h := sha256.New()
	for _, s := range []string{method, path, env, ifMatch} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(body)
	return "flagwire-apply-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// apply makes one change: create with POST; update with GET (ETag, and a
// check that the entity is what the plan saw) then PATCH If-Match with the
// changed fields; delete likewise with DELETE. n of total is progress.
func (a *applier) apply(ctx context.Context, c *change, n, total int) error {
	q := url.Values{"environment": {a.env}}
	var (
		method, path, ifMatch string
		body                  map[string]any
	)
	switch c.op {
	case '+':
		method, path = http.MethodPost, c.collection()
		body = make(map[string]any, len(c.after)+1)
		for k, v := range c.after {
			body[k] = v
		}
	case '~', '-':
		etag, err := a.current(ctx, c)
		if err != nil {
			return err
		}
		ifMatch, path = etag, c.path()
		if c.op == '~' {
			method = http.MethodPatch
			body = map[string]any{}
			for k, v := range c.after {
				if !reflect.DeepEqual(c.before[k], v) {
					body[k] = v
				}
			}
			for k := range c.before {
				if _, ok := c.after[k]; !ok {
					body[k] = nil // the server resets the field
				}
			}
		} else {
			method = http.MethodDelete
			if a.reason != "" {
				body = map[string]any{}
			}
		}
	}
	if a.reason != "" {
		body["changeReason"] = a.reason
	}
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return usageError("%s: %v", c.title(), err)
		}
	}
	hdr := map[string]string{wire.HeaderIdempotency: idempotencyKey(method, path, a.env, ifMatch, raw)}
	if ifMatch != "" {
		hdr["If-Match"] = ifMatch
	}
	start := time.Now()
	resp, err := a.client.do(ctx, apiRequest{method: method, path: path, query: q, body: raw, header: hdr})
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			switch {
			case ae.status == http.StatusPreconditionFailed:
				return a.conflict(ctx, c, "was changed on the server after it was read (412 Precondition Failed)")
			case ae.status == http.StatusConflict && c.op == '+':
				return a.conflict(ctx, c, "was created on the server after the plan (409 Conflict)")
			case ae.code == wire.CodeCompileError:
				return failure("%s: the server refused it: %s%s", c.title(), ae.message, compileDetails(ae.details))
			}
		}
		return fmt.Errorf("%s: %w", c.title(), err)
	}
	verb := map[byte]string{'+': "created", '~': "updated", '-': "deleted"}[c.op]
	extra := ""
	if resp.header.Get(wire.HeaderIdempotentReplayed) == "true" {
		extra = ", replayed"
	}
	if resp.status == http.StatusAccepted { // a protected environment: a change request
		var cr wire.ChangeRequest
		if err := json.Unmarshal(resp.body, &cr); err != nil || cr.ID == "" {
			return failure("%s: the server answered 202 without a change request: %s", c.title(), capBody(resp.body))
		}
		a.opened = append(a.opened, openedChange{id: cr.ID, c: c})
		verb = "proposed"
		extra += ", change request " + cr.ID + " awaits approval"
	}
	fmt.Fprintf(a.progress, "[%d/%d] %s %s %s (%s%s)\n", n, total, verb, c.kind, c.key, time.Since(start).Round(time.Millisecond), extra)
	return nil
}

// current reads the entity for its ETag and checks it is still what the
// plan was made from.
func (a *applier) current(ctx context.Context, c *change) (string, error) {
	resp, err := a.client.do(ctx, apiRequest{method: http.MethodGet, path: c.path(), query: url.Values{"environment": {a.env}}})
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return "", &conflictError{c: c, detail: "was deleted on the server after the plan"}
		}
		return "", err
	}
	var doc struct {
		ETag string `json:"etag"`
	}
	json.Unmarshal(resp.body, &doc)
	etag := resp.header.Get("ETag")
	if etag == "" {
		etag = doc.ETag
	}
	if etag == "" {
		return "", failure("GET %s: the server sent no ETag", c.path())
	}
	cur, err := normalizeDoc(c.kind, resp.body)
	if err != nil {
		return "", failure("GET %s: unexpected response: %v", c.path(), err)
	}
	if !reflect.DeepEqual(cur, c.before) {
		return "", &conflictError{c: c, detail: "was changed on the server after the plan", cur: cur}
	}
	return etag, nil
}

// conflict reads the entity again and reports the conflict with the
// current difference.
func (a *applier) conflict(ctx context.Context, c *change, detail string) error {
	resp, err := a.client.do(ctx, apiRequest{method: http.MethodGet, path: c.path(), query: url.Values{"environment": {a.env}}})
	ce := &conflictError{c: c, detail: detail}
	var ae *apiError
	switch {
	case err == nil:
		if ce.cur, err = normalizeDoc(c.kind, resp.body); err != nil {
			ce.unread = err
		}
	case !errors.As(err, &ae) || ae.status != http.StatusNotFound:
		ce.unread = err
	}
	return ce
}

// compileDetails formats the findings of a compile_error response.
func compileDetails(details json.RawMessage) string {
	var d struct {
		Findings []evaluate.Finding `json:"findings"`
	}
	if json.Unmarshal(details, &d) != nil || len(d.Findings) == 0 {
		return ""
	}
	var b strings.Builder
	for _, f := range d.Findings {
		b.WriteString("\n  " + findingLine(f))
	}
	return b.String()
}
