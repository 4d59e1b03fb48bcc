package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// testRotationReachesReplicas: a key rotated in by a replica that starts
// with RotateSigningKey is the key every running replica signs with
// (bootstrap envelopes) and lists first (GET /v1/keys), without a restart,
// once it has polled the store (PollInterval); the replaced key stays
// listed.
func testRotationReachesReplicas(t *testing.T, h ServerHarness) {
	openStore := h.NewStore(t)
	a := StartServer(t, openStore(t))
	defer a.Close()
	old := a.KeyID()
	c := startMinting(t, openStore(t), true, &testClock{now: time.Now()})
	if c.KeyID() == old {
		t.Fatal("the rotating replica kept the old key")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var env struct {
			KeyID string `json:"keyId"`
		}
		json.Unmarshal(Do(t, "GET", a.URL+"/v1/bootstrap?environment=prod", "").Body, &env)
		var keys struct{ Keys []wire.PublicKeyInfo }
		json.Unmarshal(Do(t, "GET", a.URL+"/v1/keys", "").Body, &keys)
		if env.KeyID == c.KeyID() {
			if len(keys.Keys) < 2 || keys.Keys[0].KeyID != c.KeyID() || keys.Keys[1].KeyID != old {
				t.Fatalf("replica A signs with the new key %s but lists %+v, want it first and the old %s after it", c.KeyID(), keys.Keys, old)
			}
			return
		}
		if env.KeyID != old {
			t.Fatalf("replica A's bootstrap is signed by %q, neither the old key %s nor the new %s", env.KeyID, old, c.KeyID())
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica A still signs with %s 30 s after another replica rotated in %s", old, c.KeyID())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
}
