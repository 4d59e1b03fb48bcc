package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const audience = "flagwire-api"

// issuer is an OAuth 2.0 authorization server on loopback: a discovery
// document and a JSON Web Key Set whose keys a test changes (rotation).
// Its JWKS is written here from the keys' numbers (RFC 7517/7518), not by
// the library under test.
type issuer struct {
	*httptest.Server
	mu        sync.Mutex
	keys      map[string]any // kid → *rsa.PrivateKey or *ecdsa.PrivateKey (published)
	jwksFetch atomic.Int64
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{keys: map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": is.URL + "/jwks.json"})
	})
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		is.jwksFetch.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		b64 := base64.RawURLEncoding.EncodeToString
		keys := []map[string]string{}
		for kid, k := range is.keys {
			switch k := k.(type) {
			case *rsa.PrivateKey:
				keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
					"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
			case *ecdsa.PrivateKey:
				pub, _ := k.PublicKey.ECDH()
				raw := pub.Bytes() // 0x04 || X || Y
				keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
					"x": b64(raw[1:33]), "y": b64(raw[33:])})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	return is
}

func (is *issuer) publish(kid string, key any) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys[kid] = key
}

func (is *issuer) withdraw(kid string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	delete(is.keys, kid)
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes a token of claims with method, key and kid ("" for none).
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are valid claims for is: a client with flags:read on prod.
func (is *issuer) claims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": is.URL, "aud": audience, "sub": "client-42", "scope": "flags:read openid",
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"flagwire_environments": []string{"prod"},
	}
}

// fixture is an issuer with key "k1" and a Flag API server trusting it.
type fixture struct {
	is  *issuer
	k1  *rsa.PrivateKey
	v   *Verifier
	url string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{is: newIssuer(t), k1: rsaKey(t)}
	f.is.publish("k1", f.k1)
	v, err := New(context.Background(), Config{Issuer: f.is.URL, Audience: audience, HTTPClient: f.is.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	f.v = v
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Flags: []evaluate.Flag{{Key: "f"}}}
	staging := &evaluate.Config{Environment: "staging", Salt: "s", Flags: []evaluate.Flag{{Key: "f"}}}
	srv, err := flagserver.New(flagserver.Options{Configs: []*evaluate.Config{cfg, staging}, Verifier: v,
		AuthFailureLimit: flagserver.RateLimit{PerSecond: -1}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	f.url = hs.URL
	return f
}

// call sends an evaluation (or, with write, a flag creation) in env with token.
func (f *fixture) call(t *testing.T, token, env string, write bool) (int, string) {
	t.Helper()
	method, path, body := "POST", "/v1/evaluate", `{"environment":"`+env+`","requests":[{"flagKey":"f"}]}`
	if write {
		path, body = "/v1/flags?environment="+env, `{"key":"new","changeReason":"test"}`
	}
	req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.NewDecoder(res.Body).Decode(&e)
	return res.StatusCode, e.Error.Message
}

func (f *fixture) want(t *testing.T, token string, status int, says string) {
	t.Helper()
	got, msg := f.call(t, token, "prod", false)
	if got != status || !strings.Contains(msg, says) {
		t.Fatalf("status %d (%q), want %d saying %q", got, msg, status, says)
	}
}

func TestValidToken(t *testing.T) {
	f := newFixture(t)
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", f.is.claims()), 200, "")
}

func TestExpiredToken(t *testing.T) {
	f := newFixture(t)
	c := f.is.claims()
	c["exp"] = time.Now().Add(-2 * time.Minute).Unix() // beyond the 30 s leeway
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), 401, "expired")
	c["exp"] = time.Now().Add(-5 * time.Second).Unix() // within it
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), 200, "")
}

func TestNotYetValidToken(t *testing.T) {
	f := newFixture(t)
	c := f.is.claims()
	c["nbf"] = time.Now().Add(2 * time.Minute).Unix()
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), 401, "not valid yet")
}

func TestWrongAudience(t *testing.T) {
	f := newFixture(t)
	c := f.is.claims()
	c["aud"] = "another-api"
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), 401, "audience")
}

func TestWrongIssuer(t *testing.T) {
	f := newFixture(t)
	c := f.is.claims()
	c["iss"] = "https://evil.example"
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), 401, "issuer")
}

func TestMissingExpiry(t *testing.T) {
	f := newFixture(t)
	c := f.is.claims()
	delete(c, "exp")
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), 401, "exp")
}

