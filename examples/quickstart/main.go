// Command quickstart is Flagwire in one command: it starts the reference
// Flag API server in-process on loopback with two example flags,
// evaluates them through a real client, ramps a rollout from 10% to 25%
// with PATCH + If-Match and shows the change arriving over SSE, then stops
// the server and shows the circuit breaker and the safe fallbacks.
//
//	go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/flagtest"
)

//go:embed flags/*.yaml
var exampleFlags embed.FS

type subject struct {
	name  string
	attrs flagwire.Attributes
}

var subjects = []subject{
	{"8a7f4c91 (pro, US)", flagwire.Attributes{"userId": "8a7f4c91", "accountId": "acme-co-1337", "plan": "pro", "region": "US", "country": "US"}},
	{"3f9b2e10 (beta tester)", flagwire.Attributes{"userId": "3f9b2e10", "plan": "free", "region": "EU", "country": "FR", "accountId": "bistro-7"}},
	{"6e5d4c3b (free, EU)", flagwire.Attributes{"userId": "6e5d4c3b", "plan": "free", "region": "EU", "country": "DE", "accountId": "acme-co-1337"}},
	{"1c2d3e4f (free, EU)", flagwire.Attributes{"userId": "1c2d3e4f", "plan": "free", "region": "EU", "country": "ES", "accountId": "tapas-42"}},
	{"4b1d9a22 (free, APAC)", flagwire.Attributes{"userId": "4b1d9a22", "plan": "free", "region": "APAC", "country": "JP", "accountId": "sushi-9"}},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()

	// 1. The reference server, in-process, on 127.0.0.1.
	srv, err := flagtest.Start(flagtest.WithYAMLDir(exampleFlags, "flags"))
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("Flag API (reference server) listening on %s\n\n", srv.URL)

	// 2. A real client: remote mode, decision cache, SSE invalidations.
	client, err := flagwire.New(ctx,
		flagwire.WithEndpoint(srv.URL),
		flagwire.WithToken(srv.Token()),
		flagwire.WithEnvironment("prod"),
		flagwire.WithTimeout(200*time.Millisecond),
		flagwire.WithBreaker(flagwire.BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: 30 * time.Second}),
		flagwire.WithRetry(flagwire.RetrySettings{MaxAttempts: 2, Base: 10 * time.Millisecond}),
		flagwire.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		return err
	}
	defer client.Close(context.Background())

	fmt.Println("== Decisions (first call asks POST /v1/evaluate; repeats are cache hits)")
	table(ctx, client)
	if err := waitFor(5*time.Second, func() bool { return client.Status().StreamConnected }); err != nil {
		return fmt.Errorf("SSE stream: %w", err)
	}

	// 3. Ramp the rollout 10% → 25%: GET the etag, PATCH with If-Match and
	// an Idempotency-Key: a rollout step added safely.
	fmt.Println("\n== Ramping checkout-new-flow's default rollout 10% → 25% (PATCH with If-Match)")
	changed := make(chan time.Time, 1)
	stop := client.OnFlagChange("checkout-new-flow", func(flagwire.FlagChange) {
		select {
		case changed <- time.Now():
		default:
		}
	})
	start := time.Now()
	status, err := patchRollout(srv, 25)
	if err != nil {
		return err
	}
	fmt.Printf("PATCH /v1/flags/checkout-new-flow → %s\n", status)
	select {
	case at := <-changed:
		fmt.Printf("SSE invalidate event received %v after the PATCH was sent; cached decisions for the flag dropped\n\n", at.Sub(start).Round(time.Microsecond))
	case <-time.After(5 * time.Second):
		return fmt.Errorf("no SSE invalidation within 5s")
	}
	stop()
	table(ctx, client)

	// 4. Outage: the server goes away. Cached decisions keep serving; new
	// questions fall back to the caller's default, and after 3 failures the
	// breaker opens: no more network calls, instant defaults.
	fmt.Println("\n== Server outage (listener closed)")
	srv.Down()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tSUBJECT\tVALUE\tSOURCE\tERROR\tBREAKER\tTOOK")
	for i := 0; i < 5; i++ {
		attrs := flagwire.Attributes{"userId": fmt.Sprintf("new-user-%d", i), "plan": "pro", "region": "US"}
		t0 := time.Now()
		v, d := client.BoolDetail(flagwire.WithAttributes(ctx, attrs), "checkout-new-flow", false)
		fmt.Fprintf(tw, "%d\tnew-user-%d\t%v\t%s\t%s\t%s\t%v\n", i+1, i, v, d.Source, d.ErrorCode, client.Stats().Breaker, time.Since(t0).Round(time.Microsecond))
	}
	v, d := client.BoolDetail(flagwire.WithAttributes(ctx, subjects[0].attrs), "checkout-new-flow", false)
	fmt.Fprintf(tw, "6\t%s\t%v\t%s\t%s\t%s\t(cached)\n", subjects[0].name, v, d.Source, d.ErrorCode, client.Stats().Breaker)
	tw.Flush()

	// 5. What the client saw.
	st := client.Stats()
	fmt.Println("\n== Client stats")
	fmt.Printf("evaluations %d · cache hits %d · misses %d · hit ratio %.0f%% · defaults served %d\n",
		st.Evaluations, st.CacheHits, st.CacheMisses, st.HitRatio*100, st.DefaultsServed)
	fmt.Printf("remote requests %d · remote latency p50 %v p99 %v · breaker %s (%d transitions)\n",
		st.RemoteRequests, st.RemoteLatencyP50, st.RemoteLatencyP99, st.Breaker, st.BreakerTransitions)
	fmt.Printf("errors by code: %v\n", st.Errors)
	if st.Breaker != flagwire.BreakerOpen {
		return fmt.Errorf("expected the breaker to be open after the outage, got %s", st.Breaker)
	}
	fmt.Println("\nDone: decisions with reasons, a rollout change over SSE, and safe fallbacks during an outage.")
	return nil
}

