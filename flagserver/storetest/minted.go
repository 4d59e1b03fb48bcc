package storetest

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
)

// testClock is a settable clock the replicas share.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// RunMinted runs the MintedTokenStore tests: a record reads back as
// stored, an unknown id is not found, revocation is kept, and (for a
// durable store) all of it survives a reopen.
func RunMinted(t *testing.T, h Harness) {
	st := open(t, h)
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := flagserver.MintedToken{ID: "0123abcd", Subject: "edge", Environment: "prod", Flags: []string{"a", "b"},
		Attributes: []string{"plan", "user.country"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.RecordMintedToken(ctx, rec); err != nil {
		t.Fatal(err)
	}
	check := func(st flagserver.Store, want flagserver.MintedToken) {
		t.Helper()
		got, ok, err := st.MintedToken(ctx, want.ID)
		if err != nil || !ok {
			t.Fatalf("MintedToken(%s): %v %v", want.ID, ok, err)
		}
		if got.ID != want.ID || got.Subject != want.Subject || got.Environment != want.Environment ||
			!slices.Equal(got.Flags, want.Flags) || !slices.Equal(got.Attributes, want.Attributes) ||
			!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Revoked != want.Revoked {
			t.Fatalf("MintedToken(%s) = %+v, want %+v", want.ID, got, want)
		}
	}
	check(st, rec)
	if _, ok, err := st.MintedToken(ctx, "never"); ok || err != nil {
		t.Fatalf("unknown id: %v %v", ok, err)
	}
	if ok, err := st.RevokeMintedToken(ctx, "never"); ok || err != nil {
		t.Fatalf("revoke unknown id: %v %v", ok, err)
	}
	if ok, err := st.RevokeMintedToken(ctx, rec.ID); !ok || err != nil {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	rec.Revoked = true
	check(st, rec)
	// A later record expiring first: both kept while live.
	rec2 := flagserver.MintedToken{ID: "ffee", Subject: "edge", Environment: "prod", Flags: []string{"a"}, Attributes: []string{},
		IssuedAt: now.Add(time.Second), ExpiresAt: now.Add(time.Minute)}
	if err := st.RecordMintedToken(ctx, rec2); err != nil {
		t.Fatal(err)
	}
	check(st, rec)
	check(st, rec2)
	if h.Reopen != nil {
		st = h.Reopen(t, st)
		t.Cleanup(func() { st.Close() })
		check(st, rec)
		check(st, rec2)
	}
}

// startMinting starts a server on st with environment prod (flags f and
// g), open (anyone may mint), rotating the store's signing key if rotate.
func startMinting(t *testing.T, st flagserver.Store, rotate bool, clock *testClock) *Server {
	t.Helper()
	cfg := &evaluate.Config{Environment: "prod", Salt: "salt", Flags: []evaluate.Flag{{Key: "f"}, {Key: "g"}}}
	return start(t, flagserver.Options{Store: st, Configs: []*evaluate.Config{cfg}, RotateSigningKey: rotate, Now: clock.Now})
}

func mint(t *testing.T, s *Server) (token, id string) {
	t.Helper()
	r := Do(t, "POST", s.URL+"/v1/tokens", `{"environment":"prod","flags":["f"]}`)
	want(t, r, 201)
	var m struct{ Token, ID string }
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m.Token, m.ID
}

func evalWith(t *testing.T, s *Server, token, flag string) *Response {
	t.Helper()
	return Do(t, "POST", s.URL+"/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"`+flag+`"}]}`, "Authorization: Bearer "+token)
}

// RunMintedReplicas runs minted tokens across replicas of a shared store:
// a token minted on one is accepted by another (and refused for a flag it
// does not list); revoked on the second, it is refused by the first once
// flagserver.MintedRecheck passed since the first last checked it (the
// servers share a test clock); and a token signed with a key a third
// replica rotated in is accepted by the first, which started before that
// key existed.
func RunMintedReplicas(t *testing.T, h ServerHarness) {
	if !h.Shared {
		t.Skip("a store one server opens at a time has no replicas")
	}
	openStore := h.NewStore(t)
	clock := &testClock{now: time.Now()}
	a, b := startMinting(t, openStore(t), false, clock), startMinting(t, openStore(t), false, clock)
	tok, id := mint(t, a)
	want(t, evalWith(t, b, tok, "f"), 200)
	want(t, evalWith(t, b, tok, "g"), 403)
	want(t, evalWith(t, a, tok, "f"), 200) // a checks the store, and trusts it for MintedRecheck
	want(t, Do(t, "DELETE", b.URL+"/v1/tokens/"+id, ""), 200)
	want(t, evalWith(t, b, tok, "f"), 401)
	want(t, evalWith(t, a, tok, "f"), 200) // within the recheck window
	clock.Advance(flagserver.MintedRecheck)
	want(t, evalWith(t, a, tok, "f"), 401)
	// A token a never saw is checked at once.
	tok3, id3 := mint(t, b)
	want(t, Do(t, "DELETE", b.URL+"/v1/tokens/"+id3, ""), 200)
	want(t, evalWith(t, a, tok3, "f"), 401)

	old := a.KeyID()
	c := startMinting(t, openStore(t), true, clock)
	if c.KeyID() == old {
		t.Fatal("the third replica did not rotate the key")
	}
	tok2, _ := mint(t, c)
	want(t, evalWith(t, a, tok2, "f"), 200)
}
