// Package flagwireof is the OpenFeature provider for Flagwire: it lets
// code written against the OpenFeature Go SDK
// (github.com/open-feature/go-sdk, v1.20) evaluate Flagwire flags, with
// Flagwire's decision cache, fallbacks, circuit breaker and local mode
// underneath.
//
//	client, err := flagwire.New(ctx, flagwire.WithEndpoint(url), flagwire.WithToken(token))
//	if err != nil { … }
//	err = openfeature.SetProviderWithContextAndWait(ctx, flagwireof.NewProvider(client))
//	ofc := openfeature.NewDefaultClient()
//	on, _ := ofc.BooleanValue(ctx, "checkout-new-flow", false,
//		openfeature.NewEvaluationContext("8a7f4c91", map[string]any{"plan": "pro"}))
//
// The provider owns the Flagwire client: its Shutdown (called by
// openfeature.Shutdown, or when the provider is replaced) closes it.
//
// The package is a Go module of its own (go get
// github.com/flagwire/flagwire/openfeature), so that programs using the
// SDK without OpenFeature have no OpenFeature in their module graph.
//
// # Mapping
//
// The evaluation context becomes flagwire.Attributes: its targeting key is
// the userId attribute (WithTargetingKey changes the name), unless the
// context also has a userId attribute; other attributes are copied, and a
// time.Time becomes an RFC 3339 string. Attributes already in ctx (see
// flagwire.WithAttributes and flagwire.Middleware) are kept under the
// context's.
//
// Reasons: a disabled flag (Flagwire reason OFF) is DISABLED; otherwise a
// value served from the decision cache is CACHED; a stale cached value, or
// the bootstrap / last-known config served because the flag service
// failed, is STALE; otherwise Flagwire's reason kind decides: STATIC →
// STATIC; TARGET_MATCH, RULE_MATCH, SEGMENT_MATCH and PREREQUISITE_FAILED
// → TARGETING_MATCH; ROLLOUT → SPLIT; DEFAULT → DEFAULT. A default served
// because of an error is ERROR with an error code: FLAG_NOT_FOUND and
// TYPE_MISMATCH as they are, NOT_READY → PROVIDER_NOT_READY, BAD_RESPONSE
// → PARSE_ERROR, MISSING_BUCKETING_ATTRIBUTE → TARGETING_KEY_MISSING, and
// the transport codes (TIMEOUT, UNAVAILABLE, CIRCUIT_OPEN, RATE_LIMITED,
// UNAUTHORIZED, CLIENT_CLOSED, …) → GENERAL with the Flagwire code in the
// message.
//
// # Where OpenFeature and the native API differ
//
// Two outcomes read differently through the provider than through
// flagwire.Client, because OpenFeature defines them so (its specification,
// and the gherkin suites in testdata/gherkin that this package passes):
//
//   - A disabled flag: the native API serves the flag's off variant with
//     reason OFF (a kill switch turns a feature to a value you chose when
//     you configured the flag). OpenFeature's DISABLED means "the flag is
//     off, use your default": the provider returns the caller's default,
//     no variant, reason DISABLED (flag metadata keeps reasonKind OFF).
//     A prerequisite that fails still serves the off variant: the flag is
//     on and decided for this subject (TARGETING_MATCH, reasonKind
//     PREREQUISITE_FAILED).
//   - A rollout that cannot bucket the subject, because the context lacks
//     the bucketing attribute: the native API serves the off variant with
//     reason DEFAULT and error code MISSING_BUCKETING_ATTRIBUTE, so a
//     hot path keeps a configured value; OpenFeature treats a missing
//     targeting key as an error, so the provider reports
//     TARGETING_KEY_MISSING and the SDK returns the caller's default with
//     reason ERROR.
//
// Flag metadata: the flag's own flagMetadata (flagwire.Detail's
// FlagMetadata: strings and booleans as they are, a whole number within
// ±2^53 as int64 for FlagMetadata.GetInt, any other number as float64 for
// GetFloat: JSON does not tell 2 from 2.0, so a float metadata value
// written 2.0 reads as the int64 2), then Flagwire's own: source (CACHE,
// REMOTE, LOCAL, …), reasonKind (Flagwire's reason), ruleId, segment,
// bucket (int64), flagVersion (int64) and, for a value served despite an
// error (STALE), errorCode; each only when known. Flagwire's keys cannot
// clash with the flag's: the engine rejects them as flagMetadata keys
// (evaluate.IsReservedFlagMetadataKey).
//
// # Status and events
//
// Init waits for flagwire.Client.WaitReady (bounded by its ctx; Init
// without one waits up to WithInitTimeout). Afterwards the provider emits
// PROVIDER_CONFIGURATION_CHANGED with the changed flag keys whenever the
// client's change listeners report a change (local mode: a new config is
// live; remote mode: the server's invalidation arrived), and
// PROVIDER_STALE, PROVIDER_ERROR and PROVIDER_READY as the client's
// Status().State becomes stale, error or valid again (from the client's
// status listener, and by looking at Status every WithStatusInterval).
//
// OpenFeature hooks work as the SDK runs them; WithHooks adds provider
// hooks. Flagwire hooks on the client (flagwire.WithHooks) run too.
package flagwireof

