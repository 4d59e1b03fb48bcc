package flagserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// sees is a boolean flag whose one rule matches when the context has
// the attribute at path: what the rules saw, read back through a decision.
func sees(path string) evaluate.Flag {
	return evaluate.Flag{
		Key:     "sees-" + strings.ReplaceAll(path, ".", "-"),
		Rules:   []evaluate.Rule{{ID: "present", When: "has(" + path + ")", Serve: evaluate.Serve{Variant: true}}},
		Default: &evaluate.Serve{Variant: false},
	}
}

// mintConfig is environment prod with the sees-* flags and "other".
func mintConfig() *evaluate.Config {
	return &evaluate.Config{Environment: "prod", Salt: "s", Flags: []evaluate.Flag{
		sees("email"), sees("plan"), sees("address.street"), sees("address.country"), sees("userId"), {Key: "other"},
	}}
}

var mintTokens = []Token{
	{Secret: "mint", Subject: "edge-gateway", Scopes: []string{ScopeTokensMint}, Environments: []string{"prod"}},
	{Secret: "read", Subject: "backend", Scopes: []string{ScopeFlagsRead}},
	{Secret: "admin", Subject: "admin", Scopes: []string{ScopeFlagsRead, ScopeFlagsWrite, ScopeAuditRead}},
}

