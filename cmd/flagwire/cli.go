package main

// Shared plumbing of the flags-as-code subcommands (lint, keygen, sign,
// verify, apply, eval, import-env): exit statuses, loading flags-as-code
// directories, printing findings, and the Flag API client.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagfile"
	"github.com/flagwire/flagwire/internal/retry"
	"github.com/flagwire/flagwire/internal/wire"
)

// Exit statuses of the flagwire command, as main maps errors to them with
// exitCode.
const (
	// exitOK: success (lint: no errors, warnings allowed).
	exitOK = 0
	// exitFailure: the command ran and the answer is "no": lint errors, a
	// bootstrap that fails verification, an apply conflict or refused
	// write, an evaluation error.
	exitFailure = 1
	// exitUsage: bad usage (flags, arguments), unreadable input, I/O or
	// network errors.
	exitUsage = 2
)

// exitStatusHelp documents the exit statuses for the root command's help.
const exitStatusHelp = `Exit status:
  0  success (lint: no errors; warnings alone do not fail)
  1  the check failed: lint errors, a bootstrap that fails verification,
     an apply conflict (412), a request the server refused, an
     evaluation error
  2  usage error, unreadable input, I/O or network error`

// exitError is an error with the exit status it should end the process
// with. Errors that are not exitErrors exit with exitUsage (cobra's usage
// errors, I/O errors).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failure returns an error that exits with exitFailure.
func failure(format string, args ...any) error {
	return &exitError{code: exitFailure, err: fmt.Errorf(format, args...)}
}

// usageError returns an error that exits with exitUsage.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps the error returned by the command tree to the process exit
// status: nil is exitOK, an *exitError carries its own, anything else
// (usage errors from cobra, I/O errors) is exitUsage.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}

// ---------------------------------------------------------------------
// Flags as code.

// loadFlags loads the flags-as-code files under path (a directory, read
// recursively, or a single .yaml/.yml file) with flagfile.LoadDir. The
// files in positions are named by their path joined to path's directory,
// as the user would open them. Load problems (YAML syntax, unknown fields,
// conflicts) are returned as a *findingsError (exit 1); a missing or
// unreadable path is a usage error (exit 2).
func loadFlags(path string) (map[string]*evaluate.Config, *fileNamer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	root, name := path, "."
	if !st.IsDir() {
		root, name = filepath.Dir(path), filepath.Base(path)
	}
	fn := &fileNamer{root: root}
	cfgs, err := flagfile.LoadDir(os.DirFS(root), name)
	if err != nil {
		var le *evaluate.LoadError
		if errors.As(err, &le) {
			return nil, fn, &findingsError{findings: le.Findings, names: fn, what: "cannot load " + path}
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fn, usageError("%s: %v", filepath.Join(root, pe.Path), pe.Err)
		}
		return nil, fn, usageError("%s: %v", path, err)
	}
	if len(cfgs) == 0 {
		return nil, fn, usageError("%s: no flags-as-code files (*.yaml, *.yml) found", path)
	}
	return cfgs, fn, nil
}

// fileNamer turns the file names of findings (relative to the loaded
// root) into paths the user can open.
type fileNamer struct{ root string }

// name returns the openable path of file (a name relative to the root).
func (n *fileNamer) name(file string) string {
	if n == nil || file == "" {
		return file
	}
	return filepath.ToSlash(filepath.Join(n.root, filepath.FromSlash(file)))
}

// fix returns findings with their file names made openable.
func (n *fileNamer) fix(findings []evaluate.Finding) []evaluate.Finding {
	out := slices.Clone(findings)
	for i := range out {
		out[i].Pos.File = n.name(out[i].Pos.File)
	}
	return out
}

