package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagfile"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/wire"
	"github.com/flagwire/flagwire/pgstore"
)

// serveConfig holds the flags of `flagwire serve`.
type serveConfig struct {
	addr         string
	flagsDir     string
	dataDir      string
	store        string
	auditKeep    time.Duration
	readStale    time.Duration
	newEpoch     bool
	rotateKey    bool
	tokensFile   string
	devToken     string
	signingKey   string
	environments []string
	protect      []string
	logFormat    string
	ui           bool

	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration
	maxConns, maxConnsPerAddr                                 int
	trustedProxies                                            []string
	proxyHeader                                               string

	readLimit, writeLimit, authFailureLimit flagserver.RateLimit
	maxBodyBytes, maxSegmentBodyBytes       int64

	auth serveAuthConfig // serveauth.go
}

// Defaults of the connection flags of `flagwire serve`.
const (
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 60 * time.Second // a 16 MiB segment upload at ~3 Mbit/s
	defaultWriteTimeout      = 60 * time.Second // a 64 MiB config at ~9 Mbit/s
	defaultIdleTimeout       = 30 * time.Second
	// 10,000 SSE subscribers behind one trusted proxy, and room for
	// requests beside them.
	defaultMaxConns        = 16384
	defaultMaxConnsPerAddr = 256
	maxHeaderBytes         = 64 << 10
)

