package flagwire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// fuzzNow is the clock reading of the fuzz targets: inside the validity of
// testdata/bootstrap/good.json (issued 2026-01-01, expires 2027-01-01).
var fuzzNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fuzzKey is the deterministic signing key of the bootstrap seeds.
func fuzzKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("flagwire fuzz signing key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// fuzzEnvelope signs payload as a bootstrap for environment "prod", with the
// envelope version taken from the payload's "version" (0 if absent), so
// that fuzzed payloads get past the signature check and reach the config
// decoder and compiler. It returns the envelope and the version signed.
func fuzzEnvelope(payload []byte) ([]byte, int64) {
	var v struct {
		Version int64 `json:"version"`
	}
	json.Unmarshal(payload, &v) // best effort: a bad payload is the point
	env := wire.BootstrapEnvelope{
		Environment: "prod",
		IssuedAt:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		ExpiresAt:   time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		Version:     v.Version,
		Payload:     payload,
	}
	// json.Marshal compacts (and HTML-escapes) a RawMessage: sign the
	// payload as it will be written, or the signature would not verify.
	if b, err := json.Marshal(env); err == nil {
		var again wire.BootstrapEnvelope
		if json.Unmarshal(b, &again) == nil {
			env.Payload = again.Payload
		}
	}
	env.Sign(fuzzKey())
	b, _ := json.Marshal(env)
	return b, v.Version
}

// fuzzAttrs are the evaluation contexts every accepted config is evaluated
// with: "parsed means evaluable".
var fuzzAttrs = []Attributes{
	nil,
	{},
	{"userId": "8a7f4c91", "plan": "pro", "region": "US", "appVersion": "2.3.1"},
	{"userId": "beta-1", "accountId": "acme-co-1337", "country": "DE", "plan": "enterprise", "region": "EU", "appVersion": "1.9.0"},
	{"userId": 42, "plan": []any{"pro", 1}, "region": map[string]any{"x": nil}, "appVersion": true},
}

// FuzzBootstrapEnvelope feeds arbitrary bytes to the bootstrap loader
// ((*Client).loadEnvelope, what WithBootstrap, WithBootstrapFile and the
// last-known file go through). With sign set, the bytes are the payload of
// an envelope the fuzzer signs with a trusted key, so hostile configs in a
// validly signed envelope are explored too. It checks that loading never
// panics, that errors are errors (no half-loaded state), that an accepted
// envelope really verifies and is for the client's environment, and that
// every flag of an accepted config evaluates without panicking.
func FuzzBootstrapEnvelope(f *testing.F) {
	for _, b := range testkit.ReadFiles(f, "testdata/bootstrap/*.json") {
		f.Add(b, false)
	}
	for _, b := range testkit.ReadFiles(f, "testdata/bootstrap/payload-*.json") {
		f.Add(b, true)
	}
	f.Add([]byte(`{}`), true)
	f.Add([]byte(`null`), false)
	f.Add([]byte(`{"format":"flagwire-bootstrap/v1","payload":{},"signature":""}`), false)

	priv := fuzzKey()
	pub := priv.Public().(ed25519.PublicKey)
	c := &Client{cfg: defaultConfig()}
	c.cfg.localOptions.keys = map[string]ed25519.PublicKey{wire.KeyID(pub): pub}
	c.cfg.localOptions.maxConfig = 1 << 20

	// The one validly signed seed: whatever the fuzzer does to it, the
	// loader either refuses it or yields exactly its signed content.
	goodSnap, err := c.loadEnvelope(testkit.ReadFiles(f, "testdata/bootstrap/good.json")[0], fuzzNow)
	if err != nil {
		f.Fatalf("good.json: %v", err)
	}
	goodKeys := strings.Join(goodSnap.snap.Keys(), ",")

	f.Fuzz(func(t *testing.T, data []byte, sign bool) {
		var signed int64
		if sign {
			data, signed = fuzzEnvelope(data)
		}
		st, err := c.loadEnvelope(data, fuzzNow)
		if err != nil {
			if st != nil {
				t.Fatalf("loadEnvelope returned a state with error %v", err)
			}
			return
		}
		if st == nil || st.snap == nil {
			t.Fatal("loadEnvelope accepted the envelope but returned no snapshot")
		}
		if st.source != SourceBootstrap {
			t.Fatalf("source %v, want BOOTSTRAP", st.source)
		}
		// Accepted means signed: no content but what the key signed.
		if sign {
			if st.snap.Version() != signed {
				t.Fatalf("snapshot version %d, signed version %d", st.snap.Version(), signed)
			}
		} else if st.snap.Version() != goodSnap.snap.Version() || strings.Join(st.snap.Keys(), ",") != goodKeys {
			t.Fatalf("accepted unsigned content: version %d, flags %v; the only signed seed has version %d, flags %s",
				st.snap.Version(), st.snap.Keys(), goodSnap.snap.Version(), goodKeys)
		}
		// Parsed means evaluable.
		for _, key := range append(st.snap.Keys(), "no-such-flag") {
			for _, attrs := range fuzzAttrs {
				r := st.snap.Evaluate(key, attrs, fuzzNow)
				if r.Reason.Kind != evaluate.ReasonError && r.Value == nil {
					t.Fatalf("%s: a decision without a value: %+v", key, r)
				}
			}
		}
	})
}

// fuzzStreamTransport answers every request with a 200 text/event-stream
// whose body is the fuzz input, and records the last request's headers.
type fuzzStreamTransport struct {
	body    []byte
	lastReq *http.Request
}

func (tr *fuzzStreamTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tr.lastReq = r
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"text/event-stream"}},
		Body:       io.NopCloser(bytes.NewReader(tr.body)),
		Request:    r,
	}, nil
}