import (
	"context"
	"errors"
	"sync"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagwire/flagwire"
)

// Name is the provider's name in its metadata and events.
const Name = "flagwire"

// StaleReason is the OpenFeature reason of a value served from stale data:
// an expired cached decision or the bootstrap / last-known config, served
// because the flag service could not answer.
const StaleReason of.Reason = "STALE"

// Defaults.
const (
	// DefaultTargetingKey is the attribute that receives the targeting key.
	DefaultTargetingKey = "userId"
	// DefaultInitTimeout bounds Init (the form without a context).
	DefaultInitTimeout = 5 * time.Second
	// DefaultStatusInterval is how often the provider looks at the
	// client's status.
	DefaultStatusInterval = 5 * time.Second
	// maxQueuedEvents bounds the events not yet taken by the SDK; beyond
	// it the oldest are dropped.
	maxQueuedEvents = 1024
)

// Option configures a Provider.
type Option func(*Provider)

// WithTargetingKey names the attribute that receives the evaluation
// context's targeting key. Default "userId" (Flagwire's default bucketing
// attribute). "" keeps it as the attribute "targetingKey".
func WithTargetingKey(attr string) Option {
	return func(p *Provider) { p.targetingKey = attr }
}

// WithHooks sets the provider's OpenFeature hooks (Provider.Hooks), run by
// the SDK after the API's, client's and invocation's.
func WithHooks(hooks ...of.Hook) Option {
	return func(p *Provider) { p.hooks = append(p.hooks, hooks...) }
}

// WithInitTimeout bounds Init, the form without a context (InitWithContext
// uses its ctx). Zero or negative means DefaultInitTimeout (5 s).
func WithInitTimeout(d time.Duration) Option {
	return func(p *Provider) {
		if d > 0 {
			p.initTimeout = d
		}
	}
}

// WithStatusInterval sets how often the provider looks at the client's
// Status to emit STALE, ERROR and READY events that the client's status
// listener does not report (in remote mode, the circuit breaker opening
// and closing). Zero means DefaultStatusInterval (5 s); negative turns the
// look off.
func WithStatusInterval(d time.Duration) Option {
	return func(p *Provider) {
		if d != 0 {
			p.statusEvery = d
		}
	}
}

// Provider is the OpenFeature provider. Create it with NewProvider and
// register it with the OpenFeature API; it is safe for concurrent use.
type Provider struct {
	client       *flagwire.Client
	targetingKey string
	hooks        []of.Hook
	initTimeout  time.Duration
	statusEvery  time.Duration

	events chan of.Event
	wake   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	state    of.State // what the SDK was last told
	queue    []of.Event
	started  bool
	shutdown bool
	cancels  []func()
	wg       sync.WaitGroup

	// onReady reasserts the provider's state after the SDK's own
	// PROVIDER_READY (see reassert); registered with the global API.
	onReady func(of.EventDetails)
}

