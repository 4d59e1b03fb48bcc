package retry

import (
	"math"
	"testing"
	"time"
)

func TestDecorrelatedJitterBounds(t *testing.T) {
	d := NewDecorrelatedJitter(10*time.Millisecond, time.Second)
	prev := d.Base
	for i := 0; i < 10000; i++ {
		n := d.NextBackOff()
		hi := prev * 3
		if hi > d.Cap {
			hi = d.Cap
		}
		if n < d.Base || n > hi {
			t.Fatalf("step %d: %v outside [%v, %v]", i, n, d.Base, hi)
		}
		prev = n
	}
	d.Reset()
	if n := d.NextBackOff(); n > 30*time.Millisecond {
		t.Fatalf("after Reset: %v > 3*base", n)
	}
}

func TestDecorrelatedJitterDeterministic(t *testing.T) {
	d := &DecorrelatedJitter{Base: 100 * time.Millisecond, Cap: 400 * time.Millisecond, Rand: func(n int64) int64 { return n - 1 }}
	want := []time.Duration{300 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	for i, w := range want {
		if got := d.NextBackOff(); got != w {
			t.Fatalf("step %d: got %v want %v", i, got, w)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Tue, 24 Nov 2026 12:00:05 GMT", 5 * time.Second, true},
		{"Tue, 24 Nov 2026 11:00:00 GMT", 0, true},
		{"+3", 0, false},
		{"3.5", 0, false},
		{"299", 299 * time.Second, true},
		{"300", 5 * time.Minute, true},
		{"301", 5 * time.Minute, true},
		{"99999999", 5 * time.Minute, true},
		{"999999999", 5 * time.Minute, true},
		{"99999999999999999999999999", 5 * time.Minute, true}, // beyond int64
		{"Tue, 24 Nov 2026 12:04:00 GMT", 4 * time.Minute, true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", 5 * time.Minute, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, ok := ParseRetryAfter(c.in, now)
			if got != c.want || ok != c.ok {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
}

// TestRetryAfterCapped: Retry-After in both forms is capped at the bound
// the caller chose, without overflow, however large the header.
func TestRetryAfterCapped(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in    string
		limit time.Duration
		want  time.Duration
	}{
		{"999999999", time.Minute, time.Minute},
		{"999999999", time.Hour, time.Hour},
		{"59", time.Minute, 59 * time.Second},
		{"9223372036854775807", time.Hour, time.Hour},
		{"9223372036854775807", 0, math.MaxInt64},
		{"9223372036", 0, 9223372036 * time.Second},
		{"9223372037", 0, math.MaxInt64}, // 9223372037 s overflows a Duration
		{"Tue, 24 Nov 2026 12:30:00 GMT", time.Hour, 30 * time.Minute},
		{"Tue, 24 Nov 2026 13:30:00 GMT", time.Hour, time.Hour},
		{"Fri, 31 Dec 9999 23:59:59 GMT", 0, math.MaxInt64},
	}
	for _, c := range cases {
		got, ok := ParseRetryAfterMax(c.in, now, c.limit)
		if !ok || got != c.want {
			t.Errorf("ParseRetryAfterMax(%q, %v) = %v, %v; want %v", c.in, c.limit, got, ok, c.want)
		}
	}
}