func table(ctx context.Context, client *flagwire.Client) {
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tFLAG\tVALUE\tVARIANT\tREASON\tSOURCE")
	for _, s := range subjects {
		sctx := flagwire.WithAttributes(ctx, s.attrs)
		v, d := client.BoolDetail(sctx, "checkout-new-flow", false)
		fmt.Fprintf(tw, "%s\tcheckout-new-flow\t%v\t%s\t%s\t%s\n", s.name, v, d.Variant, reason(d), d.Source)
	}
	for _, s := range subjects[:3] {
		sctx := flagwire.WithAttributes(ctx, s.attrs)
		p, d := client.StringDetail(sctx, "pricing-experiment", "control")
		price := ""
		if len(d.Payload) > 0 {
			var pl struct {
				Price    float64 `json:"price"`
				Currency string  `json:"currency"`
			}
			if json.Unmarshal(d.Payload, &pl) == nil {
				price = fmt.Sprintf(" (%.2f %s)", pl.Price, pl.Currency)
			}
		}
		fmt.Fprintf(tw, "%s\tpricing-experiment\t%s%s\t%s\t%s\t%s\n", s.name, p, price, d.Variant, reason(d), d.Source)
	}
	tw.Flush()
}

func reason(d flagwire.Detail) string {
	parts := []string{string(d.Reason.Kind)}
	if d.Reason.RuleID != "" {
		parts = append(parts, "rule="+d.Reason.RuleID)
	}
	if d.Reason.Segment != "" {
		parts = append(parts, "segment="+d.Reason.Segment)
	}
	if d.Reason.Bucket >= 0 {
		parts = append(parts, fmt.Sprintf("bucket=%d", d.Reason.Bucket))
	}
	if d.ErrorCode != "" {
		parts = append(parts, "error="+string(d.ErrorCode))
	}
	return strings.Join(parts, " ")
}

// patchRollout adds a rollout step safely over plain
// HTTP: GET the flag's etag, then PATCH with If-Match, an Idempotency-Key
// and a change reason.
func patchRollout(srv *flagtest.Server, percent int) (string, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/flags/checkout-new-flow?environment=prod", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	var doc struct {
		ETag string `json:"etag"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.ETag == "" {
		return "", fmt.Errorf("GET flag: no etag (%v)", err)
	}
	body := fmt.Sprintf(`{"changeReason": "Expanding canary after stable metrics", "default": {"percentage": %d}}`, percent)
	req, _ = http.NewRequest(http.MethodPatch, srv.URL+"/v1/flags/checkout-new-flow?environment=prod", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", doc.ETag)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("roll-to-%d", percent))
	resp, err = hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("PATCH: %s: %s", resp.Status, b)
	}
	return resp.Status, nil
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