// completeDirs completes a command's one directory argument.
func completeDirs(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// pickEnv selects the environment named want from cfgs, or, when want is
// empty, the only one. where names the source in errors.
func pickEnv(cfgs map[string]*evaluate.Config, want, where string) (*evaluate.Config, error) {
	names := make([]string, 0, len(cfgs))
	for k := range cfgs {
		names = append(names, k)
	}
	sort.Strings(names)
	if want == "" {
		if len(names) == 1 {
			return cfgs[names[0]], nil
		}
		return nil, usageError("%s defines several environments (%s): choose one with --env", where, strings.Join(names, ", "))
	}
	cfg, ok := cfgs[want]
	if !ok {
		return nil, usageError("environment %q is not defined in %s (it defines: %s)", want, where, strings.Join(names, ", "))
	}
	return cfg, nil
}

// findingsError reports compile or load findings: the findings are printed
// one per line under what, and the command exits with exitFailure.
type findingsError struct {
	what     string
	findings []evaluate.Finding
	names    *fileNamer
}

// Error lists the findings, one per line, with openable file names.
func (e *findingsError) Error() string {
	var b strings.Builder
	b.WriteString(e.what)
	fs := e.names.fix(e.findings)
	fmt.Fprintf(&b, ": %d problem(s):", len(fs))
	for _, f := range fs {
		b.WriteString("\n  ")
		b.WriteString(findingLine(f))
	}
	return b.String()
}

// Unwrap makes findings exit with exitFailure.
func (e *findingsError) Unwrap() error { return &exitError{code: exitFailure, err: errors.New(e.what)} }

// findingLine formats a finding as "file:line:col: severity: … [code]".
func findingLine(f evaluate.Finding) string {
	s := f.String()
	if f.Code != "" {
		s += " [" + f.Code + "]"
	}
	return s
}

// compileConfig compiles cfg, turning compile errors into a findingsError.
func compileConfig(cfg *evaluate.Config, names *fileNamer, what string) (*evaluate.Snapshot, error) {
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		var ce *evaluate.CompileError
		if errors.As(err, &ce) {
			return nil, &findingsError{what: what, findings: ce.Findings, names: names}
		}
		return nil, failure("%s: %v", what, err)
	}
	return snap, nil
}

// parseTime reads a --now value: RFC 3339, or YYYY-MM-DD (midnight UTC).
// Empty means now.
func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError("--%s %q: want an RFC 3339 time (2026-06-25T12:00:00Z) or a date (2026-06-25)", flag, s)
}

