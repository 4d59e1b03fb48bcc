package flagserver

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func mustPrefixes(t *testing.T, list ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientIPRightmostUntrusted: the client address is the peer's unless
// the peer is trusted; then the proxy header is walked from the right and
// the first untrusted hop is the client. Cases are built from how proxies
// append (each appends the address it received the request from).
func TestClientIPRightmostUntrusted(t *testing.T) {
	trusted := mustPrefixes(t, "10.0.0.0/8", "fd00::/8", "192.0.2.7")
	cases := []struct {
		name, peer, header string
		values             []string
		want               string
	}{
		{"untrusted peer: header ignored", "203.0.113.9:5000", HeaderXForwardedFor, []string{"198.51.100.1"}, "203.0.113.9"},
		{"untrusted peer: Forwarded ignored", "203.0.113.9:5000", HeaderForwarded, []string{"for=198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, no header", "10.1.2.3:5000", HeaderXForwardedFor, nil, "10.1.2.3"},
		{"one proxy", "10.1.2.3:5000", HeaderXForwardedFor, []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-supplied spoof left of the real hop", "10.1.2.3:5000", HeaderXForwardedFor, []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted proxies", "10.1.2.3:5000", HeaderXForwardedFor, []string{"1.2.3.4, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines are one list", "10.1.2.3:5000", HeaderXForwardedFor, []string{"1.2.3.4", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"single trusted address", "192.0.2.7:80", HeaderXForwardedFor, []string{"198.51.100.1"}, "198.51.100.1"},
		{"every hop trusted: the leftmost", "10.1.2.3:5000", HeaderXForwardedFor, []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"garbage hop: the last trusted hop", "10.1.2.3:5000", HeaderXForwardedFor, []string{"1.2.3.4, nonsense"}, "10.1.2.3"},
		{"garbage beyond the client is never reached", "10.1.2.3:5000", HeaderXForwardedFor, []string{"nonsense, 198.51.100.1"}, "198.51.100.1"},
		{"empty header", "10.1.2.3:5000", HeaderXForwardedFor, []string{""}, "10.1.2.3"},
		{"empty list elements", "10.1.2.3:5000", HeaderXForwardedFor, []string{"198.51.100.1,, 10.0.0.9 ,"}, "198.51.100.1"},
		{"ports and brackets", "10.1.2.3:5000", HeaderXForwardedFor, []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"IPv6 without a port", "10.1.2.3:5000", HeaderXForwardedFor, []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4 with a port", "10.1.2.3:5000", HeaderXForwardedFor, []string{"198.51.100.1:80"}, "198.51.100.1"},
		{"IPv6 trusted peer", "[fd00::5]:443", HeaderXForwardedFor, []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:443", HeaderXForwardedFor, []string{"198.51.100.1"}, "198.51.100.1"},
		{"XFF configured: Forwarded ignored", "10.1.2.3:5000", HeaderXForwardedFor, nil, "10.1.2.3"},
		// RFC 7239 §4 and §7.4 examples.
		{"Forwarded for=", "10.1.2.3:5000", HeaderForwarded, []string{"for=192.0.2.60;proto=http;by=203.0.113.43"}, "192.0.2.60"},
		{"Forwarded quoted IPv6 with port", "10.1.2.3:5000", HeaderForwarded, []string{`For="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"Forwarded list", "10.1.2.3:5000", HeaderForwarded, []string{`for=192.0.2.43, for="[2001:db8:cafe::17]"`}, "2001:db8:cafe::17"},
		{"Forwarded list, trusted last hop", "10.1.2.3:5000", HeaderForwarded, []string{`for=192.0.2.43, for=10.0.0.9`}, "192.0.2.43"},
		{"Forwarded obfuscated", "10.1.2.3:5000", HeaderForwarded, []string{`for="_gazonk"`}, "10.1.2.3"},
		{"Forwarded unknown", "10.1.2.3:5000", HeaderForwarded, []string{`for=unknown`}, "10.1.2.3"},
		{"Forwarded element without for", "10.1.2.3:5000", HeaderForwarded, []string{`for=192.0.2.43, proto=https`}, "10.1.2.3"},
		{"Forwarded comma inside quotes", "10.1.2.3:5000", HeaderForwarded, []string{`for=192.0.2.43;ext="a,b", for=198.51.100.1`}, "198.51.100.1"},
		{"Forwarded unterminated quote", "10.1.2.3:5000", HeaderForwarded, []string{`for="198.51.100.1`}, "10.1.2.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range tc.values {
				r.Header.Add(tc.header, v)
			}
			// The other header carries a spoof that must never be read.
			other := HeaderForwarded
			if tc.header == HeaderForwarded {
				other = HeaderXForwardedFor
			}
			r.Header.Add(other, "for=203.0.113.66")
			r.Header.Add(other, "203.0.113.66")
			got := clientIP(r, trusted, tc.header)
			if got.String() != tc.want {
				t.Errorf("%s=%q from %s: %s, want %s", tc.header, tc.values, tc.peer, got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.0.0.0/8", " 192.0.2.7 ", "", "::1", "10.1.2.3/8", "::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "10.0.0.0/8", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "10.0.0", "fe80::1%eth0/64"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

// TestAuthFailureLimitBehindProxy: behind a trusted proxy, the
// failed-authentication limit is per client, not per proxy: a guesser
// exhausting its bucket does not lock out another client of the same
// proxy, and cannot escape its bucket by sending its own X-Forwarded-For
// (the proxy appends the real address to it). Without the proxy trusted,
// the header changes nothing.
func TestAuthFailureLimitBehindProxy(t *testing.T) {
	clock := testkit.NewClock()
	opts := Options{
		Now:              clock.Now,
		Tokens:           []Token{{Secret: "good", Scopes: []string{wire.ScopeRead}}},
		AuthFailureLimit: RateLimit{PerSecond: 1, Burst: 2},
		TrustedProxies:   mustPrefixes(t, "127.0.0.0/8", "::1"),
	}
	ts := newTestServer(t, opts)
	get := func(token, xff string) int {
		return ts.do("GET", "/v1/flags?environment=prod", "", "Authorization: Bearer "+token, "X-Forwarded-For: "+xff).status
	}
	for i := range 2 {
		if code := get("wrong", "198.51.100.1"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, code)
		}
	}
	if code := get("wrong", "198.51.100.1"); code != http.StatusTooManyRequests {
		t.Fatalf("third guess: %d, want 429", code)
	}
	// The guesser prepends a fresh address: the proxy appended the real one.
	if code := get("wrong", "203.0.113.5, 198.51.100.1"); code != http.StatusTooManyRequests {
		t.Fatalf("spoofed guess: %d, want 429", code)
	}
	// Another client of the same proxy is unaffected.
	if code := get("good", "198.51.100.2"); code != http.StatusOK {
		t.Fatalf("another client behind the proxy: %d", code)
	}

	// Not trusted: every request is the proxy's, whatever the header says.
	opts.TrustedProxies = nil
	ts2 := newTestServer(t, opts)
	for i, xff := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		code := ts2.do("GET", "/v1/flags?environment=prod", "", "Authorization: Bearer wrong", "X-Forwarded-For: "+xff).status
		want := http.StatusUnauthorized
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if code != want {
			t.Fatalf("untrusted, guess %d (X-Forwarded-For %s): %d, want %d", i+1, xff, code, want)
		}
	}
}

func TestNewRefusesBadProxyHeader(t *testing.T) {
	if s, err := New(Options{ProxyHeader: "X-Real-IP"}); err == nil {
		s.Close()
		t.Fatal("accepted X-Real-IP")
	}
	s, err := New(Options{ProxyHeader: "forwarded"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
