// Package flagwire is the Go client SDK for an API-first feature-flag
// service: hot-path flag decisions answered from an in-process decision
// cache, backed by the remote evaluate API, with circuit breaking,
// decorrelated-jitter retries and safe fallbacks.
//
//	client, err := flagwire.New(ctx,
//		flagwire.WithEndpoint("https://flags.example.com"),
//		flagwire.WithToken(os.Getenv("FLAG_TOKEN")),
//		flagwire.WithEnvironment("prod"),
//	)
//	if err != nil { … } // invalid configuration only: New never blocks on the network
//	defer client.Close(context.Background())
//
//	ctx = flagwire.WithAttributes(ctx, flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro"})
//	if client.Bool(ctx, "checkout-new-flow", false) { … }
//
// Per request, WithSubject states the subject without building a map:
//
//	ctx = flagwire.WithSubject(ctx, flagwire.StringAttr("userId", id), flagwire.StringAttr("plan", plan))
//
// Lifecycle: New → (optionally WaitReady) → Bool/String/… → Close.
//
// A Client is safe for concurrent use. Evaluation methods never panic, never
// block longer than the caller's context or the configured timeout (200 ms by
// default), and always return a value: a fresh decision, else a stale cached
// one, else the bootstrap or last-known config, else the caller's default.
// The …Detail forms say which (Detail.Source) and why (Detail.Reason,
// Detail.ErrorCode). A nil or closed Client returns the default.
//
// One word, one meaning, across the whole API:
//
//   - ready: the client has its first good configuration (WaitReady,
//     StateReady; before it, StateNotReady, ErrNotReady and, on an
//     evaluation, CodeNotReady).
//   - stale: past its freshness limit and still served: a decision past
//     its TTL (SourceStale, for up to CacheSettings.MaxStale), a local
//     config not confirmed within WithStaleAfter (StateStale).
//   - default: the flag's default rule is the reason kind DEFAULT
//     (evaluate.ReasonDefault); the value passed to Bool and friends is the
//     caller's default (SourceCallerDefault).
//   - Code… constants are the ErrorCode of a Detail (CodeTimeout, …);
//     Err… values are the errors New, WaitReady and Close return.
//   - …Attr functions build a subject's attributes (StringAttr, IntAttr,
//     …); the Client's Bool, String, Int, Float and JSON evaluate flags.
package flagwire
