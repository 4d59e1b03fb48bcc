// Package oauth verifies OAuth 2.0 access tokens (JWTs) of an external
// issuer for the Flagwire server: the signature against the issuer's JSON
// Web Key Set (fetched from its discovery document or a given URL, cached,
// refreshed periodically and, rate limited, when a token names an unknown
// key id), exp and nbf with a small leeway, the issuer and the audience.
// Only asymmetric algorithms are accepted.
//
// It lives in the CLI's module so that the JWKS cache
// (github.com/MicahParks/keyfunc) and its dependencies stay out of the
// SDK's module graph; flagserver sees it as a flagserver.TokenVerifier.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/flagwire/flagwire/flagserver"
)

// Defaults of Config.
const (
	// DefaultEnvironmentsClaim is the claim listing the environments a
	// token may act on (a JSON array of names, or one space-separated
	// string); absent, every environment.
	DefaultEnvironmentsClaim = "flagwire_environments"
	DefaultLeeway            = 30 * time.Second
	DefaultRefreshInterval   = time.Hour
	DefaultUnknownKIDEvery   = 10 * time.Second
	DefaultHTTPTimeout       = 10 * time.Second
)

// Algorithms are the signature algorithms accepted: asymmetric only, so a
// token signed with HMAC (an attacker's "HS256" with the issuer's public
// key as the secret) or "none" is refused.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Config configures a Verifier.
type Config struct {
	// Issuer is the issuer URL. With JWKSURL empty, its discovery document
	// (ISSUER/.well-known/openid-configuration, else
	// ISSUER/.well-known/oauth-authorization-server) gives the JWKS URL and
	// must name this issuer. Tokens must carry it as "iss". Empty (with
	// JWKSURL) checks no issuer.
	Issuer string
	// JWKSURL is the issuer's JSON Web Key Set; empty: from discovery.
	JWKSURL string
	// Audience is required in the tokens' "aud".
	Audience string
	// EnvironmentsClaim names the claim of allowed environments; empty
	// means DefaultEnvironmentsClaim.
	EnvironmentsClaim string
	// Leeway is the clock skew allowed on exp and nbf (DefaultLeeway when
	// zero).
	Leeway time.Duration
	// RefreshInterval is how often the key set is fetched again
	// (DefaultRefreshInterval when zero).
	RefreshInterval time.Duration
	// UnknownKIDEvery bounds how often a token with an unknown key id
	// fetches the key set again (a key the issuer rotated in); between
	// such refreshes unknown key ids are refused at once
	// (DefaultUnknownKIDEvery when zero).
	UnknownKIDEvery time.Duration
	// HTTPClient fetches the discovery document and key set
	// (http.DefaultClient when nil); HTTPTimeout bounds each fetch
	// (DefaultHTTPTimeout when zero).
	HTTPClient  *http.Client
	HTTPTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OnRefreshError receives failed background refreshes (nil: dropped).
	OnRefreshError func(err error)
}

// Verifier checks access tokens. It implements flagserver.TokenVerifier.
// Close stops its background refresh.
type Verifier struct {
	cfg     Config
	storage jwkset.Storage // the key set as last fetched (no refresh on read)
	kf      keyfunc.Keyfunc
	unknown *rate.Limiter
	parser  *jwt.Parser
	cancel  context.CancelFunc
	jwksURL string
}

var _ flagserver.TokenVerifier = (*Verifier)(nil)

