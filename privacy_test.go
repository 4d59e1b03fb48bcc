package flagwire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

func TestPrivateAttributesNeverSent(t *testing.T) {
	rt := &testkit.RecordingTransport{}
	h := newHarness(t, WithHTTPClient(&http.Client{Transport: rt}), WithPrivateAttributes("email"))
	ctx := WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "email": "jane@example.com"})
	if !h.c.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("evaluation failed")
	}
	bodies := rt.Bodies()
	if len(bodies) != 1 || bytes.Contains(bodies[0], []byte("jane@example.com")) || bytes.Contains(bodies[0], []byte(`"email"`)) {
		t.Fatalf("private attribute sent: %s", bodies)
	}
	// The caller's default stays in the process: the decision is cached
	// for every typed read of the flag.
	if bytes.Contains(bodies[0], []byte(`"defaultValue"`)) {
		t.Fatalf("request carries the caller's default: %s", bodies[0])
	}
}

func TestHashedIdentifiersAgreeAndNeverLeave(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	rt := &testkit.RecordingTransport{}
	opts := []Option{WithHashedAttributes("prod-salt-2026", "userId"), WithPrivateAttributes("email")}
	local := newLocal(t, srv, opts...)
	remote, err := New(context.Background(), append([]Option{WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()),
		WithHTTPClient(&http.Client{Transport: rt}), WithStreaming(false), WithTimeout(patience)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close(context.Background())
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("user-%d", i)
		ctx := WithAttributes(context.Background(), Attributes{"userId": id, "plan": "free", "email": id + "@example.com"})
		lv, ld := local.BoolDetail(ctx, "checkout-new-flow", false)
		rv, rd := remote.BoolDetail(ctx, "checkout-new-flow", false)
		if lv != rv || ld.Reason.Bucket != rd.Reason.Bucket || rd.Source != SourceRemote {
			t.Fatalf("%s: local %v %+v, remote %v %+v", id, lv, ld, rv, rd)
		}
		_, want := evaluate.Bucket("prod-salt-2026", "checkout-new-flow", HashIdentifier("prod-salt-2026", id))
		if ld.Reason.Bucket != int(want) {
			t.Fatalf("bucket %d, want the hashed id's %d", ld.Reason.Bucket, want)
		}
	}
	for _, b := range rt.Bodies() {
		if strings.Contains(string(b), `"user-`) || strings.Contains(string(b), "@example.com") {
			t.Fatalf("raw identifier or private attribute sent: %s", b)
		}
	}
}

// TestSubjectPrivacy: a subject's hashed identifiers and private
// attributes are treated as the map form's are.
func TestSubjectPrivacy(t *testing.T) {
	rt := &testkit.RecordingTransport{}
	h := newHarness(t, WithHTTPClient(&http.Client{Transport: rt}), WithPrivateAttributes("email"), WithHashedAttributes("salt", "userId"))
	ctx := WithSubject(context.Background(), StringAttr("userId", "8a7f4c91"), StringAttr("plan", "pro"), StringAttr("region", "US"), StringAttr("email", "jane@example.com"))
	if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Reason.RuleID != "rule-1" {
		t.Fatalf("evaluation: %v %+v, want true by rule-1", v, d)
	}
	bodies := rt.Bodies()
	if len(bodies) != 1 {
		t.Fatalf("%d requests, want 1", len(bodies))
	}
	body := bodies[0]
	if bytes.Contains(body, []byte("jane@example.com")) || bytes.Contains(body, []byte("8a7f4c91")) {
		t.Fatalf("private attribute or raw identifier sent: %s", body)
	}
	// The hashed form, computed here from its documented definition.
	sum := sha256.Sum256([]byte("salt:8a7f4c91"))
	if !bytes.Contains(body, []byte(hex.EncodeToString(sum[:]))) {
		t.Fatalf("hashed userId not sent: %s", body)
	}
}
