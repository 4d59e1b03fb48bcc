package retry

import (
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
		{"99999999", 86400 * time.Second, true},
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
