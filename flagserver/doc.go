// Package flagserver is Flagwire's reference Flag API server: an
// http.Handler serving the /v1 API that the SDK speaks, used by the tests,
// the quick start, local development and `flagwire serve`.
//
//	srv, err := flagserver.New(flagserver.Options{Configs: cfgs, Tokens: tokens})
//	if err != nil { … }
//	defer srv.Close()
//	http.ListenAndServe("127.0.0.1:8080", srv)
//
// # Endpoints
//
// All bodies are JSON; every error is {"error":{"code","message","details"}}
// with a code from internal/wire (CodeXxx). Every response carries
// X-Request-Id (a valid incoming one is echoed, else one is generated).
//
//	GET    /v1/flags?environment=ENV        whole config; ETag, Cache-Control: max-age=60, If-None-Match → 304;
//	                                        X-Flagwire-Config-Epoch: the store's epoch (versions compare within one)
//	GET    /v1/flags/{key}                  the flag, with "etag" in the body and the ETag header
//	POST   /v1/flags                        create (409 if it exists) → 201
//	PATCH  /v1/flags/{key}                  If-Match required (428; stale → 412); top-level fields replace
//	DELETE /v1/flags/{key}                  If-Match required
//	GET    /v1/segments/{key}               the segment, with "etag"
//	POST   /v1/segments                     create; static lists up to MaxSegmentBodyBytes (16 MiB)
//	PATCH  /v1/segments/{key}               as flags
//	DELETE /v1/segments/{key}               as flags
//	POST   /v1/evaluate                     batch evaluation (at most MaxBatch requests); "configVersion": the version it was computed at
//	GET    /v1/stream                       Server-Sent Events: invalidate (with dependents) / reset, keep-alives, Last-Event-ID;
//	                                        X-Flagwire-Config-Version: the version the stream starts after
//	GET    /v1/audit?entity=flag:KEY        change records: who, action, before/after, changeReason, time, requestId;
//	                                        newest first by page (limit, ≤ 1 MiB), "nextBefore" → &before=ID for older ones
//	GET    /v1/bootstrap?ttl=720h           a signed wire.BootstrapEnvelope of the config
//	GET    /v1/keys                         the signing keys' ids and public keys: current first, then those a rotation replaced
//	POST   /ofrep/v1/evaluate/flags/{key}   OpenFeature Remote Evaluation Protocol, one flag
//	POST   /ofrep/v1/evaluate/flags         OFREP bulk evaluation (ETag / If-None-Match → 304)
//	GET    /healthz                         the process answers (200), with the store's state
//	GET    /readyz                          200 when the store answers now, else 503 naming the failure
//
// OFREP answers' metadata is the flag's own flagMetadata; a request with
// X-Flagwire-OFREP-Metadata: extended (OFREPMetadataHeader; the SDK's
// OFREP mode sends it) also gets Flagwire's detail there: reasonKind (when
// the OpenFeature reason does not map back to it), ruleId, segment,
// prerequisite, bucket, flagVersion, flagType, payload and errorCode. The
// environment of an OFREP request is X-Flagwire-Environment
// (OFREPEnvironmentHeader). See ofrep.go for the whole mapping.
//
// The environment is the "environment" query parameter (for POST
// /v1/evaluate, the body field). It is required by GET /v1/flags and
// defaults to "prod" (DefaultEnvironment) everywhere else, as in the
// seed's scripts that omit it. An unknown environment is a 404.
//
// Conditional requests follow RFC 9110: If-None-Match (GET /v1/flags,
// GET /v1/flags/{key}, GET /v1/segments/{key}, the OFREP bulk answer) uses
// the weak comparison, so the current ETag weakened by a compressing proxy
// (W/"…"), a list of tags or "*" gets 304; If-Match on writes uses the
// strong comparison, so a weak tag is stale (412).
//
// # Writes
//
// Every write — HTTP or programmatic (PutFlag, PutSegment, DeleteFlag) — is
// applied to a copy of the whole environment, compiled (400 compile_error
// with the findings on failure), size-checked, given the next environment
// version, committed (fsynced, with DataDir), audited and announced on the
// stream, in that order, under one lock: concurrent writers with the same
// If-Match ETag see exactly one succeed and the others get 412. Only the
// changed entity is encoded and compiled anew: the config document is
// assembled from each flag's and segment's cached JSON, and unchanged
// compiled segments are reused (evaluate.CompileReusing), so a large
// static segment costs its size once, when it is written, not on every
// write beside it. The document itself (and its ETag) is built by its
// first reader (GET /v1/flags, GET /v1/bootstrap), outside the write lock,
// and with DataDir each flag and segment is stored under its own key, so a
// commit writes only the changed entity. A PATCH of a flag next to a
// 1,000,000-id segment takes about 25 µs in memory and about 60 ms with
// DataDir (the fsync); with the GET that follows it, about 30–40 ms, mostly
// copying and hashing the 12 MB document (BenchmarkPatchFlagWithLargeSegment).
//
// Size: an environment's config may not exceed wire.MaxServedConfigBytes
// (64 MiB, wire.MaxConfigBytes, less 4 KiB for the signed envelope): the
// SDK refuses larger configs and bootstraps, so a write that would pass it
// is a 413 config_too_large whose message and details give the limit, the
// resulting size and the current size (a write that shrinks an oversized
// config is allowed). A segment write above Options.SegmentWarnIDs static
// ids (default 100,000) and any write leaving the config above 3/4 of the
// limit succeed with a warning: logged, and in the X-Flagwire-Warning
// response header (the seed's "segment bloat" advice). PATCH bodies replace the flag's top-level fields (a null
// resets one to its default); "changeReason" is a body field (DELETE: body
// or ?changeReason=), required in "prod" unless Options.RequireChangeReason
// says otherwise. An "etag" field in a body is ignored, so a GET document
// can be edited and sent back. A body is read by the SDK's own config
// decoder (evaluate.DecodeJSON), so nothing is stored that an SDK would
// read differently or refuse: names match exactly and may not repeat, at
// any depth; an unknown field is a 400 unknown_field naming the closest
// known one; a wrong type, a repeated name, a number beyond float64 or a
// payload nested deeper than a config may be (evaluate.MaxNestingDepth,
// counted from the config's root) is a 400 bad_request. Their details
// give the field's path ("rules[0].percentage"), line and col, and the
// findings. A PATCH or
// DELETE whose If-Match names an entity that has since been deleted (the
// losers of concurrent DELETEs) is a 412, not a 404: its precondition is
// stale (the last 10,000 deletions are remembered, in memory); an entity
// that never existed is a 404.
//
// Bodies are JSON in UTF-8: a Content-Type with a charset other than
// utf-8 (case-insensitive) is a 415, and a write whose strings are not
// valid UTF-8 (raw bytes or an escaped lone surrogate such as \ud800) is a
// 400 naming the field (details.field "rules.0.when", details.pointer
// "/rules/0/when") — never stored with U+FFFD in their place.
//
// A write with an Idempotency-Key that succeeded is remembered (per token,
// 24 h, in the store, committed with the write itself): repeating it —
// after a restart, or on another replica of a shared store — returns the
// stored status, body and ETag with Idempotent-Replayed: true and applies
// nothing; reusing the key for a different request is a 422.
//
// An audit entry keeps the entity's documents before and after the write,
// each whole up to 64 KiB and otherwise as {"omitted", "sha256", "bytes"}
// (a large segment's history stays small). Options.AuditRetention removes
// older entries. The tombstone of a deleted entity (its last ETag) is kept
// in the store too: a DELETE or PATCH with that ETag gets 412, also after
// a restart. GET /v1/audit filters by entity (flag:KEY, segment:KEY),
// environment, actor (an entry's subject, requester or approver) and time
// (since inclusive, until exclusive, RFC 3339), and pages with limit and
// cursor (nextCursor); a page holds at most 1,000 entries and about 1 MiB,
// read from the store page by page.
//
// # Approvals (the two-person rule)
//
// An environment named in Options.ProtectedEnvironments (flagwire serve
// --protect), or whose config sets requireApproval, is protected. A write
// to it (create, PATCH, DELETE of a flag or segment) is checked as if it
// were applied (If-Match, compile, size, change reason) and then stored as
// a change request instead: the answer is 202 Accepted with the request
// ({"id", "status": "pending", "environment", "entity": {"kind", "key"},
// "action", "requestedBy", "changeReason", "diff": {"before", "after"},
// "baseETag", "createdAt"}) and Location: /v1/changes/{id}; nothing is
// applied and nothing is streamed. Idempotency-Key replays the same 202.
//
// POST /v1/changes/{id}/approve ({"changeReason": "…"}, required where
// change reasons are) by a principal holding the flags:approve scope whose
// subject is not the requester's (403 otherwise; in open mode everyone is
// "anonymous", so nothing can be approved) applies the change: in the
// store's transaction of the write, the change request moves from pending
// to applied (a compare-and-set: of concurrent approvals on any replicas
// exactly one applies) and the entity is written only if its ETag is still
// baseETag (for a create: only if it still does not exist). Otherwise the
// answer is 409 change_stale (details.baseETag, details.currentETag),
// nothing is applied, the change request becomes "stale" and the change
// must be proposed again. Then, and only then, the change is streamed.
// POST /v1/changes/{id}/reject (flags:approve, or the requester
// withdrawing her own request) moves it to "rejected". Approving or
// rejecting a change request that is no longer pending is 409
// change_not_pending (details.status), an unknown id 404
// change_not_found; nothing is applied. GET /v1/changes?environment=&status=
// lists change requests newest first (limit, cursor), GET
// /v1/changes/{id} shows one. Change requests are kept in the store
// (ChangeStore): durable with DataDir and on PostgreSQL, shared by
// replicas; in memory at most 10,000 (the oldest decided are forgotten
// first).
//
// Kill switches stay fast: a PATCH that only turns off a flag whose
// metadata sets killSwitch (any principal with flags:write) is applied at
// once, and its audit entry has "emergency": true. Turning it back on
// needs approval. The audit entry of an approved change has subject and
// approvedBy (the approver), requestedBy, changeReason (the requester's),
// approvalReason and changeRequest; proposals, rejections and stale
// approvals are audited too (actions propose, reject, stale). Programmatic
// writes (Server.PutFlag and its siblings) are the operator's own and skip
// approval.
//
// # Stores and replicas
//
// The state lives in a Store: by default the embedded store (bbolt in
// DataDir, or memory only), or Options.Store, such as the PostgreSQL store
// of module github.com/flagwire/flagwire/pgstore. Versions are one counter
// for the whole store (an environment's versions have gaps when others are
// written in between); stream event ids are these versions. On a shared
// store several Servers are replicas: each write is checked against the
// environment's version inside the store's transaction (one winner per
// ETag, whichever replica it reached), each replica follows the others'
// writes through the store's changes feed and streams them, and before it
// answers a read a replica checks the store's version, so a write
// acknowledged anywhere is read everywhere. When the store cannot be
// reached, reads are answered from the last version the replica holds and
// writes get 503 with Retry-After.
//
// # Security
//
// With Options.Tokens empty and no Options.Verifier the server is open
// (development mode). Otherwise requests need "Authorization: Bearer
// TOKEN" (or, over mutual TLS, a client certificate a ClientCert token
// names): a missing or unknown token is a 401 with WWW-Authenticate:
// Bearer; a principal lacking the scope or the environment is a 403. The
// scopes (Scopes): flags:read (reads and evaluation), flags:write (writes
// of flags and segments), flags:approve, audit:read (GET /v1/audit) and
// tokens:mint (POST /v1/tokens). A bearer token is a static Token (its
// secret, or only its SecretSHA256), a JWT Options.Verifier accepts (OAuth
// 2.0 access tokens), or a public-client token the server minted.
//
// # Public-client tokens
//
//	POST   /v1/tokens                       {"environment","flags","attributes","ttlSeconds"} → 201 {"token","id","environment","expiresAt"}
//	DELETE /v1/tokens/{id}                  revoke (every replica refuses it from then on)
//
// A minted token (an EdDSA JWT signed with the store's current signing
// key, "kid" its key id; at most MaxMintedTokenTTL) may only evaluate its
// flags through POST /v1/evaluate and OFREP (another flag: 403; the OFREP
// bulk answer holds only its flags), only its attributes reach the rules
// (dotted paths; the others are dropped before evaluation), and any other
// route is a 403. Its id is kept in the store (MintedTokenStore).
//
// # Request signing
//
// Options.HMACKeys (key id → secret) makes every request carry an
// HMAC-SHA256 signature (scheme FLAGWIRE-HMAC-SHA256-V2, internal/wire
// SignRequest; the SDK's WithRequestSigning):
//
//	X-Flagwire-Timestamp: 1767225600123                    unix milliseconds
//	X-Flagwire-Nonce:     9f86d081884c7d659a2feaa0c55ad015 32–64 lowercase hex (16+ random bytes), new for every send
//	X-Flagwire-Signature: keyId=ci,sig=HEX                 HEX = lowercase hex HMAC-SHA256(secret, signing input)
//
// The signing input is six lines joined by "\n" (no trailing newline):
//
//	FLAGWIRE-HMAC-SHA256-V2
//	METHOD                   e.g. POST
//	PATH?QUERY               the request target as sent, e.g. /v1/evaluate?environment=prod
//	TIMESTAMP                the X-Flagwire-Timestamp value
//	NONCE                    the X-Flagwire-Nonce value
//	hex(SHA-256(body))       lowercase; of the empty string when there is no body
//
// A missing header, a malformed nonce, an unknown key id, a wrong signature
// or a timestamp more than five minutes (wire.MaxSignatureSkew) from the
// server's clock is a 401 bad_signature. The server remembers each accepted
// (key id, nonce) until its timestamp leaves the window and refuses it a
// second time (a replay, 401), so retries, refetches and reconnects —
// each signed afresh with a new nonce — may come as fast as they like. The
// memory is bounded (Options.MaxSignatureNonces, default 262,144 entries):
// when full, the entries that expire first are evicted and requests signed
// no later than them are refused, so the window shrinks under a flood but a
// replay is never admitted.
//
// # Timeouts
//
// The Server is a handler; timeouts belong to the http.Server serving it
// (`flagwire serve` sets them, see its --help). SSE streams are exempt from
// the http.Server's ReadTimeout and WriteTimeout: the stream handler clears
// its read deadline and gives each write its own deadline
// (Options.StreamWriteTimeout, default 10s), so a stream lives as long as
// its client reads, and a client that stops reading is dropped.
// WebSockets (GET /v1/ws, see ws.go) leave the http.Server once upgraded:
// each write has the same StreamWriteTimeout, a client that answers no
// ping within it or lets its send queue overflow is closed with 1008, and
// Server.Close closes them (1001) and waits for their handlers.
//
// # Rate limits
//
// Failed authentication (a missing or unknown token, a bad signature) is
// limited per client address (IPv4 address, IPv6 /64): the peer's, or,
// when the peer is one of Options.TrustedProxies, the rightmost address of
// its X-Forwarded-For (or Forwarded, Options.ProxyHeader) outside those
// ranges; from any other peer the headers are ignored. The limit is
// Options.AuthFailureLimit, default 2 per second with a burst of 20.
// Credentials are checked only with a token from the address's bucket,
// returned unless the check fails; an address with an empty bucket gets
// 429 rate_limited with Retry-After before its credentials are looked at
// (so a right guess cannot stand out), which also holds back valid tokens
// from that same address until it refills; other addresses are unaffected.
// At most Options.MaxAuthFailureAddrs (65,536) addresses are tracked.
//
// Requests are limited per token, reads and writes apart: reads by
// Options.ReadLimit, default unlimited (one read token is commonly shared
// by a whole fleet of SDKs, so any per-token figure would throttle some
// fleet), writes by Options.WriteLimit, default 20 per second with a burst
// of 40; a token's own ReadLimit and WriteLimit replace them. Limited
// responses carry X-RateLimit-Limit (the burst), X-RateLimit-Remaining and
// X-RateLimit-Reset (seconds until the bucket is full), and a 429 adds
// Retry-After. Request logs never contain tokens or attribute values.
package flagserver
