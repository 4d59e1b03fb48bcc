package flagwire

import (
	"context"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// snapshotState is a compiled config and where it came from. Swapped
// atomically; never modified.
type snapshotState struct {
	snap       *evaluate.Snapshot
	source     Source // SourceLocal (synced) or SourceBootstrap
	etag       string
	epoch      string // the server's store epoch (wire.HeaderConfigEpoch), "" if unknown
	receivedAt time.Time
}

// evalTo evaluates key for ec against a snapshot into *r (written whole),
// without allocating.
func (c *Client) evalTo(r *evaluate.Result, st *snapshotState, key string, ec *evalContext) {
	if ec.subject != nil && len(c.cfg.hashed) == 0 {
		// A WithSubject subject is read as it is, without a map.
		st.snap.EvaluateAttrsTo(r, key, ec.subject, c.hotWall())
	} else {
		st.snap.EvaluateTo(r, key, c.evalAttributes(ec), c.hotWall())
	}
}

// evalState evaluates key against a snapshot without allocating.
func (c *Client) evalState(st *snapshotState, key string, ec *evalContext, det *Detail) (value, bool) {
	var r evaluate.Result
	c.evalTo(&r, st, key, ec)
	if r.Reason.Kind == evaluate.ReasonError {
		det.ErrorCode = ErrorCode(r.Reason.ErrorCode)
		return value{}, false
	}
	det.Variant = r.Variant
	det.Reason = Reason{Kind: r.Reason.Kind, RuleID: r.Reason.RuleID, Segment: r.Reason.Segment, Prerequisite: r.Reason.Prerequisite, Bucket: -1}
	if r.HasBucketing {
		det.Reason.Bucket = int(r.Bucketing.Bucket)
	}
	det.Source = st.source
	if r.Reason.ErrorCode == evaluate.ErrorMissingBucketAttr {
		det.ErrorCode = CodeMissingBucketingAttribute // the flag's own answer
	}
	det.Payload = r.PayloadJSON
	det.FlagVersion = r.FlagVersion
	det.FlagMetadata = r.FlagMetadata // the snapshot's, read-only
	v := r.Value
	switch v.(type) {
	case bool, string, float64:
	default:
		v = nil
	}
	return value{value: v, raw: r.ValueJSON, ok: true, jsonFlag: r.Type == evaluate.TypeJSON}, true
}

// lookupLocal serves local and offline modes from the current snapshot.
func (c *Client) lookupLocal(ctx context.Context, key string, ec *evalContext, det *Detail) value {
	st := c.snap.Load()
	if st == nil {
		det.ErrorCode = CodeNotReady
		c.fallbackDefault(ctx, key, det)
		return value{}
	}
	v, ok := c.evalState(st, key, ec, det)
	if !ok {
		c.stats.countError(det.ErrorCode)
		c.fallbackDefault(ctx, key, det)
		return value{}
	}
	return v
}

// evalSnapshot is the remote mode's fallback to the bootstrap or
// last-known config.
func (c *Client) evalSnapshot(key string, ec *evalContext, det *Detail) (value, bool) {
	st := c.snap.Load()
	if st == nil {
		return value{}, false
	}
	return c.evalState(st, key, ec, det)
}