// New fetches the discovery document (when needed) and the key set, and
// returns a Verifier; an unreachable or invalid document is an error.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Audience == "" {
		return nil, errors.New("oauth: an audience is required (tokens for other APIs of the issuer would be accepted)")
	}
	if cfg.Issuer == "" && cfg.JWKSURL == "" {
		return nil, errors.New("oauth: an issuer or a JWKS URL is required")
	}
	if cfg.EnvironmentsClaim == "" {
		cfg.EnvironmentsClaim = DefaultEnvironmentsClaim
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.UnknownKIDEvery <= 0 {
		cfg.UnknownKIDEvery = DefaultUnknownKIDEvery
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = DefaultHTTPTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		u, err := discover(ctx, cfg)
		if err != nil {
			return nil, err
		}
		jwksURL = u
	}
	rctx, cancel := context.WithCancel(context.Background())
	onErr := func(ctx context.Context, err error) {
		if cfg.OnRefreshError != nil {
			cfg.OnRefreshError(err)
		}
	}
	storage, err := jwkset.NewStorageFromHTTP(jwksURL, jwkset.HTTPClientStorageOptions{
		Client:              cfg.HTTPClient,
		Ctx:                 rctx,
		HTTPTimeout:         cfg.HTTPTimeout,
		RefreshInterval:     cfg.RefreshInterval,
		RefreshErrorHandler: onErr,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("oauth: JWKS %s: %w", jwksURL, err)
	}
	// The client refreshes on an unknown kid without a limit of its own:
	// VerifyToken lets a token through to it only when v.unknown allows.
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{jwksURL: storage},
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  cfg.HTTPTimeout,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("oauth: JWKS %s: %w", jwksURL, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: rctx, Storage: client})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("oauth: %w", err)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(Algorithms),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return &Verifier{
		cfg:     cfg,
		storage: storage,
		kf:      kf,
		unknown: rate.NewLimiter(rate.Every(cfg.UnknownKIDEvery), 1),
		parser:  jwt.NewParser(opts...),
		cancel:  cancel,
		jwksURL: jwksURL,
	}, nil
}

// JWKSURL returns the key set's URL (from discovery or the Config).
func (v *Verifier) JWKSURL() string { return v.jwksURL }

// Close stops the background refresh. It returns at once; the refresh
// goroutine ends at its next wake-up.
func (v *Verifier) Close() { v.cancel() }

// VerifyToken checks raw and returns who it names: "sub" (else
// "client_id"), the scopes of the space-separated "scope" claim and the
// environments of the environments claim.
func (v *Verifier) VerifyToken(ctx context.Context, raw string) (flagserver.Identity, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("the token names no key id (kid)")
		}
		if _, err := v.storage.KeyRead(ctx, kid); errors.Is(err, jwkset.ErrKeyNotFound) && !v.unknown.Allow() {
			return nil, fmt.Errorf("unknown key id %q (the key set was fetched again recently)", kid)
		}
		return v.kf.KeyfuncCtx(ctx)(t)
	})
	if err != nil {
		return flagserver.Identity{}, errors.New(tidy(err))
	}
	id := flagserver.Identity{Scopes: strings.Fields(str(claims["scope"]))}
	if id.Subject = str(claims["sub"]); id.Subject == "" {
		id.Subject = str(claims["client_id"])
	}
	switch envs := claims[v.cfg.EnvironmentsClaim].(type) {
	case nil:
	case string:
		id.Environments = strings.Fields(envs)
	case []any:
		for _, e := range envs {
			s, ok := e.(string)
			if !ok || s == "" {
				return flagserver.Identity{}, fmt.Errorf("claim %s must list environment names", v.cfg.EnvironmentsClaim)
			}
			id.Environments = append(id.Environments, s)
		}
		if len(id.Environments) == 0 { // an empty list allows none, not every one
			return flagserver.Identity{}, fmt.Errorf("claim %s lists no environment", v.cfg.EnvironmentsClaim)
		}
	default:
		return flagserver.Identity{}, fmt.Errorf("claim %s must be an array of environment names", v.cfg.EnvironmentsClaim)
	}
	return id, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// tidy shortens the library's error chain to its first lines.
func tidy(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// discover reads the issuer's discovery document and returns its jwks_uri.
func discover(ctx context.Context, cfg Config) (string, error) {
	base := strings.TrimSuffix(cfg.Issuer, "/")
	var lastErr error
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		doc, err := fetchJSON(ctx, cfg, base+path)
		if err != nil {
			lastErr = err
			continue
		}
		var d struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			return "", fmt.Errorf("oauth: discovery document %s: %w", base+path, err)
		}
		if strings.TrimSuffix(d.Issuer, "/") != base {
			return "", fmt.Errorf("oauth: discovery document %s names issuer %q, not %q", base+path, d.Issuer, cfg.Issuer)
		}
		if d.JWKSURI == "" {
			return "", fmt.Errorf("oauth: discovery document %s has no jwks_uri", base+path)
		}
		return d.JWKSURI, nil
	}
	return "", fmt.Errorf("oauth: no discovery document for issuer %s: %w", cfg.Issuer, lastErr)
}

func fetchJSON(ctx context.Context, cfg Config, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return b, nil
}