// readInput reads a file, or standard input for "-".
func readInput(in io.Reader, path string, limit int64) ([]byte, error) {
	var r io.Reader = in
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError("%v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, usageError("read %s: %v", path, err)
	}
	if int64(len(b)) > limit {
		return nil, usageError("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// writeOutput writes data to path ("" or "-": out). A file is written to
// a temporary name and renamed into place, so a failed write never leaves
// half a file; it is created with mode perm.
func writeOutput(out io.Writer, path string, data []byte, perm os.FileMode) error {
	if path == "" || path == "-" {
		_, err := out.Write(data)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return usageError("%v", err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(perm)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return usageError("write %s: %v", path, werr)
	}
	return nil
}

// ---------------------------------------------------------------------
// Flag API client.

// tokenEnv is the environment variable holding the API bearer token. The
// token is never a command-line flag, so it stays out of shell history
// and process listings.
const tokenEnv = "FLAGWIRE_TOKEN"

// maxResponseBytes bounds every API response read (a whole config).
const maxResponseBytes = 64 << 20

// apiClient talks to the Flag API at base.
type apiClient struct {
	base    *url.URL
	token   string
	http    *http.Client
	retries int
	warn    io.Writer
}

// newAPIClient validates server (an http or https URL) and reads the token
// from FLAGWIRE_TOKEN. Sending a token over plain HTTP to a host that is
// not loopback prints a warning to warn.
func newAPIClient(server string, timeout time.Duration, warn io.Writer) (*apiClient, error) {
	if server == "" {
		return nil, usageError("--server is required (the Flag API base URL, such as https://flags.example.com)")
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--server %q: want an http or https URL such as https://flags.example.com", server)
	}
	if u.User != nil {
		return nil, usageError("--server must not contain credentials: put the token in %s", tokenEnv)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &apiClient{
		base:    u,
		token:   strings.TrimSpace(os.Getenv(tokenEnv)),
		http:    &http.Client{Timeout: timeout, Transport: tr},
		retries: 3,
		warn:    warn,
	}
	if c.token != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(warn, "warning: sending %s over plain http to %s: use https\n", tokenEnv, u.Host)
	}
	return c, nil
}

// close releases the client's idle connections.
func (c *apiClient) close() { c.http.CloseIdleConnections() }

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiResponse is a complete API response.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// apiError is a non-2xx API response, with its wire error body decoded.
type apiError struct {
	method, path string
	status       int
	code         string
	message      string
	details      json.RawMessage
	body         []byte
	hint         string // what to do about it, when flagwire knows
}

// Error says which request failed, with the server's code and message.
func (e *apiError) Error() string {
	msg := e.message
	if msg == "" {
		msg = strings.TrimSpace(string(e.body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
	}
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	if e.code != "" {
		return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.path, e.status, e.code, msg)
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.path, e.status, http.StatusText(e.status), msg)
}

// Unwrap makes API refusals exit with exitFailure: the server answered.
func (e *apiError) Unwrap() error { return &exitError{code: exitFailure, err: errors.New(e.message)} }

// apiRequest describes one API call.
type apiRequest struct {
	method string
	path   string // such as "/v1/flags/checkout-new-flow"
	query  url.Values
	body   []byte // JSON, or nil
	header map[string]string
}

// do sends req and returns the response when it is 2xx, or an *apiError.
// Transport errors and 429/502/503/504 are retried (c.retries times, with
// decorrelated jitter and Retry-After) when the request is safe to repeat:
// a GET, or a write with an Idempotency-Key. A transport error is a usage
// (I/O) error.
func (c *apiClient) do(ctx context.Context, req apiRequest) (*apiResponse, error) {
	u := *c.base
	u.Path += req.path // keys are [A-Za-z0-9_.-]: nothing to escape
	u.RawPath = ""
	u.RawQuery = req.query.Encode()
	repeatable := req.method == http.MethodGet || req.header[wire.HeaderIdempotency] != ""
	bo := retry.NewDecorrelatedJitter(100*time.Millisecond, 5*time.Second)
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, &u, req)
		if err == nil && resp.status/100 == 2 {
			return resp, nil
		}
		retryable := err != nil
		wait := bo.NextBackOff()
		if err == nil {
			switch resp.status {
			case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				retryable = true
				if d, ok := retry.ParseRetryAfter(resp.header.Get("Retry-After"), time.Now()); ok {
					wait = min(d, 30*time.Second)
				}
			}
		}
		if !retryable || !repeatable || attempt >= c.retries || ctx.Err() != nil {
			if err != nil {
				return nil, usageError("%s %s: %v", req.method, u.Redacted(), err)
			}
			return nil, decodeAPIError(req.method, req.path, resp, c.token != "")
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, usageError("%s %s: %v", req.method, u.Redacted(), ctx.Err())
		case <-t.C:
		}
	}
}

// once sends one request and reads the whole (bounded) response.
func (c *apiClient) once(ctx context.Context, u *url.URL, req apiRequest) (*apiResponse, error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", wire.ContentTypeJSON)
	hr.Header.Set("User-Agent", "flagwire-cli")
	if req.body != nil {
		hr.Header.Set("Content-Type", wire.ContentTypeJSON)
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	res, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return &apiResponse{status: res.StatusCode, header: res.Header, body: b}, nil
}

// decodeAPIError reads the wire error body of a failed response. sentToken
// says whether the request carried a token from FLAGWIRE_TOKEN: a 401
// then says how to give one, or that the one given was refused.
func decodeAPIError(method, path string, resp *apiResponse, sentToken bool) *apiError {
	e := &apiError{method: method, path: path, status: resp.status, body: resp.body}
	var eb struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(resp.body, &eb) == nil {
		e.code, e.message, e.details = eb.Error.Code, eb.Error.Message, eb.Error.Details
	}
	if resp.status == http.StatusUnauthorized {
		if e.message == "" {
			e.message = "unauthorized"
		}
		if sentToken {
			e.hint = "the server refused the token in " + tokenEnv
		} else {
			e.hint = "no token sent: set " + tokenEnv + ", as in export " + tokenEnv + "=…; flagwire reads the token from the environment only, never from a flag"
		}
	}
	return e
}
