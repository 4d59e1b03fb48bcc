package clockhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/clockhook"
)

func TestWithFrom(t *testing.T) {
	if _, ok := clockhook.From(context.Background()); ok {
		t.Fatal("From found a clock in a bare context")
	}
	if _, ok := clockhook.From(clockhook.With(context.Background(), nil)); ok {
		t.Fatal("With(nil) set a clock")
	}
	at := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	ctx := clockhook.With(context.Background(), func() time.Time { return at })
	now, ok := clockhook.From(ctx)
	if !ok {
		t.Fatal("From found no clock after With")
	}
	if got := now(); !got.Equal(at) {
		t.Fatalf("From's clock says %v, want %v (the clock set by With)", got, at)
	}
	// A derived context keeps it.
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	if now, ok := clockhook.From(child); !ok || !now().Equal(at) {
		t.Fatal("a derived context lost the clock")
	}
}
