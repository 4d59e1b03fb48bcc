package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// evalOptions holds the flags of `flagwire eval`.
type evalOptions struct {
	server    string
	flagsDir  string
	bootstrap string
	pubs      []string
	env       string
	attrs     []string
	explain   bool
	format    string
	now       string
	timeout   time.Duration
}

// newEvalCmd builds `flagwire eval`.
func newEvalCmd() *cobra.Command {
	var o evalOptions
	cmd := &cobra.Command{
		Use:   "eval FLAG [--attr NAME=VALUE…] (--server URL | --flags DIR | --bootstrap FILE --pub KEY)",
		Short: "Evaluate a flag for a context and say why",
		Long: `Evaluate FLAG for the context given with --attr and print the decision:
the value, the variant, the reason (rule, segment, rollout…) and, for
rollouts, the subject's bucket. --explain adds every step the engine took.

The decision comes from exactly one source:
  --server URL       the Flag API (POST /v1/evaluate); the token is read
                     from the FLAGWIRE_TOKEN environment variable
  --flags DIR        flags as code, evaluated locally
  --bootstrap FILE   a signed bootstrap file, verified with --pub first
Local and server evaluation run the same engine, so they agree.

--attr NAME=VALUE sets a string attribute; NAME:=JSON sets any JSON value
(numbers, booleans, lists: --attr age:=42 --attr beta:=true). Dotted names
nest: --attr device.os=ios. --env selects the environment (default: the
only one in DIR or the bootstrap; "prod" for --server).

Exit status: 0 when the flag was evaluated, 1 when the evaluation failed
(unknown flag, …), 2 on a usage error, an unreadable input or an
unreachable server.`,
		Example: `  flagwire eval checkout-new-flow --attr userId=8a7f4c91 --attr plan=pro --server https://flags.example.com
  flagwire eval checkout-new-flow --attr userId=8a7f4c91 --attr region=US --flags flags/ --explain
  flagwire eval pricing-experiment --attr accountId=acme-co-1337 --attr country=DE \
      --bootstrap bootstrap.json --pub keys/prod.pub --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEval(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "Flag API base URL")
	f.StringVar(&o.flagsDir, "flags", "", "flags-as-code directory to evaluate locally")
	f.StringVar(&o.bootstrap, "bootstrap", "", "signed bootstrap file to evaluate locally")
	f.StringArrayVar(&o.pubs, "pub", nil, "trusted public key for --bootstrap (repeatable)")
	f.StringVar(&o.env, "env", "", "environment")
	f.StringArrayVarP(&o.attrs, "attr", "a", nil, "context attribute NAME=VALUE (string) or NAME:=JSON (repeatable)")
	f.BoolVar(&o.explain, "explain", false, "show every evaluation step")
	f.StringVar(&o.format, "format", formatHuman, "output format: human or json (the API's decision object)")
	f.StringVar(&o.now, "now", "", "evaluate as of this time, for ramps and date rules (offline only; RFC 3339 or YYYY-MM-DD)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of the request to --server")
	cmd.MarkFlagsMutuallyExclusive("server", "flags", "bootstrap")
	cmd.MarkFlagsOneRequired("server", "flags", "bootstrap")
	cmd.MarkFlagDirname("flags")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{formatHuman, formatJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// runEval evaluates key from the chosen source and prints the decision.
func runEval(cmd *cobra.Command, key string, o evalOptions) error {
	if o.format != formatHuman && o.format != formatJSON {
		return usageError("--format %q: want human or json", o.format)
	}
	if o.server != "" && o.now != "" {
		return usageError("--now works offline only (--flags, --bootstrap): the server evaluates at its own time")
	}
	if len(o.pubs) > 0 && o.bootstrap == "" {
		return usageError("--pub goes with --bootstrap")
	}
	attrs, err := parseAttrs(o.attrs)
	if err != nil {
		return err
	}
	now, err := parseTime("now", o.now)
	if err != nil {
		return err
	}
	var (
		d      wire.Decision
		source string
	)
	switch {
	case o.server != "":
		env := o.env
		if env == "" {
			env = "prod"
		}
		d, err = evalRemote(cmd.Context(), cmd.ErrOrStderr(), o, env, key, attrs)
		if err != nil {
			return err
		}
		source = fmt.Sprintf("server %s, environment %q", o.server, env)
	case o.flagsDir != "":
		cfgs, names, err := loadFlags(o.flagsDir)
		if err != nil {
			return err
		}
		cfg, err := pickEnv(cfgs, o.env, o.flagsDir)
		if err != nil {
			return err
		}
		snap, err := compileConfig(cfg, names, o.flagsDir+" does not compile")
		if err != nil {
			return err
		}
		d = localDecision(snap, key, attrs, now, o.explain)
		source = fmt.Sprintf("flags %s, environment %q, evaluated locally", o.flagsDir, cfg.Environment)
	default:
		keys, err := loadTrustedKeys(o.pubs)
		if err != nil {
			return err
		}
		data, err := readInput(cmd.InOrStdin(), o.bootstrap, maxBootstrapBytes)
		if err != nil {
			return err
		}
		env, cfg, err := openBootstrap(data, keys, now)
		if err != nil {
			return failure("--bootstrap %s: %v", o.bootstrap, err)
		}
		if o.env != "" && o.env != env.Environment {
			return usageError("--bootstrap %s is for environment %q, not %q", o.bootstrap, env.Environment, o.env)
		}
		snap, err := evaluate.Compile(cfg)
		if err != nil {
			return failure("--bootstrap %s: %v", o.bootstrap, err)
		}
		d = localDecision(snap, key, attrs, now, o.explain)
		source = fmt.Sprintf("bootstrap %s, environment %q, version %d, key %s", o.bootstrap, env.Environment, env.Version, env.KeyID)
	}
	out := cmd.OutOrStdout()
	if o.format == formatJSON {
		b, err := json.MarshalIndent(&d, "", "  ")
		if err != nil {
			return usageError("eval: %v", err)
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			return err
		}
	} else if err := writeDecision(out, &d, source); err != nil {
		return err
	}
	if d.Error != nil {
		return failure("eval %s: %s: %s", key, d.Error.Code, d.Error.Message)
	}
	return nil
}

// parseAttrs turns --attr values into a context. NAME=VALUE is a string,
// NAME:=JSON any JSON value (numbers kept exact as json.Number, as the
// server decodes them); dotted names nest.
func parseAttrs(list []string) (map[string]any, error) {
	attrs := map[string]any{}
	for _, a := range list {
		eq := strings.IndexByte(a, '=')
		if eq <= 0 {
			return nil, usageError("--attr %q: want NAME=VALUE or NAME:=JSON", a)
		}
		name, raw := a[:eq], a[eq+1:]
		var v any = raw
		if strings.HasSuffix(name, ":") {
			name = name[:len(name)-1]
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil || dec.More() {
				return nil, usageError("--attr %s:=%s: not a JSON value (quote strings, or use %s=VALUE)", name, raw, name)
			}
		}
		parts := strings.Split(name, ".")
		m := attrs
		for i, p := range parts {
			if p == "" {
				return nil, usageError("--attr %q: empty name segment in %q", a, name)
			}
			if i == len(parts)-1 {
				if _, dup := m[p]; dup {
					return nil, usageError("--attr %q: %s is set twice", a, name)
				}
				m[p] = v
				break
			}
			next, ok := m[p]
			if !ok {
				nm := map[string]any{}
				m[p] = nm
				m = nm
				continue
			}
			nm, ok := next.(map[string]any)
			if !ok {
				return nil, usageError("--attr %q: %s is already set to a value, not an object", a, strings.Join(parts[:i+1], "."))
			}
			m = nm
		}
	}
	return attrs, nil
}

// evalRemote asks the server for the decision.
func evalRemote(ctx context.Context, warn io.Writer, o evalOptions, env, key string, attrs map[string]any) (wire.Decision, error) {
	c, err := newAPIClient(o.server, o.timeout, warn)
	if err != nil {
		return wire.Decision{}, err
	}
	defer c.close()
	body, err := json.Marshal(wire.EvaluateRequest{
		Environment: env,
		Requests:    []wire.EvaluationInput{{FlagKey: key, Context: attrs}},
		Options:     wire.EvaluateOptions{IncludeReasons: true, ReturnPayloads: true, Explain: o.explain},
	})
	if err != nil {
		return wire.Decision{}, usageError("eval: %v", err)
	}
	resp, err := c.do(ctx, apiRequest{method: http.MethodPost, path: "/v1/evaluate", body: body})
	if err != nil {
		return wire.Decision{}, err
	}
	var er wire.EvaluateResponse
	if err := json.Unmarshal(resp.body, &er); err != nil || len(er.Decisions) != 1 {
		return wire.Decision{}, usageError("eval: unexpected response from %s: %s", o.server, truncate(resp.body, 200))
	}
	return er.Decisions[0], nil
}

// localDecision evaluates key in snap and shapes the result like the
// server's decision (flagserver: includeReasons and returnPayloads on).
func localDecision(snap *evaluate.Snapshot, key string, attrs map[string]any, now time.Time, explain bool) wire.Decision {
	d := wire.Decision{FlagKey: key}
	var (
		res   evaluate.Result
		trace []evaluate.TraceStep
	)
	if explain {
		res, trace = snap.EvaluateExplain(key, attrs, now)
		for _, t := range trace {
			d.Explain = append(d.Explain, wire.ExplainStep{Step: t.Step, ID: t.ID, Matched: t.Matched, Detail: t.Detail})
		}
	} else {
		res = snap.Evaluate(key, attrs, now)
	}
	if res.Reason.Kind == evaluate.ReasonError || res.Value == nil {
		code := res.Reason.ErrorCode
		if code == evaluate.ErrorNone {
			code = evaluate.ErrorGeneral
		}
		msg := "evaluation failed: " + string(code)
		if code == evaluate.ErrorFlagNotFound {
			msg = "flag " + strconv.Quote(key) + " not found in environment " + strconv.Quote(snap.Environment())
		}
		d.Variant = json.RawMessage("null")
		d.Error = &wire.DecisionError{Code: string(code), Message: msg}
		d.Reason = &wire.Reason{Kind: string(evaluate.ReasonError), ErrorCode: string(code)}
		return d
	}
	d.Variant = jsonValue(res.Value)
	d.VariantKey = res.Variant
	d.FlagVersion = res.FlagVersion
	d.FlagMetadata = res.FlagMetadata
	if res.Payload != nil {
		d.Payload = jsonValue(res.Payload)
	}
	d.Reason = wire.ReasonOf(&res)
	if res.HasBucketing {
		by := evaluate.DefaultBucketBy
		if f, ok := snap.Flag(key); ok && f.Bucketing.By != "" {
			by = f.Bucketing.By
		}
		d.Bucketing = &wire.Bucketing{Seed: res.Bucketing.Seed, Hash: res.Bucketing.HashHex(), Bucket: *d.Reason.Bucket, By: by}
	}
	return d
}

// jsonValue encodes a decided value or payload.
func jsonValue(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// writeDecision prints a decision for people.
func writeDecision(w io.Writer, d *wire.Decision, source string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s = %s\n", d.FlagKey, compactJSON(d.Variant))
	row := func(k, v string) { fmt.Fprintf(&b, "  %-8s %s\n", k, v) }
	if d.VariantKey != "" {
		row("variant", d.VariantKey)
	}
	if r := d.Reason; r != nil {
		reason := r.Kind
		var extra []string
		if r.RuleID != "" {
			extra = append(extra, "rule "+r.RuleID)
		}
		if r.Segment != "" {
			extra = append(extra, "segment "+r.Segment)
		}
		if r.Prerequisite != "" {
			extra = append(extra, "prerequisite "+r.Prerequisite)
		}
		if r.ErrorCode != "" {
			extra = append(extra, r.ErrorCode)
		}
		if len(extra) > 0 {
			reason += " (" + strings.Join(extra, ", ") + ")"
		}
		row("reason", reason)
	}
	if bk := d.Bucketing; bk != nil {
		row("bucket", fmt.Sprintf("%d of %d (seed %q, by %s, hash %s)", bk.Bucket, evaluate.BucketCount, bk.Seed, bk.By, bk.Hash))
	}
	if len(d.Payload) > 0 {
		row("payload", compactJSON(d.Payload))
	}
	if d.FlagVersion != 0 {
		row("version", strconv.FormatInt(d.FlagVersion, 10))
	}
	if len(d.FlagMetadata) > 0 {
		if md, err := json.Marshal(d.FlagMetadata); err == nil { // keys sorted
			row("metadata", string(md))
		}
	}
	if d.Error != nil {
		row("error", d.Error.Code+": "+d.Error.Message)
	}
	row("source", source)
	if len(d.Explain) > 0 {
		b.WriteString("explain:\n")
		for i, s := range d.Explain {
			mark := "-"
			if s.Matched {
				mark = "✓"
			}
			name := s.Step
			if s.ID != "" {
				name += " " + s.ID
			}
			fmt.Fprintf(&b, "  %d. %s %s: %s\n", i+1, mark, name, s.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// compactJSON renders raw JSON on one line.
func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// truncate returns b as trimmed text of at most n bytes.
func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