func newServeCmd() *cobra.Command {
	var c serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the reference Flag API server",
		Long: `Run the reference Flag API server (/v1) until SIGINT or SIGTERM.

Flags as code are loaded from --flags (flagfile.LoadDir). With --data the
state is durable: every acknowledged write is committed to DIR/flagwire.db
before its response, and a restart restores it (environments stored there
win over --flags); the bootstrap signing key is kept there too, in
DIR/signing-key.pem (created 0600 on first start, then reused, so clients'
trusted keys and last-known files stay valid), unless --signing-key is
given. Without --data (and --signing-key) the key is ephemeral: a new one
at every start. Environments given with --env and not defined elsewhere
start empty.

Authentication: static bearer tokens from --tokens (a secret, or only its
SHA-256 as secretSha256) or --dev-token; OAuth 2.0 access tokens (JWTs)
of --oauth-issuer (its discovery document names the JWKS) or --jwks-url,
for --oauth-audience; public-client tokens the server mints (POST
/v1/tokens); and, with --client-ca, client certificates whose subject
(common name) a clientCert entry of --tokens names. Scopes: flags:read,
flags:write, flags:approve, audit:read, tokens:mint. Without tokens or
an issuer the server is open (development mode: no authentication), which
it refuses on an address that is not loopback unless --insecure-open is
given. --dev-token grants every scope on a loopback address, and on any
other only flags:read, flags:write and audit:read (said at start).

TLS: --tls-cert and --tls-key (PEM) serve HTTPS (TLS 1.2 or later);
--client-ca (PEM bundle) requires every client to present a certificate
it signed (mutual TLS).

Approvals: a write to an environment named by --protect (or whose flags
as code set requireApproval: true) is answered 202 Accepted with a change
request; nothing is applied until a principal other than the requester,
holding the flags:approve scope, approves it (flagwire changes approve
ID). Turning off a flag whose metadata sets killSwitch: true is applied
at once and audited as an emergency.

Connections: request headers must arrive within --read-header-timeout,
the whole request (headers and body) within --read-timeout, and the
response be written within --write-timeout; an idle keep-alive connection
is closed after --idle-timeout. SSE streams (/v1/stream) are exempt from
the read and write timeouts: each event or keep-alive write must finish
within 10 seconds instead. At most --max-conns connections are open (at
the limit the longest-idle one is closed to make room, else the new one is
refused) and at most --max-conns-per-addr from one client address (IPv4,
or IPv6 /64), so idle or slow connections from one source cannot lock out
the rest. Request headers are limited to 64 KiB. Zero turns a timeout or
limit off (a zero --read-header-timeout or --idle-timeout falls back to
--read-timeout, as in net/http). The process needs a file descriptor per
connection: a warning is printed when its limit (ulimit -n) is below
--max-conns.

Proxies: behind a load balancer or ingress, list its addresses with
--trusted-proxies (CIDR prefixes or addresses). Connections from them are
bounded by --max-conns only, not --max-conns-per-addr (every client of
the proxy shares its address), and requests from them are attributed to
the client named by --proxy-header (X-Forwarded-For, or Forwarded as in
RFC 7239), read from the right: the first address outside the trusted
ranges is the client. From any other peer the header is ignored. Behind a
NAT, where clients share an address and no header names them, raise
--max-conns-per-addr (or set it to 0).

Rate limits (429 with Retry-After beyond them), per token: reads
(--read-limit, default off: one read token is commonly shared by a whole
fleet of SDKs) and writes (--write-limit, default 20/s with a burst of
40); per client address, failed authentication (--auth-failure-limit,
default 2/s with a burst of 20). A limit is RATE[/s][,BURST] (burst
omitted: the rate rounded up) or off. A token in the --tokens file may
carry its own readLimit and writeLimit in the same form.

PostgreSQL: --store postgres://USER:PASS@HOST:PORT/DB (or the
FLAGWIRE_STORE environment variable, which keeps the password out of the
process list) keeps the state in PostgreSQL instead of --data: several
servers on one database are replicas behind any load balancer (writes on
any of them, reads on every one see them at once, streams get every
change). The schema is created and migrated at start. The bootstrap
signing key is kept in the database too; --rotate-signing-key (with
--data or --store) makes a new one, once, and GET /v1/keys keeps listing
the replaced ones. Pool: 10 connections, idle ones
closed after 5 minutes, 5-second connect timeout, 10-second statement
timeout; the DSN parameters pool_max_conns, pool_max_conn_idle_time,
connect_timeout and statement_timeout change them. While the database
cannot be reached at start, the server retries with a backoff (up to 5s
between attempts), /healthz answers 200 and /readyz 503 naming the
failure, and every other request 503 with Retry-After; a wrong password
or an invalid DSN ends it with an error that never prints the password.
Once serving, a database that goes away leaves reads answered from the
last version the server has, writes failing with 503 and Retry-After, and
/readyz 503 until it is back.

On shutdown, SSE streams are ended first, then in-flight requests are
given 10 seconds to finish.`,
		Example: `  # try it: memory only, every scope for the token "dev"
  flagwire serve --addr 127.0.0.1:8080 --flags flags/ --dev-token dev

  # durable state and the signing key in a data directory, tokens from a file
  flagwire serve --addr :8080 --flags flags/ --data /var/lib/flagwire --tokens tokens.yaml

  # a replica on PostgreSQL, behind a load balancer at 10.0.0.0/8
  export FLAGWIRE_STORE='postgres://flagwire:secret@db:5432/flagwire'
  flagwire serve --addr :8080 --flags flags/ --tokens tokens.yaml --trusted-proxies 10.0.0.0/8

  # limits: 100 reads/s per token (burst 200), writes off
  flagwire serve --flags flags/ --tokens tokens.yaml --read-limit 100/s,200 --write-limit off`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), cmd, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (port 0 picks a free port)")
	f.StringVar(&c.flagsDir, "flags", "", "flags-as-code directory")
	f.StringVar(&c.dataDir, "data", "", "data directory for durable state (default: memory only)")
	f.StringVar(&c.store, "store", "", "state in PostgreSQL: postgres://USER:PASS@HOST:PORT/DB (default: $FLAGWIRE_STORE, else the embedded store: --data or memory)")
	f.BoolVar(&c.rotateKey, "rotate-signing-key", false, "with --data or --store: make a new bootstrap signing key, once; the previous ones stay listed by GET /v1/keys")
	f.DurationVar(&c.auditKeep, "audit-retention", 0, "remove audit entries older than this (e.g. 8760h); 0 keeps them all")
	f.DurationVar(&c.readStale, "read-staleness", 0, "with --store: answer reads without a database round trip when this replica confirmed the store's version less than this ago (e.g. 100ms); a write through another replica may be missed that long. 0 checks before every read")
	f.BoolVar(&c.newEpoch, "new-epoch", false, "with --data or --store: start a new store epoch, once, after restoring the data directory or database from a backup, so that local-mode clients follow its (older) versions")
	f.StringVar(&c.tokensFile, "tokens", "", "YAML or JSON file: a list of {secret, subject, scopes, environments, readLimit, writeLimit}")
	f.StringVar(&c.devToken, "dev-token", "", "accept this bearer token: every scope on a loopback address; flags:read, flags:write and audit:read on any other")
	f.StringVar(&c.signingKey, "signing-key", "", "Ed25519 bootstrap signing key: PEM (PKCS #8) or a 32-byte seed (raw, hex or base64); default: DIR/signing-key.pem with --data (created 0600 on first start), else ephemeral")
	f.StringSliceVar(&c.environments, "env", nil, "environments to serve even if no flags define them (repeatable)")
	f.StringSliceVar(&c.protect, "protect", nil, "protect an environment (repeatable): its writes become change requests that another principal with flags:approve must approve")
	f.StringVar(&c.logFormat, "log", "text", "request log format: text, json or off")
	f.BoolVar(&c.ui, "ui", true, "serve the web console at /ui/ (a client of /v1: sign in with a token)")
	f.DurationVar(&c.readHeaderTimeout, "read-header-timeout", defaultReadHeaderTimeout, "time to read a request's headers")
	f.DurationVar(&c.readTimeout, "read-timeout", defaultReadTimeout, "time to read a whole request, body included (not SSE streams)")
	f.DurationVar(&c.writeTimeout, "write-timeout", defaultWriteTimeout, "time to write a response (not SSE streams: 10s per event)")
	f.DurationVar(&c.idleTimeout, "idle-timeout", defaultIdleTimeout, "close keep-alive connections idle this long")
	f.IntVar(&c.maxConns, "max-conns", defaultMaxConns, "open connections at most (at the limit the longest-idle is closed)")
	f.IntVar(&c.maxConnsPerAddr, "max-conns-per-addr", defaultMaxConnsPerAddr, "open connections at most from one client address (IPv4, IPv6 /64), trusted proxies exempt")
	f.StringSliceVar(&c.trustedProxies, "trusted-proxies", nil, "CIDR prefixes or addresses of proxies in front of the server (comma-separated or repeated): their --proxy-header names the client (default: none, the header is never read)")
	f.StringVar(&c.proxyHeader, "proxy-header", flagserver.HeaderXForwardedFor, "header trusted proxies write the client address to: X-Forwarded-For or Forwarded")
	f.TextVar(&c.readLimit, "read-limit", flagserver.DefaultReadLimit, "per-token rate limit of reads: `RATE[/s][,BURST]` or off")
	f.TextVar(&c.writeLimit, "write-limit", flagserver.DefaultWriteLimit, "per-token rate limit of writes: `RATE[/s][,BURST]` or off")
	f.TextVar(&c.authFailureLimit, "auth-failure-limit", flagserver.DefaultAuthFailureLimit, "per-address rate limit of failed authentication: `RATE[/s][,BURST]` or off")
	f.Int64Var(&c.maxBodyBytes, "max-body-bytes", flagserver.DefaultMaxBodyBytes, "largest request body")
	f.Int64Var(&c.maxSegmentBodyBytes, "max-segment-body-bytes", flagserver.DefaultMaxSegmentBodyBytes, "largest body of a segment write (static id lists)")
	c.auth.flags(cmd)
	return cmd
}