// Interfaces the SDK detects.
var (
	_ of.FeatureProvider          = (*Provider)(nil)
	_ of.ContextAwareStateHandler = (*Provider)(nil)
	_ of.EventHandler             = (*Provider)(nil)
)

// NewProvider returns a provider evaluating with client, which it owns
// from now on: Shutdown closes it. With a nil client, Init fails with
// PROVIDER_FATAL and evaluations return the default.
func NewProvider(client *flagwire.Client, opts ...Option) *Provider {
	p := &Provider{
		client:       client,
		targetingKey: DefaultTargetingKey,
		initTimeout:  DefaultInitTimeout,
		statusEvery:  DefaultStatusInterval,
		events:       make(chan of.Event),
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		state:        of.NotReadyState,
	}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	return p
}

// Client returns the Flagwire client the provider evaluates with.
func (p *Provider) Client() *flagwire.Client { return p.client }

// Metadata returns the provider's metadata: its Name, "flagwire".
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks returns the provider hooks set with WithHooks.
func (p *Provider) Hooks() []of.Hook { return p.hooks }

// EventChannel returns the channel of the provider's events. The SDK reads
// it; nothing is sent on it before Init.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init is InitWithContext bounded by WithInitTimeout.
func (p *Provider) Init(evalCtx of.EvaluationContext) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.initTimeout)
	defer cancel()
	return p.InitWithContext(ctx, evalCtx)
}

// InitWithContext starts the provider's event sources and waits, up to
// ctx's end, until the client has its first configuration (see
// flagwire.Client.WaitReady; at once in remote mode). On timeout it fails
// (the SDK reports the provider in ERROR) but keeps watching: once the
// client is ready, a PROVIDER_READY event follows. A provider that was
// shut down fails with PROVIDER_FATAL.
func (p *Provider) InitWithContext(ctx context.Context, _ of.EvaluationContext) error {
	if !p.start() {
		return &of.ProviderInitError{ErrorCode: of.ProviderFatalCode, Message: "flagwire: the provider was shut down"}
	}
	err := p.client.WaitReady(ctx)
	p.mu.Lock()
	if err == nil {
		p.state = of.ReadyState
	} else {
		p.state = of.ErrorState
	}
	p.mu.Unlock()
	if err != nil {
		code := of.ProviderNotReadyCode
		if errors.Is(err, flagwire.ErrClosed) {
			code = of.ProviderFatalCode
		}
		return &of.ProviderInitError{ErrorCode: code, Message: err.Error()}
	}
	p.observe(p.client.Status())
	return nil
}

// start registers the client listeners and starts the event pump and the
// status watcher, once. It reports false after Shutdown.
func (p *Provider) start() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutdown {
		return false
	}
	if p.started {
		return true
	}
	p.started = true
	p.cancels = append(p.cancels,
		p.client.OnFlagChange("", func(ch flagwire.FlagChange) {
			p.enqueue(of.Event{
				ProviderName: Name,
				EventType:    of.ProviderConfigChange,
				ProviderEventDetails: of.ProviderEventDetails{
					Message:       "flag configuration changed",
					FlagChanges:   ch.Keys,
					EventMetadata: map[string]any{"version": ch.Version},
				},
			})
		}),
		p.client.OnStatusChange(p.observe),
	)
	p.onReady = func(d of.EventDetails) {
		if d.ProviderName == Name {
			p.reassert()
		}
	}
	of.AddHandler(of.ProviderReady, &p.onReady)
	p.cancels = append(p.cancels, func() { of.RemoveHandler(of.ProviderReady, &p.onReady) })
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pump()
	}()
	if p.statusEvery > 0 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.watch()
		}()
	}
	return true
}

// Shutdown is ShutdownWithContext with a 5-second bound.
func (p *Provider) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.ShutdownWithContext(ctx)
}

