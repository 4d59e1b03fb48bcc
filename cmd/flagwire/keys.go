package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/wire"
)

// PEM block types of key files.
const (
	pemPrivateKey = "PRIVATE KEY" // PKCS #8
	pemPublicKey  = "PUBLIC KEY"  // PKIX
)

// maxBootstrapBytes bounds bootstrap files and JSON configs read by sign
// and verify (the SDK's default limit).
const maxBootstrapBytes = 64 << 20

// ---------------------------------------------------------------------
// Key files. loadSigningKey and parseSigningKey (serve.go) read private
// keys; these write them and handle public keys.

// marshalPrivateKeyPEM encodes priv as a PEM "PRIVATE KEY" (PKCS #8) block.
func marshalPrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// marshalPublicKeyPEM encodes pub as a PEM "PUBLIC KEY" (PKIX) block.
func marshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// loadPublicKey reads an Ed25519 public key file (see parsePublicKey).
func loadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := parsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// parsePublicKey reads an Ed25519 public key (flagwire.ParsePublicKey).
func parsePublicKey(b []byte) (ed25519.PublicKey, error) { return flagwire.ParsePublicKey(b) }

// ---------------------------------------------------------------------
// keygen

// newKeygenCmd builds `flagwire keygen`.
func newKeygenCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen [NAME]",
		Short: "Create an Ed25519 key pair for signing bootstrap files",
		Long: `Create an Ed25519 key pair for signing bootstrap files: NAME.key, the
private key (PEM, PKCS #8, mode 0600) for "flagwire sign --key" and
"flagwire serve --signing-key", and NAME.pub, the public key (PEM, PKIX)
for "flagwire verify --pub" and the SDK's WithTrustedKeys. NAME defaults to
"flagwire" and may include a directory. Existing files are never
overwritten unless --force is given.

The key id ("ed25519:" and 16 hex digits, derived from the public key) is
printed on standard output; bootstrap files name the key that signed them
by it, so that clients can trust several keys during a rotation.

Exit status: 0 on success, 2 when a file exists or cannot be written.`,
		Example: `  flagwire keygen keys/bootstrap-2026
  kid=$(flagwire keygen prod-signing)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "flagwire"
			if len(args) == 1 {
				name = args[0]
			}
			return runKeygen(cmd, name, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	return cmd
}

// runKeygen writes name.key and name.pub and prints the key id.
func runKeygen(cmd *cobra.Command, name string, force bool) error {
	if name == "" || strings.HasSuffix(name, string(filepath.Separator)) || strings.HasSuffix(name, "/") {
		return usageError("keygen: NAME %q must name a file (NAME.key and NAME.pub are written)", name)
	}
	keyPath, pubPath := name+".key", name+".pub"
	if !force {
		for _, p := range []string{keyPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return usageError("keygen: %s already exists (use --force to overwrite)", p)
			}
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return usageError("keygen: %v", err)
	}
	privPEM, err := marshalPrivateKeyPEM(priv)
	if err != nil {
		return usageError("keygen: %v", err)
	}
	pubPEM, err := marshalPublicKeyPEM(pub)
	if err != nil {
		return usageError("keygen: %v", err)
	}
	if err := writeOutput(nil, keyPath, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeOutput(nil, pubPath, pubPEM, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	kid := wire.KeyID(pub)
	fmt.Fprintln(cmd.OutOrStdout(), kid)
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (private: keep it secret; flagwire sign --key %s)\nwrote %s (public: flagwire verify --pub %s)\n", keyPath, keyPath, pubPath, pubPath)
	return nil
}

// ---------------------------------------------------------------------
// sign

// signOptions holds the flags of `flagwire sign`.
type signOptions struct {
	key     string
	expires time.Duration
	env     string
	output  string
}

// newSignCmd builds `flagwire sign`.
func newSignCmd() *cobra.Command {
	var o signOptions
	cmd := &cobra.Command{
		Use:   "sign --key FILE [--expires 168h] [--env ENV] DIR|FILE",
		Short: "Sign one environment's config as a bootstrap file",
		Long: `Sign the config of one environment as a bootstrap file: a
flagwire-bootstrap/v1 envelope (JSON) holding the evaluate.Config JSON,
signed with Ed25519, naming its key id, and expiring after --expires
(default 168h, 7 days; at most 8784h, 366 days). The SDK serves it offline or until the first answer from
the server, after verifying it (WithBootstrapFile, WithTrustedKeys).

The input is a flags-as-code directory or file (YAML), or a config JSON
file (*.json, or "-" for standard input: such as the body of
GET /v1/flags). --env selects the
environment; it defaults to the only one defined. A config that does not
compile is refused, with each problem at its file:line:col. The envelope
is written to standard output, or to --output.