func mintToken(t *testing.T, ts *testServer, body string) (tok, id string) {
	t.Helper()
	r := ts.do("POST", "/v1/tokens", body, "Authorization: Bearer mint")
	r.wantStatus(t, 201)
	var m struct {
		Token, ID string
		ExpiresAt time.Time
	}
	r.json(t, &m)
	if m.Token == "" || m.ID == "" || m.ExpiresAt.IsZero() {
		t.Fatalf("mint answer %s", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	return m.Token, m.ID
}

// TestPublicTokenEvaluatesOnlyItsFlagsAndAttributes: a minted token
// evaluates a listed flag, is refused another, and the rules never see
// the attributes it does not list (a full read token's identical request
// shows the rules would have).
func TestPublicTokenEvaluatesOnlyItsFlagsAndAttributes(t *testing.T) {
	logs := &syncBuffer{}
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{mintConfig()}, Tokens: mintTokens,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	flags := []string{"sees-email", "sees-plan", "sees-address-street", "sees-address-country", "sees-userId"}
	fj, _ := json.Marshal(flags)
	tok, _ := mintToken(t, ts, `{"environment":"prod","flags":`+string(fj)+`,"attributes":["plan","address.country","userId"],"ttlSeconds":600}`)

	ctx := `{"userId":"u-1","email":"secret-email@example.com","plan":"pro","address":{"street":"Secret Street 1","country":"NL"}}`
	var reqs []string
	for _, f := range flags {
		reqs = append(reqs, `{"flagKey":"`+f+`","context":`+ctx+`}`)
	}
	body := `{"environment":"prod","requests":[` + strings.Join(reqs, ",") + `]}`
	seen := func(token string) map[string]string {
		var resp wire.EvaluateResponse
		r := ts.do("POST", "/v1/evaluate", body, "Authorization: Bearer "+token)
		r.wantStatus(t, 200)
		r.json(t, &resp)
		out := map[string]string{}
		for _, d := range resp.Decisions {
			if d.Error != nil {
				t.Fatalf("decision %s: %+v", d.FlagKey, d.Error)
			}
			out[d.FlagKey] = string(d.Variant)
		}
		return out
	}
	// The control: with every attribute, each rule matches.
	for f, v := range seen("read") {
		if v != "true" {
			t.Fatalf("control: %s = %s, want true (the rule must see its attribute)", f, v)
		}
	}
	want := map[string]string{"sees-email": "false", "sees-plan": "true", "sees-address-street": "false", "sees-address-country": "true", "sees-userId": "true"}
	if got := seen(tok); !mapsEqual(got, want) {
		t.Fatalf("public token: rules saw %v, want %v", got, want)
	}
	// OFREP single and bulk drop the same attributes.
	r := ts.do("POST", "/ofrep/v1/evaluate/flags/sees-email", `{"context":`+ctx+`}`, "Authorization: Bearer "+tok)
	r.wantStatus(t, 200)
	var one wire.OFREPEvaluation
	r.json(t, &one)
	if string(mustJSON(one.Value)) != "false" {
		t.Errorf("OFREP sees-email = %s, want false", mustJSON(one.Value))
	}
	r = ts.do("POST", "/ofrep/v1/evaluate/flags", `{"context":`+ctx+`}`, "Authorization: Bearer "+tok)
	r.wantStatus(t, 200)
	var bulk struct {
		Flags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"flags"`
	}
	r.json(t, &bulk)
	gotBulk := map[string]string{}
	for _, f := range bulk.Flags {
		gotBulk[f.Key] = string(mustJSON(f.Value))
	}
	if !mapsEqual(gotBulk, want) { // only the listed flags, "other" absent
		t.Errorf("OFREP bulk %v, want %v", gotBulk, want)
	}
	// Another flag: 403 naming it, on every evaluation path.
	e := ts.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"sees-plan"},{"flagKey":"other"}]}`, "Authorization: Bearer "+tok).
		wantError(t, 403, wire.CodeForbidden)
	if !strings.Contains(e.Message, `"other"`) {
		t.Errorf("message %q does not name the flag", e.Message)
	}
	ts.do("POST", "/ofrep/v1/evaluate/flags/other", `{"context":{}}`, "Authorization: Bearer "+tok).wantError(t, 403, wire.CodeForbidden)
	// Explain would show the rules (their attribute names and values): 403.
	ts.do("POST", "/v1/evaluate", `{"environment":"prod","options":{"explain":true},"requests":[{"flagKey":"sees-plan"}]}`, "Authorization: Bearer "+tok).
		wantError(t, 403, wire.CodeForbidden)
	// Another environment, and everything else: 403.
	ts.do("POST", "/v1/evaluate", `{"environment":"staging","requests":[{"flagKey":"sees-plan"}]}`, "Authorization: Bearer "+tok).wantError(t, 403, wire.CodeForbidden)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/flags?environment=prod", ""},
		{"GET", "/v1/flags/sees-plan?environment=prod", ""},
		{"GET", "/v1/stream?environment=prod", ""},
		{"GET", "/v1/audit", ""},
		{"GET", "/v1/bootstrap?environment=prod", ""},
		{"GET", "/v1/keys", ""},
		{"POST", "/v1/flags?environment=prod", `{"key":"x","changeReason":"r"}`},
		{"POST", "/v1/tokens", `{"environment":"prod","flags":["sees-plan"]}`},
	} {
		ts.do(c.method, c.path, c.body, "Authorization: Bearer "+tok).wantError(t, 403, wire.CodeForbidden)
	}
	// The unlisted attribute values never reach the logs.
	for _, secret := range []string{"secret-email", "Secret Street", tok} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestMintBadRequests: each bad request gets a clear 4xx and no token.
func TestMintBadRequests(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{mintConfig()}, Tokens: mintTokens})
	cases := []struct {
		name, token, body string
		status            int
		code, says        string
	}{
		{"ttl over an hour", "mint", `{"environment":"prod","flags":["other"],"ttlSeconds":3601}`, 400, wire.CodeBadRequest, "3600"},
		{"ttl zero", "mint", `{"environment":"prod","flags":["other"],"ttlSeconds":0}`, 400, wire.CodeBadRequest, "ttlSeconds"},
		{"unknown flag", "mint", `{"environment":"prod","flags":["other","nope","gone"]}`, 400, wire.CodeBadRequest, "nope, gone"},
		{"no flags", "mint", `{"environment":"prod","flags":[]}`, 400, wire.CodeBadRequest, "flags"},
		{"no environment", "mint", `{"flags":["other"]}`, 400, wire.CodeBadRequest, "environment"},
		{"bad attribute path", "mint", `{"environment":"prod","flags":["other"],"attributes":["a..b"]}`, 400, wire.CodeBadRequest, "a..b"},
		{"unknown field", "mint", `{"environment":"prod","flags":["other"],"ttl":5}`, 400, wire.CodeUnknownField, "ttl"},
		{"environment not allowed", "mint", `{"environment":"staging","flags":["other"]}`, 403, wire.CodeForbidden, "staging"},
		{"no tokens:mint scope", "admin", `{"environment":"prod","flags":["other"]}`, 403, wire.CodeForbidden, ScopeTokensMint},
		{"unknown environment", "mint", `{"environment":"prod2","flags":["other"]}`, 403, wire.CodeForbidden, "prod2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := ts.do("POST", "/v1/tokens", c.body, "Authorization: Bearer "+c.token).wantError(t, c.status, c.code)
			if !strings.Contains(e.Message, c.says) {
				t.Errorf("message %q does not say %q", e.Message, c.says)
			}
		})
	}
}