func runServe(ctx context.Context, cmd *cobra.Command, c serveConfig) error {
	out := cmd.OutOrStdout()
	var logger *slog.Logger
	switch c.logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	case "json":
		logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
	case "off":
		logger = slog.New(slog.DiscardHandler)
	default:
		return errors.New("--log must be text, json or off")
	}
	if c.store == "" && !cmd.Flags().Changed("store") {
		c.store = os.Getenv(storeEnv)
	}
	trusted, err := flagserver.ParseTrustedProxies(c.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	switch http.CanonicalHeaderKey(c.proxyHeader) {
	case flagserver.HeaderXForwardedFor, flagserver.HeaderForwarded:
	default:
		return fmt.Errorf("--proxy-header %q: want %s or %s", c.proxyHeader, flagserver.HeaderXForwardedFor, flagserver.HeaderForwarded)
	}
	if c.maxBodyBytes <= 0 || c.maxSegmentBodyBytes <= 0 {
		return errors.New("--max-body-bytes and --max-segment-body-bytes must be positive")
	}
	if c.store != "" && !isPostgresDSN(c.store) {
		return fmt.Errorf("--store must be a PostgreSQL URL, postgres://USER:PASS@HOST:PORT/DB (got a value starting %q)", prefixOf(c.store))
	}
	if c.store != "" && c.dataDir != "" {
		return errors.New("--store and --data exclude each other: the state is in PostgreSQL or in the data directory")
	}
	if c.newEpoch && c.dataDir == "" && c.store == "" {
		return errors.New("--new-epoch needs --data or --store (without them every start is a new epoch)")
	}
	if c.rotateKey && (c.signingKey != "" || (c.dataDir == "" && c.store == "")) {
		return errors.New("--rotate-signing-key rotates the key kept with --data or --store (not --signing-key)")
	}
	if c.auditKeep < 0 {
		return errors.New("--audit-retention must not be negative")
	}
	if c.readStale < 0 || (c.readStale > 0 && c.store == "") {
		return errors.New("--read-staleness must not be negative, and applies to --store (replicas) only")
	}
	opts := flagserver.Options{
		DataDir: c.dataDir, NewEpoch: c.newEpoch && c.store == "", Logger: logger, AuditRetention: c.auditKeep,
		RotateSigningKey: c.rotateKey,
		TrustedProxies:   trusted, ProxyHeader: c.proxyHeader,
		ReadLimit: c.readLimit, WriteLimit: c.writeLimit, AuthFailureLimit: c.authFailureLimit,
		MaxBodyBytes: c.maxBodyBytes, MaxSegmentBodyBytes: c.maxSegmentBodyBytes,
		ProtectedEnvironments: c.protect, ReadStaleness: c.readStale,
	}

	seen := map[string]bool{}
	if c.flagsDir != "" {
		cfgs, err := flagfile.LoadDir(os.DirFS(c.flagsDir), ".")
		if err != nil {
			return fmt.Errorf("load --flags %s: %w", c.flagsDir, err)
		}
		for env, cfg := range cfgs {
			if cfg.Environment == "" {
				cfg.Environment = env
			}
			opts.Configs = append(opts.Configs, cfg)
			seen[cfg.Environment] = true
		}
	}
	for _, env := range c.environments {
		if env = strings.TrimSpace(env); env != "" && !seen[env] {
			opts.Configs = append(opts.Configs, &evaluate.Config{Environment: env})
			seen[env] = true
		}
	}
	if c.tokensFile != "" {
		toks, err := loadTokens(c.tokensFile)
		if err != nil {
			return err
		}
		opts.Tokens = append(opts.Tokens, toks...)
	}
	keyOrigin := ""
	switch {
	case c.signingKey != "":
		key, err := loadSigningKey(c.signingKey)
		if err != nil {
			return err
		}
		opts.SigningKey = key
		keyOrigin = "from " + c.signingKey
	case c.store != "":
		keyOrigin = "kept in the PostgreSQL store"
	case c.dataDir != "": // the store loads it (with the keys it replaced), or creates it
		path := filepath.Join(c.dataDir, flagserver.SigningKeyFile)
		keyOrigin = "from " + path
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			keyOrigin = "created in " + path
		}
		if c.rotateKey {
			keyOrigin = "new, in " + path
		}
	default:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		opts.SigningKey = key
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	// Credentials, secure defaults and TLS (serveauth.go).
	sec, err := c.auth.setup(ctx, out, ln, &opts, c.devToken, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer sec.close()
	if n, ok := fileLimit(); ok && c.maxConns > 0 && n < uint64(c.maxConns)+64 {
		fmt.Fprintf(out, "warning: the file descriptor limit (%d) leaves no room for --max-conns (%d) connections and the server's own files: raise it (ulimit -n) or lower --max-conns\n", n, c.maxConns)
	}
	lim := newConnLimiter(ln, c.maxConns, c.maxConnsPerAddr, trusted)
	// Until the server is built (the store reached), /healthz and /readyz
	// say why, and everything else is 503 with Retry-After.
	sw := &switchHandler{}
	start := &startingHandler{}
	sw.set(start)
	hs := &http.Server{
		Handler:           sw,
		ReadHeaderTimeout: c.readHeaderTimeout,
		ReadTimeout:       c.readTimeout,
		WriteTimeout:      c.writeTimeout,
		IdleTimeout:       c.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         lim.connState,
	}
	errc := make(chan error, 1)
	var serveLn net.Listener = lim
	if sec.tls != nil {
		hs.TLSConfig = sec.tls
		hs.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelInfo) // failed handshakes
		serveLn = tls.NewListener(lim, sec.tls)
	}
	go func() { errc <- hs.Serve(serveLn) }()
	stopHTTP := func() {
		hs.Close()
		<-errc
	}
	if c.store != "" {
		st, err := openPostgres(ctx, c.store, logger, start)
		if err != nil {
			stopHTTP()
			if ctx.Err() != nil { // stopped while waiting for the database
				return nil
			}
			return err
		}
		if c.newEpoch {
			e, err := st.NewEpoch(ctx)
			if err != nil {
				st.Close()
				stopHTTP()
				return fmt.Errorf("--new-epoch: %w", err)
			}
			fmt.Fprintf(out, "new store epoch %s\n", e)
		}
		opts.Store = st
		fmt.Fprintf(out, "store: PostgreSQL %s\n", pgstore.Describe(c.store))
	}
	srv, err := flagserver.New(opts)
	if err != nil {
		if opts.Store != nil {
			opts.Store.Close()
		}
		stopHTTP()
		return err
	}
	for _, env := range c.protect { // a typo would leave the real one unprotected
		if !slices.Contains(srv.Environments(), env) {
			srv.Close()
			stopHTTP()
			return fmt.Errorf("--protect %q: no such environment (serving %s)", env, strings.Join(srv.Environments(), ", "))
		}
	}
	handler, err := withConsole(srv, c.ui, logger) // console.go
	if err != nil {
		srv.Close()
		stopHTTP()
		return err
	}
	sw.set(handler)
	// Loading (YAML, compiling, restoring the data dir) leaves garbage the
	// size of the input; the runtime would return it to the OS only
	// minutes later. Return it now, so an idle server holds what it serves.
	open := len(opts.Tokens) == 0 && opts.Verifier == nil
	opts = flagserver.Options{} // the configs loaded are garbage now
	debug.FreeOSMemory()
	pub := srv.PublicKey()
	if keyOrigin == "" {
		fmt.Fprintf(out, "bootstrap signing key %s is ephemeral (generated, not saved: clients' trusted key and last-known files stop verifying at the next start; use --data or --signing-key to keep one)\n", wire.KeyID(pub))
	} else {
		if c.rotateKey && c.store != "" {
			keyOrigin = "new, " + keyOrigin
		}
		fmt.Fprintf(out, "bootstrap signing key %s (%s)\n", wire.KeyID(pub), keyOrigin)
		if pubs := srv.PublicKeys(); len(pubs) > 1 {
			ids := make([]string, 0, len(pubs)-1)
			for _, p := range pubs[1:] {
				ids = append(ids, wire.KeyID(p))
			}
			fmt.Fprintf(out, "previous signing keys, still listed by GET /v1/keys: %s\n", strings.Join(ids, ", "))
		}
	}
	fmt.Fprintf(out, "public key: %s\n", base64.StdEncoding.EncodeToString(pub))
	if open {
		fmt.Fprintln(out, "warning: no tokens configured: the server is open (development mode)")
	}
	fmt.Fprintf(out, "environments: %s\n", strings.Join(srv.Environments(), ", "))
	if len(c.protect) > 0 {
		fmt.Fprintf(out, "protected (writes need approval): %s\n", strings.Join(c.protect, ", "))
	}
	fmt.Fprintf(out, "listening on %s://%s\n", sec.scheme(), ln.Addr())
	if c.ui {
		fmt.Fprintf(out, "web console: %s://%s/ui/\n", sec.scheme(), ln.Addr())
	}

	select {
	case err := <-errc:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "shutting down")
	// End SSE streams first: Shutdown waits for handlers, and streams never
	// end on their own.
	closeErr := srv.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return closeErr
}