Exit status: 0 on success, 1 when the config does not compile, 2 on a
usage error or an unreadable key or input.`,
		Example: `  flagwire sign --key keys/prod.key flags/ > bootstrap.json                # valid 7 days
  flagwire sign --key keys/prod.key --expires 720h flags/ > bootstrap.json  # valid 30 days
  flagwire sign --key keys/prod.key --env staging -o staging.json flags/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSign(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "private key file (PEM from flagwire keygen, or a 32-byte seed)")
	f.DurationVar(&o.expires, "expires", flagserver.DefaultBootstrapTTL, "validity of the bootstrap, such as 720h (at most 8784h)")
	f.StringVar(&o.env, "env", "", "environment to sign (default: the only one in the input)")
	f.StringVarP(&o.output, "output", "o", "", "write the envelope to this file instead of standard output")
	cmd.MarkFlagRequired("key")
	cmd.MarkFlagFilename("key", "key", "pem")
	return cmd
}

// runSign signs one environment of input and writes the envelope.
func runSign(cmd *cobra.Command, input string, o signOptions) error {
	if o.expires <= 0 || o.expires > flagserver.MaxBootstrapTTL {
		return usageError("--expires %s: want a positive duration up to %s, such as 720h", o.expires, flagserver.MaxBootstrapTTL)
	}
	priv, err := loadSigningKey(o.key)
	if err != nil {
		return usageError("--key %s: %v", o.key, err)
	}
	cfg, names, err := loadOneConfig(cmd, input, o.env)
	if err != nil {
		return err
	}
	if _, err := compileConfig(cfg, names, "sign: "+input+" does not compile"); err != nil {
		return err
	}
	payload, err := json.Marshal(cfg)
	if err != nil {
		return usageError("sign: encode config: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	env := wire.BootstrapEnvelope{
		Environment: cfg.Environment,
		IssuedAt:    now,
		ExpiresAt:   now.Add(o.expires),
		Version:     cfg.Version,
		Payload:     payload,
	}
	env.Sign(priv)
	out, err := json.Marshal(&env)
	if err != nil {
		return usageError("sign: %v", err)
	}
	if err := writeOutput(cmd.OutOrStdout(), o.output, append(out, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "signed environment %q (version %d, %s) with key %s; expires %s\n",
		cfg.Environment, cfg.Version, plural(len(cfg.Flags), "flag"), env.KeyID, env.ExpiresAt.Format(time.RFC3339))
	return nil
}

// loadOneConfig reads one environment's config from a flags-as-code
// directory or YAML file, or from a config JSON file.
func loadOneConfig(cmd *cobra.Command, input, env string) (*evaluate.Config, *fileNamer, error) {
	if input == "-" || strings.EqualFold(filepath.Ext(input), ".json") {
		data, err := readInput(cmd.InOrStdin(), input, maxBootstrapBytes)
		if err != nil {
			return nil, nil, err
		}
		cfg, err := evaluate.DecodeConfigJSON(data)
		if err != nil {
			var le *evaluate.LoadError
			if errors.As(err, &le) {
				fs := slices.Clone(le.Findings)
				for i := range fs {
					fs[i].Pos.File = input
				}
				return nil, nil, &findingsError{what: "cannot load " + input, findings: fs}
			}
			return nil, nil, failure("%s: %v", input, err)
		}
		if cfg.Environment == "" {
			return nil, nil, failure("%s: the config names no environment", input)
		}
		if env != "" && env != cfg.Environment {
			return nil, nil, usageError("%s is the config of environment %q, not %q", input, cfg.Environment, env)
		}
		return cfg, nil, nil
	}
	cfgs, names, err := loadFlags(input)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := pickEnv(cfgs, env, input)
	return cfg, names, err
}

// ---------------------------------------------------------------------
// verify

// verifyOptions holds the flags of `flagwire verify`.
type verifyOptions struct {
	pubs []string
	now  string
	env  string
}

// newVerifyCmd builds `flagwire verify`.
func newVerifyCmd() *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify --pub FILE [--pub FILE…] BOOTSTRAP",
		Short: "Verify a signed bootstrap file",
		Long: `Verify a bootstrap file ("-" reads standard input) as the SDK does
before using one: the envelope's signature against the trusted public
keys (--pub, repeatable, matched by key id), its expiry, and that its
payload is a config of the stated version that compiles.

On success a summary is printed: environment, version, flags, key id and
expiry. Otherwise the reason: tampered (bad signature), expired, signed
by an unknown key (the trusted key ids are listed), malformed.

Exit status: 0 when the file verifies, 1 when it does not, 2 on a usage
error or an unreadable file or key.`,
		Example: `  flagwire verify --pub keys/prod.pub bootstrap.json
  flagwire verify --pub old.pub --pub new.pub --now 2026-12-01 bootstrap.json   # still valid then?`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.pubs, "pub", nil, "trusted public key file (PEM from flagwire keygen, or 32 bytes as hex or base64); repeatable")
	f.StringVar(&o.now, "now", "", "check expiry as of this time (RFC 3339 or YYYY-MM-DD; default: now)")
	f.StringVar(&o.env, "env", "", "also require the bootstrap to be for this environment")
	cmd.MarkFlagRequired("pub")
	return cmd
}

