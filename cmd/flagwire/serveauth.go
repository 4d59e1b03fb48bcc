package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire/cmd/flagwire/internal/oauth"
	"github.com/flagwire/flagwire/flagserver"
)

// serveAuthConfig holds the authentication and TLS flags of `flagwire
// serve`.
type serveAuthConfig struct {
	oauthIssuer, jwksURL, oauthAudience, envClaim string
	tlsCert, tlsKey, clientCA                     string
	insecureOpen                                  bool
}

func (a *serveAuthConfig) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.oauthIssuer, "oauth-issuer", "", "accept OAuth 2.0 access tokens (JWTs) of this issuer URL; its discovery document names the JWKS (with --jwks-url: only the iss to require)")
	f.StringVar(&a.jwksURL, "jwks-url", "", "accept OAuth 2.0 access tokens signed by a key of this JSON Web Key Set")
	f.StringVar(&a.oauthAudience, "oauth-audience", "", "the audience (aud) access tokens must name (required with --oauth-issuer or --jwks-url)")
	f.StringVar(&a.envClaim, "oauth-environments-claim", oauth.DefaultEnvironmentsClaim, "the access token claim listing the environments a token may act on (absent: every one)")
	f.StringVar(&a.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	f.StringVar(&a.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	f.StringVar(&a.clientCA, "client-ca", "", "require client certificates signed by these CAs (PEM bundle; needs --tls-cert): mutual TLS")
	f.BoolVar(&a.insecureOpen, "insecure-open", false, "allow serving without any credentials (open) on an address that is not loopback")
}

// serveSecurity is what setup prepared: the TLS configuration (nil for
// plain HTTP) and the OAuth verifier to close.
type serveSecurity struct {
	tls      *tls.Config
	verifier *oauth.Verifier
}

func (s *serveSecurity) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

func (s *serveSecurity) close() {
	if s.verifier != nil {
		s.verifier.Close()
	}
}

// devScopes are the scopes of --dev-token: every one on a loopback
// address; elsewhere not flags:approve or tokens:mint.
func devScopes(loopback bool) []string {
	if loopback {
		return flagserver.Scopes
	}
	return []string{flagserver.ScopeFlagsRead, flagserver.ScopeFlagsWrite, flagserver.ScopeAuditRead}
}

// listensOnLoopback reports whether ln listens on a loopback address only.
func listensOnLoopback(ln net.Listener) bool {
	ta, ok := ln.Addr().(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// setup adds the dev token and the OAuth verifier to opts, loads the TLS
// configuration, and refuses an open server on a non-loopback address
// (without --insecure-open). It says at start what a dev token grants.
func (a *serveAuthConfig) setup(ctx context.Context, out io.Writer, ln net.Listener, opts *flagserver.Options, devToken string, logger *slog.Logger) (*serveSecurity, error) {
	sec := &serveSecurity{}
	loopback := listensOnLoopback(ln)
	if devToken != "" {
		scopes := devScopes(loopback)
		opts.Tokens = append(opts.Tokens, flagserver.Token{Secret: devToken, Subject: "dev", Scopes: scopes})
		if loopback {
			fmt.Fprintf(out, "--dev-token grants every scope (%s) on this loopback address\n", strings.Join(scopes, ", "))
		} else {
			fmt.Fprintf(out, "warning: --dev-token on the non-loopback address %s grants %s to anyone who has it; not flags:approve or tokens:mint (give those through --tokens)\n", ln.Addr(), strings.Join(scopes, ", "))
		}
	}
	if (a.tlsCert == "") != (a.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if a.clientCA != "" && a.tlsCert == "" {
		return nil, errors.New("--client-ca needs --tls-cert and --tls-key (client certificates are part of TLS)")
	}
	if a.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		sec.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		if a.clientCA != "" {
			pemBytes, err := os.ReadFile(a.clientCA)
			if err != nil {
				return nil, fmt.Errorf("--client-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("--client-ca %s: no PEM certificate in it", a.clientCA)
			}
			sec.tls.ClientCAs = pool
			sec.tls.ClientAuth = tls.RequireAndVerifyClientCert
			n := 0
			for _, t := range opts.Tokens {
				if t.ClientCert {
					n++
				}
			}
			fmt.Fprintf(out, "mutual TLS: client certificates signed by %s are required; %d certificate subjects have scopes (clientCert entries of --tokens)\n", a.clientCA, n)
		}
	}
	if a.oauthIssuer != "" || a.jwksURL != "" {
		if a.oauthAudience == "" {
			return nil, errors.New("--oauth-audience is required with --oauth-issuer or --jwks-url: without it, tokens the issuer made for any other API would be accepted")
		}
		v, err := oauth.New(ctx, oauth.Config{
			Issuer: a.oauthIssuer, JWKSURL: a.jwksURL, Audience: a.oauthAudience, EnvironmentsClaim: a.envClaim,
			OnRefreshError: func(err error) { logger.Warn("flagwire: JWKS refresh failed", "error", err.Error()) },
		})
		if err != nil {
			return nil, err
		}
		sec.verifier = v
		opts.Verifier = v
		iss := a.oauthIssuer
		if iss == "" {
			iss = "any issuer (no --oauth-issuer)"
		}
		fmt.Fprintf(out, "OAuth 2.0 access tokens: issuer %s, audience %s, keys from %s\n", iss, a.oauthAudience, v.JWKSURL())
	}
	if len(opts.Tokens) == 0 && opts.Verifier == nil && !loopback {
		if !a.insecureOpen {
			sec.close()
			return nil, fmt.Errorf("refusing to serve without credentials on %s, an address that is not loopback: anyone reaching it could read and change every flag. Give --tokens, --dev-token or --oauth-issuer, listen on 127.0.0.1, or pass --insecure-open", ln.Addr())
		}
		fmt.Fprintf(out, "warning: --insecure-open: serving without credentials on %s: anyone reaching it can read and change every flag\n", ln.Addr())
	}
	return sec, nil
}
