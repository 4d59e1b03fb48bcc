package wire

import (
	"encoding/json"
	"time"
)

// Change request statuses (ChangeRequest.Status).
const (
	// ChangePending: waiting for a decision.
	ChangePending = "pending"
	// ChangeApplied: approved and applied (AppliedVersion says at which
	// config version).
	ChangeApplied = "applied"
	// ChangeRejected: rejected; nothing was applied.
	ChangeRejected = "rejected"
	// ChangeStale: an approval found the entity changed since the request
	// (its ETag is no longer BaseETag); nothing was applied and the change
	// must be proposed again.
	ChangeStale = "stale"
)

// ChangeRequest is a write to a protected environment waiting for (or
// given) a second principal's decision: the body of a 202 answer to a
// write, of GET /v1/changes/{id} and of the approve and reject endpoints.
type ChangeRequest struct {
	ID          string       `json:"id"`
	Status      string       `json:"status"`
	Environment string       `json:"environment"`
	Entity      ChangeEntity `json:"entity"`
	// Action is "create", "update" or "delete".
	Action       string `json:"action"`
	RequestedBy  string `json:"requestedBy"`
	ChangeReason string `json:"changeReason,omitempty"`
	// Diff is the entity before (absent for a create) and after (absent
	// for a delete) the change, as it will be stored.
	Diff ChangeDiff `json:"diff"`
	// BaseETag is the entity's ETag the change was computed from (the
	// request's If-Match); "" for a create. Approval applies the change
	// only while the entity still has it.
	BaseETag  string    `json:"baseETag,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// DecidedBy, DecisionReason and DecidedAt are set once the change is
	// applied, rejected or found stale.
	DecidedBy      string     `json:"decidedBy,omitempty"`
	DecisionReason string     `json:"decisionReason,omitempty"`
	DecidedAt      *time.Time `json:"decidedAt,omitempty"`
	// AppliedVersion is the environment's version the change made.
	AppliedVersion int64 `json:"appliedVersion,omitempty"`
	// CurrentETag is, for a stale change, the entity's ETag when the
	// approval was tried ("" when the entity no longer exists).
	CurrentETag string `json:"currentETag,omitempty"`
}

// ChangeEntity names the entity a change request writes.
type ChangeEntity struct {
	Kind string `json:"kind"` // "flag" or "segment"
	Key  string `json:"key"`
}

// ChangeDiff is a change request's entity before and after.
type ChangeDiff struct {
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// ChangeList is the body of GET /v1/changes: change requests newest
// first. NextCursor, when set, is the cursor of the next (older) page.
type ChangeList struct {
	Changes    []ChangeRequest `json:"changes"`
	NextCursor string          `json:"nextCursor,omitempty"`
}

// ChangeDecisionBody is the body of POST /v1/changes/{id}/approve and
// /reject.
type ChangeDecisionBody struct {
	ChangeReason string `json:"changeReason,omitempty"`
}
