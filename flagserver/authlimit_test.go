package flagserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// clientFrom returns an HTTP client whose connections come from the
// loopback address local (Linux routes all of 127/8 to lo).
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func status(t *testing.T, c *http.Client, url, token string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

// TestFailedAuthIsRateLimitedPerAddress: a burst of unknown-token guesses
// from one address gets at most DefaultAuthFailureLimit.Burst (20) 401s
// while the clock stands still, then 429 with Retry-After, even for the
// right token (a right guess must not stand out); a valid token from
// another address is unaffected; the bucket refills with time.
func TestFailedAuthIsRateLimitedPerAddress(t *testing.T) {
	clock := testkit.NewClock()
	ts := newTestServer(t, Options{Now: clock.Now, Tokens: []Token{{Secret: "good", Scopes: []string{wire.ScopeRead}}}})
	url := ts.URL + "/v1/flags?environment=prod"
	guesser := clientFrom("127.0.0.1")
	defer guesser.CloseIdleConnections()
	other := clientFrom("127.0.0.2")
	defer other.CloseIdleConnections()

	const guesses = 300
	var n401, n429, nOther atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= guesses; i = next.Add(1) {
				code, h := status(t, guesser, url, "guess-"+strconv.FormatInt(i, 10))
				switch {
				case code == 401:
					n401.Add(1)
				case code == 429 && h.Get("Retry-After") != "":
					n429.Add(1)
				default:
					nOther.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n401.Load() != 20 || n429.Load() != guesses-20 || nOther.Load() != 0 {
		t.Fatalf("%d guesses: %d × 401, %d × 429, %d other; want 20 × 401, the rest 429", guesses, n401.Load(), n429.Load(), nOther.Load())
	}
	// The guesser's address is throttled, for the right token too.
	if code, h := status(t, guesser, url, "good"); code != 429 || h.Get("Retry-After") != "1" {
		t.Fatalf("right token from the throttled address: %d Retry-After %q", code, h.Get("Retry-After"))
	}
	// Another address is not.
	for range 50 {
		if code, _ := status(t, other, url, "good"); code != 200 {
			t.Fatalf("valid token from another address: %d", code)
		}
	}
	// Good requests give their token back: they never drain the bucket.
	if code, _ := status(t, other, url, "nope"); code != 401 {
		t.Fatalf("one wrong token from the other address: %d, want 401", code)
	}
	// Time refills the guesser's bucket (2/s).
	clock.Advance(time.Second)
	for i := range 2 {
		if code, _ := status(t, guesser, url, "wrong"); code != 401 {
			t.Fatalf("after 1s, guess %d: %d, want 401", i, code)
		}
	}
	if code, _ := status(t, guesser, url, "wrong"); code != 429 {
		t.Fatalf("third guess after 1s: %d, want 429", code)
	}
}

// TestAuthFailureLimiterBounded: the limiter tracks at most its cap of
// addresses, however many fail.
func TestAuthFailureLimiterBounded(t *testing.T) {
	clock := testkit.NewClock()
	l := newAuthFailLimiter(DefaultAuthFailureLimit, 1000, clock.Now)
	w := &discardWriter{h: http.Header{}}
	for i := range 20000 {
		l.reserve(w, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
		if i%1000 == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	if n := l.size(); n > 1000 {
		t.Fatalf("%d addresses tracked, cap 1000", n)
	}
}

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:4711":             "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":      "192.0.2.7",
		"garbage":                    "garbage",
	} {
		// No trusted proxies: forwarding headers are ignored.
		r := &http.Request{RemoteAddr: in, Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}}}
		if got := (&Server{opts: Options{ProxyHeader: HeaderXForwardedFor}}).clientAddr(r); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
