package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/storetest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// writeSeedFlags writes the seed's prod environment as flags as code.
func writeSeedFlags(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"prod.yaml": "environment: prod\nsalt: " + testkit.SeedSalt() + "\nsegments:\n  - key: beta_testers\n    when: plan == 'pro'\n",
		"checkout-new-flow.yaml": `flagKey: checkout-new-flow
environment: prod
owners: ["payments-team"]
rules:
  - id: rule-1
    when: region == 'EU' and plan == 'free'
    variant: false
  - id: rule-2
    segment: beta_testers
    variant: true
bucketing:
  seed: checkout-new-flow
metadata:
  jira: PAY-1234
  ttl: 2026-12-31
`,
		"pricing-experiment.yaml": `flagKey: pricing-experiment
environment: prod
type: string
variants:
  - name: control
  - name: B
    payload: {price: 23.00, currency: EUR}
bucketing:
  seed: pricing-experiment
  by: accountId
default:
  rollout:
    - {variant: control, weight: 50}
    - {variant: B, weight: 50}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// running is a `flagwire serve` running in-process.
type running struct {
	once   sync.Once
	url    string
	cancel context.CancelFunc
	done   chan error
	output chan string
	banner []string // the lines printed before "listening on"
}

// startServe runs the cobra command tree with args and waits for the
// listening address.
func startServe(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := newRootCmd()
	root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--log", "off"}, args...))
	root.SetOut(pw)
	root.SetErr(pw)
	r := &running{cancel: cancel, done: make(chan error, 1), output: make(chan string, 100)}
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		r.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case r.output <- sc.Text():
			default:
			}
		}
		close(r.output)
	}()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for r.url == "" {
		select {
		case line, ok := <-r.output:
			if !ok {
				t.Fatalf("serve exited: %v", <-r.done)
			}
			if u, found := strings.CutPrefix(line, "listening on "); found {
				r.url = u
			} else {
				r.banner = append(r.banner, line)
			}
		case <-timer.C:
			cancel()
			t.Fatal("serve did not start")
		}
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop sends the shutdown signal (context cancel, as SIGINT does) and
// waits for the command to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not shut down")
		}
		for range r.output {
		}
	})
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request with storetest.Do (a body is JSON; headers are
// "Name: value").
func call(t *testing.T, method, url, body string, headers ...string) result {
	t.Helper()
	r := storetest.Do(t, method, url, body, headers...)
	return result{r.Status, r.Header, r.Body}
}

// TestServeSeedExamples replays the seed guide's requests against a running
// `flagwire serve`: the evaluate examples, then "adding a rollout step
// safely", then a restart from the data directory.
func TestServeSeedExamples(t *testing.T) {
	const TOKEN = "seed-token"
	flags := writeSeedFlags(t)
	data := t.TempDir()
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	os.WriteFile(tokens, []byte("- secret: "+TOKEN+"\n  subject: ci\n  scopes: [flags:read, flags:write, audit:read]\n- secret: read-only\n  subject: dashboards\n  scopes: [flags:read]\n"), 0o600)
	key := filepath.Join(t.TempDir(), "signing.key")
	seed := make([]byte, ed25519.SeedSize)
	os.WriteFile(key, []byte(hex.EncodeToString(seed)+"\n"), 0o600)

	srv := startServe(t, "--flags", flags, "--data", data, "--tokens", tokens, "--signing-key", key)
	base := srv.url // stands for https://flags.example.com
	auth := "Authorization: Bearer " + TOKEN

	// cURL (smoke test), verbatim body.
	r := call(t, "POST", base+"/v1/evaluate", `{
    "environment":"prod",
    "requests":[{"flagKey":"checkout-new-flow","defaultValue":false,"context":{"userId":"8a7f4c91","plan":"pro"}}],
    "options":{"includeReasons":true}
  }`, auth, "Content-Type: application/json")
	if r.status != 200 {
		t.Fatalf("smoke test: %d %s", r.status, r.body)
	}
	var ev wire.EvaluateResponse
	json.Unmarshal(r.body, &ev)
	if d := ev.Decisions[0]; string(d.Variant) != "true" || d.Reason.RuleID != "rule-2" || d.Reason.Segment != "beta_testers" || d.TTLSeconds != 60 || ev.RequestID == "" {
		t.Fatalf("smoke test: %s", r.body)
	}

	// "Example: evaluate request", verbatim, and its response.
	seedReq, err := os.ReadFile("../../testdata/seed/evaluate-request.json")
	if err != nil {
		t.Fatal(err)
	}
	r = call(t, "POST", base+"/v1/evaluate", string(seedReq), auth, "Content-Type: application/json")
	if r.status != 200 {
		t.Fatalf("evaluate: %d %s", r.status, r.body)
	}
	ev = wire.EvaluateResponse{}
	json.Unmarshal(r.body, &ev)
	if len(ev.Decisions) != 2 || ev.RequestID != r.header.Get("X-Request-Id") {
		t.Fatalf("evaluate: %s", r.body)
	}
	d0, d1 := ev.Decisions[0], ev.Decisions[1]
	if d0.FlagKey != "checkout-new-flow" || string(d0.Variant) != "true" || d0.Reason.RuleID != "rule-2" || d0.Reason.Segment != "beta_testers" {
		t.Errorf("decision 0: %s", r.body)
	}
	var payload struct {
		Price    float64 `json:"price"`
		Currency string  `json:"currency"`
	}
	json.Unmarshal(d1.Payload, &payload)
	if d1.FlagKey != "pricing-experiment" || string(d1.Variant) != `"B"` || payload.Price != 23.00 || payload.Currency != "EUR" ||
		d1.Bucketing == nil || d1.Bucketing.Seed != "pricing-experiment" || len(d1.Bucketing.Hash) != 64 {
		t.Errorf("decision 1: %s", r.body)
	}

	// "Example: adding a rollout step safely".
	// etag=$(curl -s -H 'Authorization: Bearer $TOKEN' …/v1/flags/checkout-new-flow | jq -r '.["etag"]')
	r = call(t, "GET", base+"/v1/flags/checkout-new-flow", "", auth)
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil || r.status != 200 {
		t.Fatalf("GET flag: %d %s", r.status, r.body)
	}
	etag, _ := doc["etag"].(string)
	if etag == "" || etag != r.header.Get("ETag") {
		t.Fatalf("etag %q, header %q", etag, r.header.Get("ETag"))
	}
	patch := func() result {
		return call(t, "PATCH", base+"/v1/flags/checkout-new-flow", `{
    "changeReason": "Expanding canary after stable metrics",
    "rules": [{"id":"gradual","percentage":25,"seed":"checkout-new-flow"}]
  }`, auth, "If-Match: "+etag, "Idempotency-Key: roll-2026-06-25-01", "Content-Type: application/json")
	}
	p1 := patch()
	if p1.status != 200 {
		t.Fatalf("PATCH: %d %s", p1.status, p1.body)
	}
	p2 := patch() // a retry (say, after a timeout) returns the same response
	if p2.status != p1.status || string(p2.body) != string(p1.body) || p2.header.Get("ETag") != p1.header.Get("ETag") ||
		p2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry differs: %d %s / %d %s", p1.status, p1.body, p2.status, p2.body)
	}
	// A read-only token cannot write; no token is a 401.
	if r := call(t, "PATCH", base+"/v1/flags/checkout-new-flow", `{}`, "Authorization: Bearer read-only", "If-Match: "+etag, "Content-Type: application/json"); r.status != 403 {
		t.Errorf("read-only PATCH: %d", r.status)
	}
	if r := call(t, "GET", base+"/v1/flags/checkout-new-flow", ""); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", r.status)
	}
	// The audit trail has the change and its reason.
	r = call(t, "GET", base+"/v1/audit?entity=flag:checkout-new-flow", "", auth)
	var audit wire.AuditResponse
	json.Unmarshal(r.body, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Subject != "ci" || audit.Entries[0].ChangeReason != "Expanding canary after stable metrics" {
		t.Errorf("audit: %s", r.body)
	}
	// Bootstrap is signed with the --signing-key.
	r = call(t, "GET", base+"/v1/bootstrap?environment=prod&ttl=720h", "", auth)
	var env wire.BootstrapEnvelope
	json.Unmarshal(r.body, &env)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if err := env.Verify(map[string]ed25519.PublicKey{wire.KeyID(pub): pub}, time.Now()); err != nil {
		t.Errorf("bootstrap: %v", err)
	}

	// Restart from the data directory: the acknowledged PATCH survives.
	srv.stop(t)
	srv2 := startServe(t, "--flags", flags, "--data", data, "--dev-token", "dev")
	r = call(t, "GET", srv2.url+"/v1/flags/checkout-new-flow", "", "Authorization: Bearer dev")
	var f evaluate.Flag
	json.Unmarshal(r.body, &f)
	if r.header.Get("ETag") != p1.header.Get("ETag") || len(f.Rules) != 1 || f.Rules[0].ID != "gradual" {
		t.Fatalf("after restart: %s", r.body)
	}
}

// TestServeShutdownEndsStreams: SIGINT (context cancel) ends open SSE
// streams cleanly and the command returns.
func TestServeShutdownEndsStreams(t *testing.T) {
	srv := startServe(t, "--env", "prod")
	req, _ := http.NewRequest("GET", srv.url+"/v1/stream?environment=prod", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, res.Body)
		ended <- err
	}()
	srv.stop(t)
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("stream ended with %v, want a clean EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open after shutdown")
	}
}

func TestServeFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.Mkdir(bad, 0o700)
	os.WriteFile(filepath.Join(bad, "x.yaml"), []byte("flagKey: [\n"), 0o600)
	tests := [][]string{
		{"--flags", bad},
		{"--tokens", filepath.Join(dir, "missing.yaml")},
		{"--signing-key", filepath.Join(dir, "missing.key")},
		{"--log", "loud"},
		{"--addr", "256.0.0.1:bad"},
		{"--read-limit", "fast"},
		{"--write-limit", "0"},
		{"--auth-failure-limit", "2/s,0"},
		{"--trusted-proxies", "10.0.0.0/33"},
		{"--trusted-proxies", "proxy.internal"},
		{"--proxy-header", "X-Real-IP"},
		{"--max-body-bytes", "0"},
	}
	for _, args := range tests {
		root := newRootCmd()
		root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--log", "off"}, args...))
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		if err := root.ExecuteContext(context.Background()); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestServeRateLimitFlags: --read-limit and --write-limit set the
// per-token limits, a token's own limit in the tokens file replaces them,
// and --auth-failure-limit the per-address one.
func TestServeRateLimitFlags(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	os.WriteFile(tokens, []byte(`
- {secret: fleet, scopes: [flags:read], readLimit: "off"}
- {secret: rw, scopes: [flags:read, flags:write]}
`), 0o600)
	r := startServe(t, "--env", "dev", "--tokens", tokens,
		"--read-limit", "1/s,2", "--write-limit", "0.1/s", "--auth-failure-limit", "0.1/s,3")
	count := func(n int, method, path, body, token string) (ok, limited int) {
		for i := range n {
			if body != "" {
				body = fmt.Sprintf(`{"key":"k%d-%d"}`, len(path), i)
			}
			res := call(t, method, r.url+path, body, "Authorization: Bearer "+token, "Content-Type: application/json")
			switch res.status {
			case http.StatusOK, http.StatusCreated:
				ok++
			case http.StatusTooManyRequests:
				limited++
				if res.header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			}
		}
		return ok, limited
	}
	// The clock runs, so a refill may add one: 2 or 3 of 10 pass.
	if ok, lim := count(10, "GET", "/v1/flags?environment=dev", "", "rw"); ok < 2 || ok > 3 || ok+lim != 10 {
		t.Errorf("--read-limit 1/s,2: %d of 10 reads passed, %d limited", ok, lim)
	}
	if ok, lim := count(50, "GET", "/v1/flags?environment=dev", "", "fleet"); ok != 50 {
		t.Errorf("readLimit off in the tokens file: %d of 50 reads passed, %d limited", ok, lim)
	}
	if ok, lim := count(3, "POST", "/v1/flags?environment=dev", "{}", "rw"); ok != 1 || lim != 2 {
		t.Errorf("--write-limit 0.1/s: %d of 3 writes passed, %d limited", ok, lim)
	}
	_, _ = count(3, "GET", "/v1/flags?environment=dev", "", "wrong")
	if ok, lim := count(1, "GET", "/v1/flags?environment=dev", "", "wrong"); lim != 1 {
		t.Errorf("--auth-failure-limit 0.1/s,3: fourth failure not limited (%d ok)", ok)
	}
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "t.json")
	os.WriteFile(js, []byte(`[{"secret":"a","subject":"x","scopes":["flags:read"],"environments":["prod"]}]`), 0o600)
	toks, err := loadTokens(js)
	if err != nil || len(toks) != 1 || toks[0].Environments[0] != "prod" || toks[0].Subject != "x" {
		t.Fatalf("json tokens: %v %v", toks, err)
	}
	// Rate limits per token: the text form or the struct form, YAML or JSON.
	yml := filepath.Join(dir, "t.yaml")
	os.WriteFile(yml, []byte(`
- secret: fleet
  scopes: [flags:read]
  readLimit: off
- secret: public
  scopes: [flags:read]
  readLimit: 50/s,100
- secret: ci
  scopes: [flags:write]
  writeLimit: {perSecond: 2, burst: 4}
- secret: plain
  scopes: [flags:read]
`), 0o600)
	toks, err = loadTokens(yml)
	if err != nil {
		t.Fatal(err)
	}
	wantLimits := [][2]flagserver.RateLimit{
		{flagserver.Unlimited, {}},
		{{PerSecond: 50, Burst: 100}, {}},
		{{}, {PerSecond: 2, Burst: 4}},
		{{}, {}},
	}
	for i, w := range wantLimits {
		if toks[i].ReadLimit != w[0] || toks[i].WriteLimit != w[1] {
			t.Errorf("token %d: read %+v write %+v, want %+v %+v", i, toks[i].ReadLimit, toks[i].WriteLimit, w[0], w[1])
		}
	}
	jsl := filepath.Join(dir, "l.json")
	os.WriteFile(jsl, []byte(`[{"secret":"a","scopes":["flags:read"],"readLimit":"5000/s,10000","writeLimit":{"perSecond":-1}}]`), 0o600)
	if toks, err := loadTokens(jsl); err != nil || toks[0].ReadLimit != (flagserver.RateLimit{PerSecond: 5000, Burst: 10000}) || toks[0].WriteLimit != flagserver.Unlimited {
		t.Errorf("json limits: %+v %v", toks, err)
	}
	for name, body := range map[string]string{
		"badlimit.yaml":  "- secret: a\n  readLimit: fast\n",
		"zerolimit.yaml": "- secret: a\n  readLimit: 0\n",
		"badburst.yaml":  "- secret: a\n  writeLimit: 5/s,x\n",
		"noscope.yaml":   "- secret: a\n  scopes: [flags:admin]\n",
		"nosecret.yaml":  "- subject: a\n",
		"notalist.yaml":  "secret: a\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := loadTokens(p); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestParseSigningKey(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	seed := priv.Seed()
	for name, in := range map[string][]byte{
		"pem":    pemKey,
		"raw":    seed,
		"hex":    []byte(hex.EncodeToString(seed) + "\n"),
		"base64": []byte(base64.StdEncoding.EncodeToString(seed)),
	} {
		k, err := parseSigningKey(in)
		if err != nil || !k.Public().(ed25519.PublicKey).Equal(pub) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parseSigningKey([]byte("short")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestRootHasServe(t *testing.T) {
	cmd, _, err := newRootCmd().Find([]string{"serve"})
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("serve: %v", err)
	}
}

// bannerLine returns the first banner line starting with prefix.
func (r *running) bannerLine(t *testing.T, prefix string) string {
	t.Helper()
	for _, l := range r.banner {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line %q… in %q", prefix, r.banner)
	return ""
}

// TestServeKeepsSigningKeyInDataDir: with --data the bootstrap signing key
// is created (0600) on first start and reused after a restart, so a
// bootstrap fetched before the restart still verifies with the key served
// after it; a corrupt key file is a clear error; without --data the key is
// ephemeral and the banner says so.
func TestServeKeepsSigningKeyInDataDir(t *testing.T) {
	data := t.TempDir()
	keyOf := func(r *running) ed25519.PublicKey {
		line := r.bannerLine(t, "public key: ")
		pub, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "public key: "))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("banner %q", line)
		}
		return pub
	}
	first := startServe(t, "--data", data, "--env", "prod")
	pub1 := keyOf(first)
	if l := first.bannerLine(t, "bootstrap signing key"); !strings.Contains(l, "created in "+filepath.Join(data, "signing-key.pem")) {
		t.Errorf("first start: %q", l)
	}
	res := call(t, "GET", first.url+"/v1/bootstrap?environment=prod", "")
	if res.status != 200 {
		t.Fatalf("bootstrap: %d %s", res.status, res.body)
	}
	var env wire.BootstrapEnvelope
	if err := json.Unmarshal(res.body, &env); err != nil {
		t.Fatal(err)
	}
	first.stop(t)
	fi, err := os.Stat(filepath.Join(data, "signing-key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}

	second := startServe(t, "--data", data)
	pub2 := keyOf(second)
	if !pub1.Equal(pub2) {
		t.Fatalf("key changed across restart: %x → %x", pub1, pub2)
	}
	if l := second.bannerLine(t, "bootstrap signing key"); !strings.Contains(l, "from "+filepath.Join(data, "signing-key.pem")) {
		t.Errorf("second start: %q", l)
	}
	if err := env.Verify(map[string]ed25519.PublicKey{wire.KeyID(pub2): pub2}, time.Now()); err != nil {
		t.Fatalf("bootstrap from before the restart: %v", err)
	}
	second.stop(t)

	// A corrupt key file stops the start with an error naming it.
	os.WriteFile(filepath.Join(data, "signing-key.pem"), []byte("garbage"), 0o600)
	out, err := runServeOnce(t, "--data", data)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(data, "signing-key.pem")) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt key: err %v, output %q", err, out)
	}

	// Without --data: ephemeral, and said so.
	eph := startServe(t)
	if l := eph.bannerLine(t, "bootstrap signing key"); !strings.Contains(l, "ephemeral") {
		t.Errorf("no --data: %q", l)
	}
}

// runServeOnce runs `flagwire serve` expecting it to fail before listening.
func runServeOnce(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var buf strings.Builder
	root := newRootCmd()
	root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--log", "off"}, args...))
	root.SetOut(&buf)
	root.SetErr(&buf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return buf.String(), err
}

// hostileConn is a connection held open by an attacker.
type hostileConn struct {
	net.Conn
	stop chan struct{}
}

// dialFrom opens a TCP connection from the loopback address local.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	return c
}

// TestServeUnderHostileConnections: with 1,000 hostile connections open —
// 500 idle on keep-alive after one request, 500 sending a body at 1 byte
// per second — filling --max-conns 1000, new requests from another address
// are still answered (the longest-idle connections make room), and
// --read-timeout sheds the slow bodies. Latencies are logged, not asserted
// (the machine is shared): run with -v to see them.
//
//	go test -run TestServeUnderHostileConnections -v ./cmd/flagwire/
func TestServeUnderHostileConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	t.Run("max-conns 1000", func(t *testing.T) {
		hostileRun(t, true, "--max-conns", "1000", "--read-timeout", "4s")
	})
	t.Run("defaults", func(t *testing.T) { hostileRun(t, false) })
}

// hostileRun opens the hostile connections against `flagwire serve args…`,
// measures new requests, and with waitShed waits for --read-timeout to
// shed the slow bodies.
func hostileRun(t *testing.T, waitShed bool, args ...string) {
	const idle, slow = 500, 500
	r := startServe(t, append([]string{"--env", "prod"}, args...)...)
	addr := strings.TrimPrefix(r.url, "http://")
	var conns []*hostileConn
	defer func() {
		for _, c := range conns {
			close(c.stop)
			c.Close()
		}
	}()
	// Idle keep-alive: one request, then silence. 100 per source address
	// (below --max-conns-per-addr).
	for i := range idle {
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", 1+i/100), addr)
		hc := &hostileConn{Conn: c, stop: make(chan struct{})}
		conns = append(conns, hc)
		fmt.Fprintf(c, "GET /v1/flags?environment=prod HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("idle conn %d: %v", i, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	// Slow bodies: headers, then one byte per second; the 100 Continue
	// shows the server accepted the connection and is reading the body.
	slowStart := time.Now()
	shed := make(chan time.Duration, slow)
	for i := range slow {
		c := dialFrom(t, fmt.Sprintf("127.0.2.%d", 1+i/100), addr)
		hc := &hostileConn{Conn: c, stop: make(chan struct{})}
		conns = append(conns, hc)
		fmt.Fprintf(c, "POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, "100") {
			t.Fatalf("slow conn %d: %q %v", i, line, err)
		}
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if _, err := c.Write([]byte(" ")); err != nil {
					shed <- time.Since(slowStart)
					return
				}
				select {
				case <-hc.stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	// New requests from another address, each on a new connection.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	var lat []time.Duration
	for i := range 20 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", r.url+"/v1/flags?environment=prod", nil)
		res, err := client.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("request %d with 1,000 hostile connections open: %v", i, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		cancel()
		if res.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, res.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("new requests with %d idle + %d slow-body connections open (%v): min %v, median %v, max %v",
		idle, slow, args, lat[0], lat[len(lat)/2], lat[len(lat)-1])
	if !waitShed {
		return
	}
	// --read-timeout 4s sheds every slow body.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	var last time.Duration
	for range slow {
		select {
		case d := <-shed:
			last = max(last, d)
		case <-deadline.C:
			t.Fatal("slow-body connections not shed within 30s")
		}
	}
	t.Logf("all %d slow-body connections shed %v after they started (--read-timeout 4s)", slow, last.Round(100*time.Millisecond))
}

// TestConnLimiterPerAddress: one address gets at most --max-conns-per-addr
// connections; others are unaffected.
func TestConnLimiterPerAddress(t *testing.T) {
	r := startServe(t, "--env", "prod", "--max-conns-per-addr", "5")
	addr := strings.TrimPrefix(r.url, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 5 {
		c := dialFrom(t, "127.0.3.1", addr)
		held = append(held, c)
		fmt.Fprintf(c, "GET /v1/flags?environment=prod HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	// A sixth from the same address is closed without an answer.
	c := dialFrom(t, "127.0.3.1", addr)
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/flags?environment=prod HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Fatalf("sixth connection from one address answered %d", res.StatusCode)
	}
	// Another address is served.
	o := dialFrom(t, "127.0.3.2", addr)
	defer o.Close()
	fmt.Fprintf(o, "GET /v1/flags?environment=prod HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, err := http.ReadResponse(bufio.NewReader(o), nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("other address: %v %v", res, err)
	}
}

// TestServeNewEpochNeedsData: --new-epoch is for a data dir restored from
// a backup; without --data every start is a new epoch, and the flag is a
// usage error rather than silently meaningless.
func TestServeNewEpochNeedsData(t *testing.T) {
	r := runCLI(t, "", "serve", "--new-epoch", "--addr", "127.0.0.1:0")
	if r.code != exitUsage || r.err == nil || !strings.Contains(r.err.Error(), "--new-epoch needs --data") {
		t.Fatalf("want a usage error naming --new-epoch and --data, got %s (err %v)", r, r.err)
	}
}