// An unknown kid fetches the key set once (it may be a new key), then
// fails; more unknown kids right after do not fetch it again.
func TestUnknownKid(t *testing.T) {
	f := newFixture(t)
	stranger := rsaKey(t)
	before := f.is.jwksFetch.Load()
	f.want(t, sign(t, jwt.SigningMethodRS256, stranger, "k9", f.is.claims()), 401, "k9")
	if n := f.is.jwksFetch.Load() - before; n != 1 {
		t.Fatalf("the first unknown kid fetched the key set %d times, want 1", n)
	}
	for range 20 {
		f.want(t, sign(t, jwt.SigningMethodRS256, stranger, "k9", f.is.claims()), 401, "k9")
	}
	if n := f.is.jwksFetch.Load() - before; n != 1 {
		t.Fatalf("21 unknown kids fetched the key set %d times, want 1 (rate limited)", n)
	}
	// A token signed by a stranger under a known kid: bad signature.
	f.want(t, sign(t, jwt.SigningMethodRS256, stranger, "k1", f.is.claims()), 401, "signature")
}

// Rotation: the issuer replaces k1 by k2. A token of k2 is accepted after
// the refresh its unknown kid causes; a token of k1 is refused from then.
func TestRotatedKey(t *testing.T) {
	f := newFixture(t)
	old := sign(t, jwt.SigningMethodRS256, f.k1, "k1", f.is.claims())
	f.want(t, old, 200, "")
	k2 := rsaKey(t)
	f.is.publish("k2", k2)
	f.is.withdraw("k1")
	f.want(t, sign(t, jwt.SigningMethodRS256, k2, "k2", f.is.claims()), 200, "")
	f.want(t, old, 401, "k1")
	// An EC key (ES256) rotated in the same way is accepted too.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.is.publish("e1", ec)
	f.v.unknown.SetLimit(1e9) // the test's own pace, not the production limit: allow the next refresh now
	f.want(t, sign(t, jwt.SigningMethodES256, ec, "e1", f.is.claims()), 200, "")
}

func TestAlgNone(t *testing.T) {
	f := newFixture(t)
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", f.is.claims())
	f.want(t, none, 401, "signing method none is invalid")
}

// HS256 signed with the issuer's RSA public key as the HMAC secret: the
// algorithm-confusion attack. Both the PEM and the modulus bytes.
func TestHSRSConfusion(t *testing.T) {
	f := newFixture(t)
	der, _ := x509.MarshalPKIXPublicKey(&f.k1.PublicKey)
	for _, secret := range [][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), f.k1.N.Bytes(), der} {
		f.want(t, sign(t, jwt.SigningMethodHS256, secret, "k1", f.is.claims()), 401, "signing method HS256 is invalid")
	}
}

func TestTamperedPayload(t *testing.T) {
	f := newFixture(t)
	c := f.is.claims()
	tok := sign(t, jwt.SigningMethodRS256, f.k1, "k1", c)
	c["scope"] = "flags:read flags:write tokens:mint"
	payload, _ := json.Marshal(c)
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	f.want(t, forged, 401, "signature")
}

// Scopes come from the scope claim, environments from flagwire_environments.
func TestMissingScope(t *testing.T) {
	f := newFixture(t)
	read := sign(t, jwt.SigningMethodRS256, f.k1, "k1", f.is.claims())
	if st, msg := f.call(t, read, "prod", true); st != 403 || !strings.Contains(msg, "flags:write") {
		t.Fatalf("write with flags:read only: %d %q", st, msg)
	}
	if st, msg := f.call(t, read, "staging", false); st != 403 || !strings.Contains(msg, "staging") {
		t.Fatalf("staging with flagwire_environments [prod]: %d %q", st, msg)
	}
	c := f.is.claims()
	delete(c, "scope")
	f.want(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), 403, "flags:read")
	c = f.is.claims()
	c["scope"] = "flags:read flags:write"
	if st, msg := f.call(t, sign(t, jwt.SigningMethodRS256, f.k1, "k1", c), "prod", true); st != 201 {
		t.Fatalf("write with flags:write: %d %q", st, msg)
	}
}

func TestConfigErrors(t *testing.T) {
	is := newIssuer(t)
	if _, err := New(context.Background(), Config{Issuer: is.URL}); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("no audience: %v", err)
	}
	if _, err := New(context.Background(), Config{Issuer: is.URL + "/other", Audience: "a", HTTPClient: is.Client()}); err == nil || !strings.Contains(err.Error(), "discovery") {
		t.Errorf("no discovery document: %v", err)
	}
	if _, err := New(context.Background(), Config{JWKSURL: is.URL + "/missing", Audience: "a", HTTPClient: is.Client()}); err == nil {
		t.Error("an unreachable JWKS was accepted")
	}
	v, err := New(context.Background(), Config{JWKSURL: is.URL + "/jwks.json", Audience: "a", HTTPClient: is.Client()})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
}
