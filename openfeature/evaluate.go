package flagwireof

import (
	"context"
	"maps"
	"math"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/internal/wire"
)

// BooleanEvaluation evaluates a boolean flag (flagwire.Client.BoolDetail).
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, defaultValue bool, flatCtx of.FlattenedContext) of.BoolResolutionDetail {
	v, r := typed(p, ctx, flatCtx, flag, defaultValue, (*flagwire.Client).BoolDetail)
	return of.BoolResolutionDetail{Value: v, ProviderResolutionDetail: r}
}

// StringEvaluation evaluates a string flag (flagwire.Client.StringDetail).
func (p *Provider) StringEvaluation(ctx context.Context, flag string, defaultValue string, flatCtx of.FlattenedContext) of.StringResolutionDetail {
	v, r := typed(p, ctx, flatCtx, flag, defaultValue, (*flagwire.Client).StringDetail)
	return of.StringResolutionDetail{Value: v, ProviderResolutionDetail: r}
}

// FloatEvaluation evaluates a number flag (flagwire.Client.FloatDetail).
func (p *Provider) FloatEvaluation(ctx context.Context, flag string, defaultValue float64, flatCtx of.FlattenedContext) of.FloatResolutionDetail {
	v, r := typed(p, ctx, flatCtx, flag, defaultValue, (*flagwire.Client).FloatDetail)
	return of.FloatResolutionDetail{Value: v, ProviderResolutionDetail: r}
}

// IntEvaluation evaluates a number flag as an integer
// (flagwire.Client.IntDetail: a value that is not a whole number is a
// TYPE_MISMATCH).
func (p *Provider) IntEvaluation(ctx context.Context, flag string, defaultValue int64, flatCtx of.FlattenedContext) of.IntResolutionDetail {
	v, r := typed(p, ctx, flatCtx, flag, defaultValue, (*flagwire.Client).IntDetail)
	return of.IntResolutionDetail{Value: v, ProviderResolutionDetail: r}
}

// typed evaluates flag with one of the client's typed Detail methods: the
// value (the default when the flag is disabled) and its resolution.
func typed[T any](p *Provider, ctx context.Context, flatCtx of.FlattenedContext, flag string, def T,
	detail func(*flagwire.Client, context.Context, string, T) (T, flagwire.Detail)) (T, of.ProviderResolutionDetail) {
	v, d := detail(p.client, p.context(ctx, flatCtx), flag, def)
	if disabled(d) {
		v = def
	}
	return v, resolution(d)
}

// ObjectEvaluation evaluates a JSON flag (flagwire.Client.JSON): the value
// decoded as map[string]any or []any; for a flag of another type, the
// served variant's payload. A value that is not an object or a list (a
// boolean, string or number flag without a payload, or a JSON flag whose
// value is a scalar) is a TYPE_MISMATCH, as OpenFeature's object flags are
// structures. The default, sent to the flag service as the default value,
// must have the flag's type.
func (p *Provider) ObjectEvaluation(ctx context.Context, flag string, defaultValue any, flatCtx of.FlattenedContext) of.InterfaceResolutionDetail {
	v := defaultValue
	d := p.client.JSON(p.context(ctx, flatCtx), flag, &v)
	if (d.ErrorCode != "" && d.Source == flagwire.SourceCallerDefault) || disabled(d) {
		v = defaultValue
	}
	r := resolution(d)
	if r.ResolutionError == (of.ResolutionError{}) && !disabled(d) && !structure(v) {
		// A boolean, string or number flag without a JSON payload.
		r.ResolutionError = of.NewTypeMismatchResolutionError("flagwire: the flag's value is not an object or a list")
		r.Reason, r.Variant = of.ErrorReason, ""
		v = defaultValue
	}
	return of.InterfaceResolutionDetail{Value: v, ProviderResolutionDetail: r}
}

// structure reports whether v is an object or a list, the values of an
// OpenFeature object flag.
func structure(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// context attaches the evaluation context to ctx as Flagwire attributes,
// over those ctx already carries.
func (p *Provider) context(ctx context.Context, flat of.FlattenedContext) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	if len(flat) == 0 {
		return ctx
	}
	prev := flagwire.AttributesFrom(ctx)
	attrs := make(flagwire.Attributes, len(prev)+len(flat))
	maps.Copy(attrs, prev)
	for k, v := range flat {
		if k == of.TargetingKey && p.targetingKey != "" {
			continue
		}
		if t, ok := v.(time.Time); ok {
			v = t.Format(time.RFC3339Nano)
		}
		attrs[k] = v
	}
	if tk, ok := flat[of.TargetingKey]; ok && p.targetingKey != "" {
		if _, explicit := flat[p.targetingKey]; !explicit {
			attrs[p.targetingKey] = tk
		}
	}
	return flagwire.WithAttributes(ctx, attrs)
}