// validHeaderValue reports whether v may be sent as an HTTP header value
// (RFC 9110 field-value: no control characters but HTAB), as net/http's
// Transport requires before it sends a request.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// FuzzStreamEvents feeds arbitrary bytes as the body of GET /v1/stream
// through the SDK's real stream path (streamer.connectOnce: status check,
// watchdog, go-sse parsing, handle), with the remote mode's event handlers
// acting on a real client's decision cache. It checks that it never
// panics, that the connection always ends with an error (a stream end is
// always a reconnect), that only invalidate and reset events reach the
// handlers, and that the Last-Event-ID the SDK will send on its next
// reconnect is a valid header value: an id the server chose must never
// make every later reconnect fail.
func FuzzStreamEvents(f *testing.F) {
	for _, b := range testkit.ReadFiles(f, "testdata/stream/*.sse") {
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("data: {\"type\":\"invalidate\"\n\n"))
	f.Add([]byte(": keep-alive\n\n"))

	tr := &fuzzStreamTransport{}
	c, err := New(context.Background(),
		WithEndpoint("http://127.0.0.1:1"),
		WithHTTPClient(&http.Client{Transport: tr}),
		WithStreaming(false), // the fuzz target drives its own streamer
		WithLogger(quietLogger()),
	)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close(context.Background()) })

	f.Fuzz(func(t *testing.T, data []byte) {
		var events []wire.StreamEvent
		s := &streamer{
			c:    c,
			idle: time.Minute, // the body never stalls: it is all there
			onEvent: func(ev wire.StreamEvent) {
				events = append(events, ev)
				// The remote mode's handler (see startLocal).
				switch {
				case ev.Type == wire.EventReset || ev.SegmentKey != "":
					c.cache.invalidateAll()
				default:
					c.cache.invalidate(ev.FlagKey)
					c.notifyFlagKeys([]string{ev.FlagKey}, ev.Version)
				}
			},
			onConnect: func(streamStart) { c.cache.invalidateAll() },
		}
		tr.body = data
		err := s.connectOnce(context.Background())
		if err == nil {
			t.Fatal("connectOnce returned nil: a stream that ends must lead to a reconnect")
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != CodeUnavailable {
			t.Fatalf("connectOnce error %T %v, want an UNAVAILABLE apiError", err, err)
		}
		for _, ev := range events {
			if ev.Type != wire.EventInvalidate && ev.Type != wire.EventReset {
				t.Fatalf("event of type %q reached the handler", ev.Type)
			}
		}
		if !validHeaderValue(s.lastID) {
			t.Fatalf("Last-Event-ID %q is not a valid header value: every reconnect would fail", s.lastID)
		}
		// The reconnect carries it, and the transport gets the request.
		tr.body = nil
		tr.lastReq = nil
		s.connectOnce(context.Background())
		if tr.lastReq == nil {
			t.Fatal("reconnect did not reach the transport")
		}
		if got := tr.lastReq.Header.Get("Last-Event-ID"); got != s.lastID {
			t.Fatalf("reconnect sent Last-Event-ID %q, want %q", got, s.lastID)
		}
	})
}

// TestBootstrapSeedsLoad keeps the bootstrap seed corpus honest: the good
// seed loads and the tampered ones are refused for the documented reason.
func TestBootstrapSeedsLoad(t *testing.T) {
	pub := fuzzKey().Public().(ed25519.PublicKey)
	c := &Client{cfg: defaultConfig()}
	c.cfg.localOptions.keys = map[string]ed25519.PublicKey{wire.KeyID(pub): pub}
	cases := map[string]error{
		"good.json":             nil,
		"tampered-payload.json": wire.ErrBootstrapSignature,
		"expired.json":          wire.ErrBootstrapExpired,
		"unknown-key.json":      wire.ErrBootstrapUnknownKey,
		"truncated.json":        wire.ErrBootstrapFormat,
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "bootstrap", name))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.loadEnvelope(data, fuzzNow)
			if want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if want != nil && !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
		})
	}
}

// TestWriteFuzzSeeds regenerates testdata/bootstrap when run with
// FLAGWIRE_WRITE_SEEDS=1 (the seeds are signed with the deterministic
// fuzzKey, so they are stable).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("FLAGWIRE_WRITE_SEEDS") == "" {
		t.Skip("set FLAGWIRE_WRITE_SEEDS=1 to regenerate testdata/bootstrap")
	}
	dir := filepath.Join("testdata", "bootstrap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := exampleConfig()
	cfg.Version = 7
	payload, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("payload-example.json", payload)
	good, _ := fuzzEnvelope(payload)
	write("good.json", good)
	write("tampered-payload.json", bytes.Replace(good, []byte("rule-1"), []byte("rule-X"), 1))
	write("truncated.json", good[:len(good)/2])

	var env wire.BootstrapEnvelope
	json.Unmarshal(good, &env)
	env.IssuedAt, env.ExpiresAt = env.IssuedAt.AddDate(-2, 0, 0), env.ExpiresAt.AddDate(-2, 0, 0)
	env.Sign(fuzzKey())
	b, _ := json.Marshal(env)
	write("expired.json", b)

	other := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	json.Unmarshal(good, &env)
	env.Sign(other)
	b, _ = json.Marshal(env)
	write("unknown-key.json", b)

	bad := exampleConfig()
	bad.Version = 8
	bad.Flags[0].Rules[0].When = "plan == "
	payload, _ = json.Marshal(bad)
	write("payload-uncompilable.json", payload)
}
