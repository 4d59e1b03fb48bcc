package flagwire

import (
	"context"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

// TestStatusAPIFailureApartFromState: after the API stops answering, the
// state still says what the data is (remote mode: ready, its cached
// decisions serve) while LastError says why the API failed and ErrorSince
// since when, from the first failure on; the next answer clears both, so
// the fields never read as a contradiction (ready with an old error).
func TestStatusAPIFailureApartFromState(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithFlags("prod", evaluate.Flag{Key: "f", Default: &evaluate.Serve{Variant: true}}))
	c := remoteAt(t, srv, WithRetry(RetrySettings{MaxAttempts: -1}))
	user := func(id string) context.Context { return WithAttributes(context.Background(), Attributes{"userId": id}) }

	if v, d := c.BoolDetail(user("u1"), "f", false); !v || d.Source != SourceRemote {
		t.Fatalf("before the outage: %v %+v", v, d)
	}
	if st := c.Status(); st.State != StateReady || st.LastError != "" || !st.ErrorSince.IsZero() {
		t.Fatalf("before the outage: %+v", st)
	}

	remove := srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Reset: true})
	before := time.Now()
	if _, d := c.BoolDetail(user("u2"), "f", false); d.ErrorCode != CodeUnavailable {
		t.Fatalf("during the outage: %+v, want UNAVAILABLE", d)
	}
	first := c.Status()
	if first.State != StateReady || first.LastError == "" || first.ErrorSince.Before(before) || first.ErrorSince.After(time.Now()) {
		t.Fatalf("during the outage: state %s, LastError %q, ErrorSince %v; want ready, the failure, and when it began", first.State, first.LastError, first.ErrorSince)
	}
	if v, d := c.BoolDetail(user("u1"), "f", false); !v || d.Source != SourceCache {
		t.Errorf("the cached decision during the outage: %v %+v", v, d)
	}
	c.BoolDetail(user("u3"), "f", false) // a second failure: the run began at the first
	if st := c.Status(); !st.ErrorSince.Equal(first.ErrorSince) || st.LastError == "" {
		t.Errorf("after a second failure: ErrorSince %v, LastError %q; want %v and the failure", st.ErrorSince, st.LastError, first.ErrorSince)
	}

	remove()
	if v, d := c.BoolDetail(user("u4"), "f", false); !v || d.Source != SourceRemote {
		t.Fatalf("after the outage: %v %+v", v, d)
	}
	if st := c.Status(); st.State != StateReady || st.LastError != "" || !st.ErrorSince.IsZero() {
		t.Errorf("after the API answered again: state %s, LastError %q, ErrorSince %v; want ready, no error", st.State, st.LastError, st.ErrorSince)
	}
}