// loadTokens reads a YAML or JSON list of tokens.
func loadTokens(path string) ([]flagserver.Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var toks []flagserver.Token
	if err := yaml.Unmarshal(b, &toks); err != nil {
		return nil, fmt.Errorf("--tokens %s: %w", path, err)
	}
	for i, t := range toks {
		if t.Secret == "" && t.SecretSHA256 == "" && !t.ClientCert {
			return nil, fmt.Errorf("--tokens %s: token %d has no secret (give secret, secretSha256, or clientCert: true with the certificate's subject)", path, i+1)
		}
		for _, s := range t.Scopes {
			if !flagserver.ValidScope(s) {
				return nil, fmt.Errorf("--tokens %s: token %d: unknown scope %q (want one of %s)", path, i+1, s, strings.Join(flagserver.Scopes, ", "))
			}
		}
	}
	return toks, nil
}

// loadSigningKey reads an Ed25519 private key: PEM ("PRIVATE KEY", PKCS
// #8), or a 32-byte seed given raw, as hex or as base64.
func loadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseSigningKey(b)
}

func parseSigningKey(b []byte) (ed25519.PrivateKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		k, err := wire.PrivateKeyPKCS8(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		return k, nil
	}
	if seed, ok := wire.Key32(b); ok {
		return ed25519.NewKeyFromSeed(seed), nil
	}
	return nil, errors.New("signing key: want PEM (PKCS #8) or a 32-byte seed (raw, hex or base64)")
}
