package bootstrap

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// TestSignRefusesBadInput: a nil config, a wrong key and a config that
// does not compile are errors, never a signed file.
func TestSignRefusesBadInput(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad := &evaluate.Config{Environment: "prod", Flags: []evaluate.Flag{{Key: "a", Rules: []evaluate.Rule{{ID: "r", When: "plan =="}}}}}
	for name, tc := range map[string]struct {
		cfg  *evaluate.Config
		key  ed25519.PrivateKey
		want string
	}{
		"nil config":       {nil, priv, "nil config"},
		"short key":        {&evaluate.Config{Environment: "prod"}, priv[:10], "not an Ed25519 private key"},
		"does not compile": {bad, priv, "r"},
	} {
		if _, err := Sign(tc.cfg, tc.key, time.Now(), time.Hour); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