// TestMintedTokenForgeries: altered, expired, foreign-key, wrong-audience,
// unknown-id and revoked tokens are refused with 401.
func TestMintedTokenForgeries(t *testing.T) {
	clock := testkit.NewClock()
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{mintConfig()}, Tokens: mintTokens, Now: clock.Now})
	tok, id := mintToken(t, ts, `{"environment":"prod","flags":["sees-plan"],"attributes":["plan"],"ttlSeconds":60}`)
	eval := func(token string) *response {
		return ts.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"sees-plan"}]}`, "Authorization: Bearer "+token)
	}
	eval(tok).wantStatus(t, 200)
	if rec, ok, err := ts.store.MintedToken(context.Background(), id); err != nil || !ok || rec.Subject != "edge-gateway" || rec.Environment != "prod" || len(rec.Flags) != 1 {
		t.Errorf("record of %s: %+v %v %v", id, rec, ok, err)
	}

	parts := strings.Split(tok, ".")
	// A payload granting another flag, with the original signature.
	var claims map[string]any
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(p, &claims)
	claims["flagwire_flags"] = []string{"sees-plan", "other"}
	np, _ := json.Marshal(claims)
	eval(parts[0]+"."+base64.RawURLEncoding.EncodeToString(np)+"."+parts[2]).wantError(t, 401, wire.CodeUnauthorized)

	// Signed by a key that is not the server's (same kid claimed).
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(key ed25519.PrivateKey, kid string, c jwt.MapClaims, method jwt.SigningMethod) string {
		tk := jwt.NewWithClaims(method, c)
		tk.Header["kid"] = kid
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mc := jwt.MapClaims{}
	for k, v := range claims {
		mc[k] = v
	}
	eval(sign(foreign, ts.KeyID(), mc, jwt.SigningMethodEdDSA)).wantError(t, 401, wire.CodeUnauthorized)
	// Signed by the server's own key (as a test can), but with an unknown id:
	// the store has no record of it.
	own := ts.keys.Load().sign
	mc2 := jwt.MapClaims{}
	for k, v := range claims {
		mc2[k] = v
	}
	mc2["jti"] = "not-minted"
	e := eval(sign(own, ts.KeyID(), mc2, jwt.SigningMethodEdDSA)).wantError(t, 401, wire.CodeUnauthorized)
	if !strings.Contains(e.Message, "not known") {
		t.Errorf("unknown jti: %q", e.Message)
	}
	// Wrong audience.
	mc3 := jwt.MapClaims{}
	for k, v := range claims {
		mc3[k] = v
	}
	mc3["aud"] = "someone-else"
	eval(sign(own, ts.KeyID(), mc3, jwt.SigningMethodEdDSA)).wantError(t, 401, wire.CodeUnauthorized)
	// alg none.
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, mc).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	eval(none).wantError(t, 401, wire.CodeUnauthorized)
	// HS256 with the public key as the secret.
	pub := ts.PublicKey()
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, mc)
	hs.Header["kid"] = ts.KeyID()
	hsTok, _ := hs.SignedString([]byte(pub))
	eval(hsTok).wantError(t, 401, wire.CodeUnauthorized)

	// Expiry: valid within the leeway, refused after it.
	clock.Advance(60*time.Second + mintLeeway - time.Second)
	eval(tok).wantStatus(t, 200)
	clock.Advance(2 * time.Second)
	e = eval(tok).wantError(t, 401, wire.CodeUnauthorized)
	if !strings.Contains(e.Message, "expired") {
		t.Errorf("expired: %q", e.Message)
	}

	// Revocation: DELETE /v1/tokens/{id} (tokens:mint), then 401.
	tok2, id2 := mintToken(t, ts, `{"environment":"prod","flags":["sees-plan"]}`)
	eval(tok2).wantStatus(t, 200)
	ts.do("DELETE", "/v1/tokens/"+id2, "", "Authorization: Bearer admin").wantError(t, 403, wire.CodeForbidden)
	ts.do("DELETE", "/v1/tokens/"+id2, "", "Authorization: Bearer mint").wantStatus(t, 200)
	e = eval(tok2).wantError(t, 401, wire.CodeUnauthorized)
	if !strings.Contains(e.Message, "revoked") {
		t.Errorf("revoked: %q", e.Message)
	}
	ts.do("DELETE", "/v1/tokens/never-minted", "", "Authorization: Bearer mint").wantError(t, 404, CodeTokenNotFound)
}

// TestMintedTokenSurvivesKeyRotation: a token signed with the key a
// rotation replaced still verifies (the kid names it); one minted after
// the rotation carries the new key's id.
func TestMintedTokenSurvivesKeyRotation(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Configs: []*evaluate.Config{mintConfig()}, Tokens: mintTokens, DataDir: dir}
	ts := newTestServer(t, opts)
	tok, _ := mintToken(t, ts, `{"environment":"prod","flags":["sees-plan"]}`)
	oldKid := ts.KeyID()
	ts.Close()
	ts.hs.Close()
	opts.RotateSigningKey = true
	ts2 := newTestServer(t, opts)
	if ts2.KeyID() == oldKid {
		t.Fatal("rotation kept the key")
	}
	ts2.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"sees-plan"}]}`, "Authorization: Bearer "+tok).wantStatus(t, 200)
	tok2, _ := mintToken(t, ts2, `{"environment":"prod","flags":["sees-plan"]}`)
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok2, ".")[0])
	var hdr struct{ Alg, Kid string }
	json.Unmarshal(h, &hdr)
	if hdr.Alg != "EdDSA" || hdr.Kid != ts2.KeyID() {
		t.Errorf("header %s, want EdDSA and kid %s", h, ts2.KeyID())
	}
}

