package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func bannerHas(r *running, s string) bool {
	for _, l := range r.banner {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// localURL is r's URL with its (wildcard) host replaced by 127.0.0.1.
func localURL(t *testing.T, r *running) string {
	t.Helper()
	i := strings.LastIndex(r.url, ":")
	return "http://127.0.0.1" + r.url[i:]
}

// An open server (no credentials) is refused on a non-loopback address
// unless --insecure-open is given; on loopback it starts with a warning.
func TestServeRefusesOpenOnNonLoopback(t *testing.T) {
	out, err := runServeOnce(t, "--addr", "0.0.0.0:0", "--env", "prod")
	if err == nil || !strings.Contains(err.Error(), "refusing to serve without credentials") || !strings.Contains(err.Error(), "--insecure-open") {
		t.Fatalf("open on 0.0.0.0: %v\n%s", err, out)
	}
	r := startServe(t, "--addr", "0.0.0.0:0", "--env", "prod", "--insecure-open")
	if !bannerHas(r, "warning: --insecure-open") {
		t.Errorf("banner %q", r.banner)
	}
	r.stop(t)
	r = startServe(t, "--env", "prod")
	if !bannerHas(r, "the server is open") {
		t.Errorf("loopback banner %q", r.banner)
	}
}

// --dev-token grants every scope on loopback, and on another address says
// at start that it grants neither flags:approve nor tokens:mint.
func TestServeDevTokenScopes(t *testing.T) {
	flags := writeSeedFlags(t)
	mint := `{"environment":"prod","flags":["checkout-new-flow"]}`
	r := startServe(t, "--flags", flags, "--dev-token", "dev")
	if !bannerHas(r, "--dev-token grants every scope (flags:read, flags:write, flags:approve, audit:read, tokens:mint)") {
		t.Errorf("loopback banner %q", r.banner)
	}
	if res := call(t, "POST", r.url+"/v1/tokens", mint, "Authorization: Bearer dev", "Content-Type: application/json"); res.status != 201 {
		t.Errorf("mint on loopback: %d %s", res.status, res.body)
	}
	r.stop(t)
	r = startServe(t, "--addr", "0.0.0.0:0", "--flags", flags, "--dev-token", "dev")
	if !bannerHas(r, "warning: --dev-token on the non-loopback address") || !bannerHas(r, "not flags:approve or tokens:mint") {
		t.Errorf("non-loopback banner %q", r.banner)
	}
	u := localURL(t, r)
	if res := call(t, "POST", u+"/v1/tokens", mint, "Authorization: Bearer dev", "Content-Type: application/json"); res.status != 403 {
		t.Errorf("mint with a non-loopback dev token: %d %s", res.status, res.body)
	}
	if res := call(t, "GET", u+"/v1/audit", "", "Authorization: Bearer dev"); res.status != 200 {
		t.Errorf("audit with a non-loopback dev token: %d %s", res.status, res.body)
	}
}

// A tokens file may hold only the SHA-256 of a secret: the secret works,
// the hash itself is no token.
func TestServeHashedSecret(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret-value"))
	hexSum := hex.EncodeToString(sum[:])
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	os.WriteFile(tokens, []byte("- subject: ci\n  secretSha256: "+hexSum+"\n  scopes: [flags:read]\n"), 0o600)
	r := startServe(t, "--flags", writeSeedFlags(t), "--tokens", tokens)
	if res := call(t, "GET", r.url+"/v1/flags?environment=prod", "", "Authorization: Bearer s3cret-value"); res.status != 200 {
		t.Errorf("the secret: %d %s", res.status, res.body)
	}
	if res := call(t, "GET", r.url+"/v1/flags?environment=prod", "", "Authorization: Bearer "+hexSum); res.status != 401 {
		t.Errorf("the hash as a token: %d %s", res.status, res.body)
	}
	if res := call(t, "GET", r.url+"/v1/audit", "", "Authorization: Bearer s3cret-value"); res.status != 403 {
		t.Errorf("audit with flags:read only: %d %s", res.status, res.body)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("- subject: ci\n  secretSha256: abc\n  scopes: [flags:read]\n"), 0o600)
	if _, err := runServeOnce(t, "--tokens", bad); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("a short hash: %v", err)
	}
}

// pki is a throwaway certificate authority.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64 = 1

func newCA(t *testing.T, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &pki{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and key (PEM) for cn: a server
// certificate for 127.0.0.1, or a client certificate.
func (ca *pki) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func writePEM(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsClient trusts ca and presents cert (nil: none).
func tlsClient(ca *pki, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func get(c *http.Client, url string, headers ...string) (int, string, error) {
	req, _ := http.NewRequest("GET", url, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// TLS, then mutual TLS: a client certificate's subject is the principal,
// with the scopes of the clientCert entry naming it.
func TestServeTLSAndMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "flagwire test CA"), newCA(t, "another CA")
	sc, sk := ca.issue(t, "flagwire server", true)
	certFile, keyFile := writePEM(t, dir, "server.pem", sc), writePEM(t, dir, "server-key.pem", sk)
	caFile := writePEM(t, dir, "ca.pem", ca.pem)
	tokens := writePEM(t, dir, "tokens.yaml", []byte(`
- subject: deploy-bot
  clientCert: true
  scopes: [flags:read]
- subject: ops
  secret: ops-token
  scopes: [flags:read, flags:write]
`))
	flags := writeSeedFlags(t)

	// TLS only: HTTPS with bearer tokens; plain HTTP is not served.
	r := startServe(t, "--flags", flags, "--tokens", tokens, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(r.url, "https://") {
		t.Fatalf("url %q", r.url)
	}
	c := tlsClient(ca, nil)
	if st, body, err := get(c, r.url+"/v1/flags?environment=prod", "Authorization: Bearer ops-token"); err != nil || st != 200 {
		t.Fatalf("HTTPS with a token: %d %s %v", st, body, err)
	}
	if st, _, _ := get(http.DefaultClient, "http://"+strings.TrimPrefix(r.url, "https://")+"/healthz"); st == 200 {
		t.Error("plain HTTP answered on the TLS port")
	}
	c.CloseIdleConnections()
	r.stop(t)

	// Mutual TLS.
	r = startServe(t, "--flags", flags, "--tokens", tokens, "--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", caFile)
	if !bannerHas(r, "mutual TLS") {
		t.Errorf("banner %q", r.banner)
	}
	clientCert := func(issuer *pki, cn string) *tls.Certificate {
		cp, kp := issuer.issue(t, cn, false)
		pair, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		return &pair
	}
	bot := tlsClient(ca, clientCert(ca, "deploy-bot"))
	defer bot.CloseIdleConnections()
	if st, body, err := get(bot, r.url+"/v1/flags?environment=prod"); err != nil || st != 200 {
		t.Fatalf("deploy-bot certificate: %d %s %v", st, body, err)
	}
	req, _ := http.NewRequest("POST", r.url+"/v1/flags?environment=prod", strings.NewReader(`{"key":"x","changeReason":"r"}`))
	req.Header.Set("Content-Type", "application/json")
	if res, err := bot.Do(req); err != nil || res.StatusCode != 403 {
		t.Fatalf("deploy-bot write (flags:read only): %v %v", res, err)
	} else {
		res.Body.Close()
	}
	stranger := tlsClient(ca, clientCert(ca, "stranger"))
	defer stranger.CloseIdleConnections()
	if st, body, _ := get(stranger, r.url+"/v1/flags?environment=prod"); st != 401 || !strings.Contains(body, "stranger") {
		t.Errorf("a certificate no entry names: %d %s", st, body)
	}
	// The same connection with a bearer token: the token decides.
	if st, body, _ := get(stranger, r.url+"/v1/flags?environment=prod", "Authorization: Bearer ops-token"); st != 200 {
		t.Errorf("a token over a stranger's certificate: %d %s", st, body)
	}
	for name, cl := range map[string]*http.Client{"no certificate": tlsClient(ca, nil), "another CA's certificate": tlsClient(ca, clientCert(other, "deploy-bot"))} {
		if st, _, err := get(cl, r.url+"/v1/flags?environment=prod", "Authorization: Bearer ops-token"); err == nil {
			t.Errorf("%s: answered %d, want a failed handshake", name, st)
		}
		cl.CloseIdleConnections()
	}
	// Flag errors.
	for _, args := range [][]string{
		{"--tls-cert", certFile},
		{"--client-ca", caFile},
		{"--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", certFile + ".missing"},
	} {
		if _, err := runServeOnce(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// testIssuer is an OAuth 2.0 issuer on loopback (discovery and a JWKS of
// one ES256 key, written from the key's coordinates) and a signer of its
// access tokens.
type testIssuer struct {
	url string
	key *ecdsa.PrivateKey
}

func startIssuer(t *testing.T) *testIssuer {
	t.Helper()
	is := &testIssuer{}
	is.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.url, "jwks_uri": is.url + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		pub, _ := is.key.PublicKey.ECDH()
		raw := pub.Bytes()
		b64 := base64.RawURLEncoding.EncodeToString
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "a", "alg": "ES256", "x": b64(raw[1:33]), "y": b64(raw[33:])}}})
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	is.url = hs.URL
	return is
}

// token signs claims (iss, aud "flagwire", sub, exp in a minute by
// default) with scope; extra claims replace the defaults.
func (is *testIssuer) token(t *testing.T, scope string, extra ...any) string {
	t.Helper()
	c := jwt.MapClaims{"iss": is.url, "aud": "flagwire", "sub": "svc", "scope": scope, "exp": time.Now().Add(time.Minute).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	tk := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tk.Header["kid"] = "a"
	s, err := tk.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// --oauth-issuer: access tokens of an issuer on loopback (discovery and
// JWKS) are accepted with their scope claim's scopes.
func TestServeOAuthIssuer(t *testing.T) {
	is := startIssuer(t)
	if _, err := runServeOnce(t, "--oauth-issuer", is.url); err == nil || !strings.Contains(err.Error(), "--oauth-audience") {
		t.Errorf("no audience: %v", err)
	}
	r := startServe(t, "--flags", writeSeedFlags(t), "--oauth-issuer", is.url, "--oauth-audience", "flagwire")
	if !bannerHas(r, "OAuth 2.0 access tokens: issuer "+is.url) || bannerHas(r, "the server is open") {
		t.Errorf("banner %q", r.banner)
	}
	if res := call(t, "GET", r.url+"/v1/flags?environment=prod", "", "Authorization: Bearer "+is.token(t, "flags:read")); res.status != 200 {
		t.Errorf("flags:read token: %d %s", res.status, res.body)
	}
	if res := call(t, "GET", r.url+"/v1/audit", "", "Authorization: Bearer "+is.token(t, "flags:read")); res.status != 403 {
		t.Errorf("audit with flags:read: %d %s", res.status, res.body)
	}
	if res := call(t, "GET", r.url+"/v1/audit", "", "Authorization: Bearer "+is.token(t, "audit:read")); res.status != 200 {
		t.Errorf("audit with audit:read: %d %s", res.status, res.body)
	}
	if res := call(t, "GET", r.url+"/v1/flags?environment=prod", ""); res.status != 401 {
		t.Errorf("no token: %d %s", res.status, res.body)
	}
}

// Two replicas on PostgreSQL: OAuth access tokens and minted public-client
// tokens are checked alike on both; a token minted on one is accepted by
// the other, and revoked on the other it is refused by the first.
func TestServePostgresReplicasAuth(t *testing.T) {
	dsn := pgDSN(t)
	is := startIssuer(t)
	flags := writeSeedFlags(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	os.WriteFile(tokens, []byte("- subject: edge\n  secret: mint-secret\n  scopes: [tokens:mint]\n"), 0o600)
	args := []string{"--store", dsn, "--flags", flags, "--tokens", tokens, "--oauth-issuer", is.url, "--oauth-audience", "flagwire"}
	a, b := startServe(t, args...), startServe(t, args...)
	rw := is.token(t, "flags:read flags:write", "flagwire_environments", []string{"prod"})
	get := call(t, "GET", a.url+"/v1/flags/checkout-new-flow?environment=prod", "", "Authorization: Bearer "+rw)
	if get.status != 200 {
		t.Fatalf("GET on A: %d %s", get.status, get.body)
	}
	patch := call(t, "PATCH", a.url+"/v1/flags/checkout-new-flow?environment=prod", `{"state":"off","changeReason":"oauth"}`,
		"If-Match: "+get.header.Get("ETag"), "Content-Type: application/json", "Authorization: Bearer "+rw)
	if patch.status != 200 {
		t.Fatalf("PATCH on A: %d %s", patch.status, patch.body)
	}
	onB := call(t, "GET", b.url+"/v1/flags/checkout-new-flow?environment=prod", "", "Authorization: Bearer "+rw)
	if onB.status != 200 || onB.header.Get("ETag") != patch.header.Get("ETag") {
		t.Fatalf("GET on B: %d %s (ETag %s, want %s)", onB.status, onB.body, onB.header.Get("ETag"), patch.header.Get("ETag"))
	}
	for name, tok := range map[string]string{
		"expired":        is.token(t, "flags:read", "exp", time.Now().Add(-time.Hour).Unix()),
		"wrong audience": is.token(t, "flags:read", "aud", "other"),
		"wrong issuer":   is.token(t, "flags:read", "iss", "https://elsewhere.example"),
	} {
		for _, r := range []*running{a, b} {
			if res := call(t, "GET", r.url+"/v1/flags?environment=prod", "", "Authorization: Bearer "+tok); res.status != 401 {
				t.Errorf("%s token: %d %s", name, res.status, res.body)
			}
		}
	}
	if res := call(t, "GET", b.url+"/v1/flags?environment=staging", "", "Authorization: Bearer "+rw); res.status != 403 {
		t.Errorf("an environment the token does not list: %d %s", res.status, res.body)
	}
	mint := call(t, "POST", a.url+"/v1/tokens", `{"environment":"prod","flags":["checkout-new-flow"],"attributes":["region","plan"]}`,
		"Authorization: Bearer mint-secret", "Content-Type: application/json")
	if mint.status != 201 {
		t.Fatalf("mint on A: %d %s", mint.status, mint.body)
	}
	var m struct{ Token, ID string }
	json.Unmarshal(mint.body, &m)
	eval := func(r *running, flag string) int {
		return call(t, "POST", r.url+"/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"`+flag+`","context":{"userId":"u1"}}]}`,
			"Authorization: Bearer "+m.Token, "Content-Type: application/json").status
	}
	if st := eval(b, "checkout-new-flow"); st != 200 {
		t.Errorf("minted on A, evaluated on B: %d", st)
	}
	if st := eval(b, "pricing-experiment"); st != 403 {
		t.Errorf("an unlisted flag on B: %d", st)
	}
	if res := call(t, "DELETE", b.url+"/v1/tokens/"+m.ID, "", "Authorization: Bearer mint-secret"); res.status != 200 {
		t.Fatalf("revoke on B: %d %s", res.status, res.body)
	}
	if st := eval(a, "checkout-new-flow"); st != 401 {
		t.Errorf("revoked on B, evaluated on A: %d", st)
	}
}