// ShutdownWithContext stops the provider's goroutines and closes the
// Flagwire client (see flagwire.Client.Close), waiting up to ctx's end.
// It is idempotent.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.mu.Lock()
	if p.shutdown {
		p.mu.Unlock()
		return nil
	}
	p.shutdown = true
	cancels := p.cancels
	p.cancels = nil
	p.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	close(p.done)
	p.wg.Wait()
	return p.client.Close(ctx)
}

// reassert runs after the SDK recorded a PROVIDER_READY of a Flagwire
// provider. The SDK records the outcome of Init (READY) on its own
// goroutine after Init returns, while events from the provider travel
// through another: a STALE or ERROR the provider sent as Init returned
// (config already stale, from a bootstrap or last-known file, say) could
// be recorded first and then overwritten by READY, leaving the SDK at
// READY while the provider had told it otherwise. Sending the provider's
// non-READY state again from here orders it after READY: the SDK stores
// a state before it runs its handlers. Another Flagwire provider's READY
// can repeat an event; it never changes the state.
func (p *Provider) reassert() {
	p.mu.Lock()
	state, shutdown := p.state, p.shutdown
	p.mu.Unlock()
	var typ of.EventType
	switch {
	case shutdown:
		return
	case state == of.StaleState:
		typ = of.ProviderStale
	case state == of.ErrorState:
		typ = of.ProviderError
	default:
		return
	}
	st := p.client.Status()
	ev := of.Event{ProviderName: Name, EventType: typ, ProviderEventDetails: of.ProviderEventDetails{Message: "flag data is " + string(st.State)}}
	if st.LastError != "" {
		ev.Message += ": " + st.LastError
	}
	if typ == of.ProviderError {
		ev.ErrorCode = of.GeneralCode
	}
	p.enqueue(ev)
}

// observe turns the client's status into STALE, ERROR or READY events,
// emitting only changes of what the SDK was last told. While Init is
// pending it does nothing: Init's outcome sets the state.
func (p *Provider) observe(st flagwire.Status) {
	var next of.State
	var typ of.EventType
	switch st.State {
	case flagwire.StateReady:
		next, typ = of.ReadyState, of.ProviderReady
	case flagwire.StateStale:
		next, typ = of.StaleState, of.ProviderStale
	case flagwire.StateError:
		next, typ = of.ErrorState, of.ProviderError
	default: // initializing, offline: nothing to tell
		return
	}
	p.mu.Lock()
	if p.state == of.NotReadyState || p.state == next || p.shutdown {
		p.mu.Unlock()
		return
	}
	p.state = next
	p.mu.Unlock()
	msg := "flag data is " + string(st.State)
	if st.LastError != "" && next != of.ReadyState {
		msg += ": " + st.LastError
	}
	ev := of.Event{ProviderName: Name, EventType: typ, ProviderEventDetails: of.ProviderEventDetails{Message: msg}}
	if typ == of.ProviderError {
		ev.ErrorCode = of.GeneralCode
	}
	p.enqueue(ev)
}

// enqueue queues an event for the pump without blocking: listeners run
// on the client's goroutines.
func (p *Provider) enqueue(ev of.Event) {
	p.mu.Lock()
	if p.shutdown {
		p.mu.Unlock()
		return
	}
	if len(p.queue) >= maxQueuedEvents {
		p.queue = append(p.queue[:0], p.queue[1:]...)
	}
	p.queue = append(p.queue, ev)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// pump hands queued events to the SDK in order until Shutdown.
func (p *Provider) pump() {
	for {
		p.mu.Lock()
		q := p.queue
		p.queue = nil
		p.mu.Unlock()
		for _, ev := range q {
			select {
			case p.events <- ev:
			case <-p.done:
				return
			}
		}
		select {
		case <-p.wake:
		case <-p.done:
			return
		}
	}
}

// watch looks at the client's status every statusEvery until Shutdown.
func (p *Provider) watch() {
	t := time.NewTicker(p.statusEvery)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.observe(p.client.Status())
		}
	}
}