// TestOpenServerHonoursMintedTokens: without tokens (development) a
// minted token still only evaluates its flags.
func TestOpenServerHonoursMintedTokens(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{mintConfig()}})
	r := ts.do("POST", "/v1/tokens", `{"environment":"prod","flags":["sees-plan"]}`)
	r.wantStatus(t, 201)
	var m struct{ Token string }
	r.json(t, &m)
	ts.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"other"}]}`, "Authorization: Bearer "+m.Token).wantError(t, 403, wire.CodeForbidden)
	ts.do("GET", "/v1/flags?environment=prod", "", "Authorization: Bearer "+m.Token).wantError(t, 403, wire.CodeForbidden)
	ts.do("GET", "/v1/flags?environment=prod", "").wantStatus(t, 200)
}

func TestAttrTreeFilter(t *testing.T) {
	ctx := map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": map[string]any{"e": 3, "f": 4}}, "g": "x"}
	cases := []struct {
		paths []string
		want  string
	}{
		{nil, `{}`},
		{[]string{"a"}, `{"a":1}`},
		{[]string{"b"}, `{"b":{"c":2,"d":{"e":3,"f":4}}}`},
		{[]string{"b.d.e", "g"}, `{"b":{"d":{"e":3}},"g":"x"}`},
		{[]string{"b.d.e", "b"}, `{"b":{"c":2,"d":{"e":3,"f":4}}}`},
		{[]string{"a.x"}, `{}`}, // a is not an object
		{[]string{"missing"}, `{}`},
	}
	for _, c := range cases {
		got, _ := json.Marshal(newAttrTree(c.paths).filter(ctx))
		if string(got) != c.want {
			t.Errorf("%v: %s, want %s", c.paths, got, c.want)
		}
	}
	if ctx["g"] != "x" || len(ctx) != 3 {
		t.Error("filter modified its input")
	}
}