// runVerify verifies the bootstrap at path and prints a summary.
func runVerify(cmd *cobra.Command, path string, o verifyOptions) error {
	now, err := parseTime("now", o.now)
	if err != nil {
		return err
	}
	keys, err := loadTrustedKeys(o.pubs)
	if err != nil {
		return err
	}
	data, err := readInput(cmd.InOrStdin(), path, maxBootstrapBytes)
	if err != nil {
		return err
	}
	env, cfg, err := openBootstrap(data, keys, now)
	if err != nil {
		return failure("verify %s: %v", path, err)
	}
	if o.env != "" && env.Environment != o.env {
		return failure("verify %s: bootstrap is for environment %q, not %q", path, env.Environment, o.env)
	}
	expiry := "never expires"
	if !env.ExpiresAt.IsZero() {
		expiry = fmt.Sprintf("expires %s (in %s)", env.ExpiresAt.Format(time.RFC3339), humanDuration(env.ExpiresAt.Sub(now)))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "ok: %s: environment %q, version %d, %s, %s; signed by %s at %s; %s\n",
		path, env.Environment, env.Version, plural(len(cfg.Flags), "flag"), plural(len(cfg.Segments), "segment"),
		env.KeyID, env.IssuedAt.Format(time.RFC3339), expiry)
	return nil
}

// loadTrustedKeys reads --pub files into a key id → key map.
func loadTrustedKeys(paths []string) (map[string]ed25519.PublicKey, error) {
	if len(paths) == 0 {
		return nil, usageError("--pub is required: a bootstrap is never used unverified")
	}
	keys := make(map[string]ed25519.PublicKey, len(paths))
	for _, p := range paths {
		k, err := loadPublicKey(p)
		if err != nil {
			return nil, usageError("--pub %v", err)
		}
		keys[wire.KeyID(k)] = k
	}
	return keys, nil
}

// openBootstrap verifies a bootstrap envelope as the SDK does (signature,
// key id, expiry; payload version; the config compiles) and returns it with
// its config.
func openBootstrap(data []byte, keys map[string]ed25519.PublicKey, now time.Time) (*wire.BootstrapEnvelope, *evaluate.Config, error) {
	env, err := wire.DecodeEnvelope(data) // the SDK's own parser
	if err != nil {
		return nil, nil, fmt.Errorf("not a bootstrap envelope: %w", err)
	}
	if err := env.Verify(keys, now); err != nil {
		if errors.Is(err, wire.ErrBootstrapUnknownKey) {
			ids := make([]string, 0, len(keys))
			for id := range keys {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			return nil, nil, fmt.Errorf("%w (trusted: %s)", err, strings.Join(ids, ", "))
		}
		if errors.Is(err, wire.ErrBootstrapSignature) {
			return nil, nil, fmt.Errorf("%w: the file was modified after signing, or signed by another key with the same id", err)
		}
		return nil, nil, err
	}
	cfg, err := evaluate.DecodeConfigJSON(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: payload: %v", wire.ErrBootstrapFormat, err)
	}
	if cfg.Version != env.Version {
		return nil, nil, fmt.Errorf("%w: payload version %d does not match envelope version %d", wire.ErrBootstrapFormat, cfg.Version, env.Version)
	}
	if env.Environment != "" && cfg.Environment != env.Environment {
		return nil, nil, fmt.Errorf("%w: payload environment %q does not match envelope environment %q", wire.ErrBootstrapFormat, cfg.Environment, env.Environment)
	}
	if _, err := evaluate.Compile(cfg); err != nil {
		return nil, nil, fmt.Errorf("payload does not compile: %v", err)
	}
	return env, cfg, nil
}

// humanDuration formats d roughly: "29 days", "5h0m0s", "expired".
func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d > 0:
		return d.Round(time.Second).String()
	}
	return "0s"
}