// missingBucketingAttribute is Flagwire's error code for a rollout that
// could not bucket the subject (flagwire.CodeMissingBucketingAttribute;
// matched by value so that the provider builds with SDKs before the name).
const missingBucketingAttribute flagwire.ErrorCode = "MISSING_BUCKETING_ATTRIBUTE"

// disabled reports whether d served a flag that is off (Flagwire reason
// OFF), from whatever data (fresh, cached, stale, bootstrap): OpenFeature
// then wants the caller's default, not the flag's off variant.
func disabled(d flagwire.Detail) bool {
	return d.Reason.Kind == "OFF" && d.Source != flagwire.SourceCallerDefault
}

// resolution maps a Flagwire Detail to OpenFeature's resolution details.
func resolution(d flagwire.Detail) of.ProviderResolutionDetail {
	r := of.ProviderResolutionDetail{Variant: d.Variant, Reason: Reason(d), FlagMetadata: metadata(d)}
	switch {
	case d.ErrorCode != "" && d.Source == flagwire.SourceCallerDefault,
		d.ErrorCode == missingBucketingAttribute:
		// The SDK returns the caller's default with reason ERROR.
		r.ResolutionError = resolutionError(d.ErrorCode)
		r.Reason = of.ErrorReason
		r.Variant = ""
	case disabled(d):
		r.Variant = ""
	}
	return r
}

// Reason returns the OpenFeature reason of a Flagwire evaluation (see the
// package documentation for the mapping).
func Reason(d flagwire.Detail) of.Reason {
	switch {
	case d.Source == flagwire.SourceCallerDefault && d.ErrorCode != "":
		return of.ErrorReason
	case d.Source == flagwire.SourceCallerDefault:
		return of.DefaultReason
	case d.Source == flagwire.SourceStale,
		d.Source == flagwire.SourceBootstrap && d.ErrorCode != "" && d.ErrorCode != missingBucketingAttribute:
		return StaleReason
	case d.Reason.Kind == "OFF":
		return of.DisabledReason
	case d.Source == flagwire.SourceCache:
		return of.CachedReason
	}
	return of.Reason(wire.OFREPReason(string(d.Reason.Kind))) // the mapping flagserver's OFREP answers use
}

// resolutionError maps a Flagwire error code to an OpenFeature one.
func resolutionError(code flagwire.ErrorCode) of.ResolutionError {
	switch code {
	case flagwire.CodeFlagNotFound:
		return of.NewFlagNotFoundResolutionError("flag not found")
	case flagwire.CodeTypeMismatch:
		return of.NewTypeMismatchResolutionError("the flag's value does not have the requested type")
	case flagwire.CodeNotReady:
		return of.NewProviderNotReadyResolutionError("flagwire: no configuration received yet")
	case flagwire.CodeBadResponse:
		return of.NewParseErrorResolutionError("flagwire: BAD_RESPONSE: the flag service's answer could not be used")
	case "MISSING_BUCKETING_ATTRIBUTE", "TARGETING_KEY_MISSING":
		return of.NewTargetingKeyMissingResolutionError("flagwire: " + string(code) + ": the context lacks the bucketing attribute")
	case "INVALID_CONTEXT":
		return of.NewInvalidContextResolutionError("flagwire: INVALID_CONTEXT")
	case "PARSE_ERROR":
		return of.NewParseErrorResolutionError("flagwire: PARSE_ERROR")
	}
	return of.NewGeneralResolutionError("flagwire: " + string(code))
}

// metadata returns the flag metadata of an evaluation: the flag's own,
// then Flagwire's. It is a new map: the caller may change it.
func metadata(d flagwire.Detail) of.FlagMetadata {
	md := make(of.FlagMetadata, len(d.FlagMetadata)+4)
	for k, v := range d.FlagMetadata {
		md[k] = metadataValue(v)
	}
	md["source"] = string(d.Source)
	if d.Reason.Kind != "" {
		md["reasonKind"] = string(d.Reason.Kind)
	}
	if d.Reason.RuleID != "" {
		md["ruleId"] = d.Reason.RuleID
	}
	if d.Reason.Segment != "" {
		md["segment"] = d.Reason.Segment
	}
	if d.Reason.Bucket >= 0 {
		md["bucket"] = int64(d.Reason.Bucket)
	}
	if d.FlagVersion != 0 {
		md["flagVersion"] = d.FlagVersion
	}
	if d.ErrorCode != "" && d.Source != flagwire.SourceCallerDefault {
		md["errorCode"] = string(d.ErrorCode)
	}
	return md
}

// maxExactInt is 2^53: every integer up to it in magnitude is exact in a
// float64.
const maxExactInt = 1 << 53

// metadataValue gives a flag metadata value the Go type OpenFeature's
// FlagMetadata getters expect: a whole number within ±2^53 becomes an
// int64 (GetInt), any other number stays a float64 (GetFloat); strings and
// booleans are kept.
func metadataValue(v any) any {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) <= maxExactInt {
		return int64(f)
	}
	return v
}
