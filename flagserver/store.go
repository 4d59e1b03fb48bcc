package flagserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/flagwire/flagwire/evaluate"
)

// envState is one environment's published state. It is immutable: a write
// builds a new envState and swaps it in.
type envState struct {
	name string
	cfg  *evaluate.Config
	snap *evaluate.Snapshot
	size int // len of the document, known before it is assembled

	docOnce sync.Once
	body    []byte // cfg as JSON, served by GET /v1/flags: use document()
	etag    string // strong, quoted hash of body: use document()
	head    []byte // the document's scalar fields, for document()
	// warnings are advisories about the write that made this state
	// (segment bloat, a config near the size limit); nil for none.
	warnings []string
	// flagJSON and segJSON are the encoded cfg.Flags and cfg.Segments,
	// index for index: body is assembled from them, and the next write
	// re-encodes only the entity it changes (a large static segment is
	// encoded once, when it is written).
	flagJSON, segJSON [][]byte
}

func (e *envState) version() int64 { return e.cfg.Version }

// newEnvState compiles cfg and prepares its wire form.
func newEnvState(cfg *evaluate.Config) (*envState, error) {
	return nextEnvState(cfg, nil, "", "")
}

// nextEnvState compiles cfg and prepares its wire form, reusing prev's
// compiled segments and encoded parts for every flag and segment except
// the one entity (kind "flag" or "segment", key) the write changed: the
// caller guarantees that nothing else differs from prev. prev nil encodes
// everything.
func nextEnvState(cfg *evaluate.Config, prev *envState, kind, key string) (*envState, error) {
	var prevSnap *evaluate.Snapshot
	if prev != nil {
		prevSnap = prev.snap
	}
	snap, err := evaluate.CompileReusing(cfg, prevSnap)
	if err != nil {
		return nil, err
	}
	es := &envState{name: cfg.Environment, cfg: cfg, snap: snap}
	var reuseFlags, reuseSegs map[string][]byte
	if prev != nil {
		reuseFlags = make(map[string][]byte, len(prev.cfg.Flags))
		for i := range prev.cfg.Flags {
			if k := prev.cfg.Flags[i].Key; kind != "flag" || k != key {
				reuseFlags[k] = prev.flagJSON[i]
			}
		}
		reuseSegs = make(map[string][]byte, len(prev.cfg.Segments))
		for i := range prev.cfg.Segments {
			if k := prev.cfg.Segments[i].Key; kind != "segment" || k != key {
				reuseSegs[k] = prev.segJSON[i]
			}
		}
	}
	es.flagJSON = make([][]byte, len(cfg.Flags))
	for i := range cfg.Flags {
		b, ok := reuseFlags[cfg.Flags[i].Key]
		if !ok {
			if b, err = json.Marshal(&cfg.Flags[i]); err != nil {
				return nil, fmt.Errorf("flagserver: encode flag %q: %w", cfg.Flags[i].Key, err)
			}
		}
		es.flagJSON[i] = b
	}
	es.segJSON = make([][]byte, len(cfg.Segments))
	for i := range cfg.Segments {
		b, ok := reuseSegs[cfg.Segments[i].Key]
		if !ok {
			if b, err = json.Marshal(&cfg.Segments[i]); err != nil {
				return nil, fmt.Errorf("flagserver: encode segment %q: %w", cfg.Segments[i].Key, err)
			}
		}
		es.segJSON[i] = b
	}
	// The document is exactly json.Marshal(cfg): the scalar fields, then
	// "flags" (null when nil) and "segments" (omitted when empty).
	head, err := json.Marshal(configHead{cfg.Environment, cfg.Version, cfg.Salt, cfg.RequireChangeReason, cfg.RequireApproval, cfg.Attributes})
	if err != nil {
		return nil, fmt.Errorf("flagserver: encode config %q: %w", cfg.Environment, err)
	}
	es.head = head
	es.setSize()
	return es, nil
}

// setSize sets size from head and the parts.
func (e *envState) setSize() {
	e.size = len(e.head) - 1 + len(`,"flags":`) + 1
	if e.cfg.Flags == nil {
		e.size += len("null")
	} else {
		e.size += partsLen(e.flagJSON)
	}
	if len(e.cfg.Segments) > 0 {
		e.size += len(`,"segments":`) + partsLen(e.segJSON)
	}
}

// envFromStored makes the state of a stored environment, reusing prev
// (the environment's current state, or nil): a flag or segment whose
// stored JSON is prev's is taken from prev as is (so is its compiled
// form), the others are decoded; the stored JSON is the wire form. A
// replica catching up on a write next to a large segment decodes and
// compiles only what the write changed.
// reuseOrDecode fills vals and parts (index for index with keys) from the
// stored parts: a part whose bytes equal prev's for its key is taken from
// prev as is, the others are decoded. what names the kind in errors.
func reuseOrDecode[T any](what string, keys []string, stored map[string][]byte, vals []T, parts [][]byte, prev []T, prevParts [][]byte, key func(*T) string, opts evaluate.JSONOptions) error {
	prevAt := make(map[string]int, len(prev))
	for i := range prev {
		prevAt[key(&prev[i])] = i
	}
	for i, k := range keys {
		part := stored[k]
		if part == nil {
			return fmt.Errorf("%s %q is missing", what, k)
		}
		parts[i] = part
		if j, ok := prevAt[k]; ok && bytes.Equal(prevParts[j], part) {
			vals[i] = prev[j]
		} else if err := evaluate.DecodeJSON(part, &vals[i], opts); err != nil {
			return fmt.Errorf("%s %q: %w", what, k, err)
		}
	}
	return nil
}

func envFromStored(se *StoredEnv, prev *envState) (*envState, error) {
	if prev == nil {
		cfg, err := decodeStoredEnv(se)
		if err != nil {
			return nil, err
		}
		return newEnvState(cfg)
	}
	fail := func(err error) (*envState, error) {
		return nil, fmt.Errorf("flagserver: stored environment %q: %w", se.Name, err)
	}
	var h configHead
	if err := json.Unmarshal(se.Head, &h); err != nil {
		return fail(err)
	}
	var fk, sk []string
	if err := json.Unmarshal(se.FlagKeys, &fk); err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(se.SegKeys, &sk); err != nil {
		return fail(err)
	}
	cfg := &evaluate.Config{Environment: se.Name, Version: h.Version, Salt: h.Salt, RequireChangeReason: h.RequireChangeReason, RequireApproval: h.RequireApproval, Attributes: h.Attributes}
	es := &envState{name: se.Name, cfg: cfg, head: se.Head}
	opts := evaluate.JSONOptions{AllowUnknownFields: true, ExactNumbers: true}
	if fk != nil {
		cfg.Flags = make([]evaluate.Flag, len(fk))
		es.flagJSON = make([][]byte, len(fk))
	}
	flagKey := func(f *evaluate.Flag) string { return f.Key }
	if err := reuseOrDecode("flag", fk, se.Flags, cfg.Flags, es.flagJSON, prev.cfg.Flags, prev.flagJSON, flagKey, opts); err != nil {
		return fail(err)
	}
	if len(sk) > 0 {
		cfg.Segments = make([]evaluate.Segment, len(sk))
		es.segJSON = make([][]byte, len(sk))
	}
	segKey := func(s *evaluate.Segment) string { return s.Key }
	if err := reuseOrDecode("segment", sk, se.Segments, cfg.Segments, es.segJSON, prev.cfg.Segments, prev.segJSON, segKey, opts); err != nil {
		return fail(err)
	}
	snap, err := evaluate.CompileReusing(cfg, prev.snap)
	if err != nil {
		return fail(err)
	}
	es.snap = snap
	es.setSize()
	return es, nil
}

// document returns the config document (json.Marshal of cfg, assembled
// from the cached parts) and its ETag. It is built on first use, by the
// first reader (outside the write lock), and then kept.
func (e *envState) document() (body []byte, etag string) {
	e.docOnce.Do(func() {
		b := make([]byte, 0, e.size)
		b = append(b, e.head[:len(e.head)-1]...)
		b = append(b, `,"flags":`...)
		if e.cfg.Flags == nil {
			b = append(b, "null"...)
		} else {
			b = appendParts(b, e.flagJSON)
		}
		if len(e.cfg.Segments) > 0 {
			b = append(b, `,"segments":`...)
			b = appendParts(b, e.segJSON)
		}
		b = append(b, '}')
		e.body, e.etag = b, etagOf(b)
	})
	return e.body, e.etag
}

func partsLen(parts [][]byte) int {
	n := 2 + max(0, len(parts)-1) // brackets and commas
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// configHead is evaluate.Config's fields before Flags, with its JSON tags.
type configHead struct {
	Environment         string            `json:"environment"`
	Version             int64             `json:"version"`
	Salt                string            `json:"salt"`
	RequireChangeReason bool              `json:"requireChangeReason,omitempty"`
	RequireApproval     bool              `json:"requireApproval,omitempty"`
	Attributes          map[string]string `json:"attributes,omitempty"`
}

func appendParts(b []byte, parts [][]byte) []byte {
	b = append(b, '[')
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	return append(b, ']')
}

// etagOf returns a strong ETag: the quoted first 16 bytes of SHA-256, hex.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// cloneConfig copies cfg for modification: the Flags and Segments slices
// are new; their elements are replaced, never modified in place. The
// flags-as-code source locator is dropped (edited configs no longer match
// their files).
func cloneConfig(c *evaluate.Config) *evaluate.Config {
	return &evaluate.Config{
		Environment:         c.Environment,
		Version:             c.Version,
		Salt:                c.Salt,
		RequireChangeReason: c.RequireChangeReason,
		RequireApproval:     c.RequireApproval,
		Attributes:          c.Attributes,
		Flags:               slices.Clone(c.Flags),
		Segments:            slices.Clone(c.Segments),
	}
}

// storedEnvOf returns es as stored (whole).
func storedEnvOf(es *envState) (StoredEnv, error) {
	e := StoredEnv{Name: es.name, Version: es.version(), Head: es.head, Flags: map[string][]byte{}, Segments: map[string][]byte{}}
	for i := range es.cfg.Flags {
		e.Flags[es.cfg.Flags[i].Key] = es.flagJSON[i]
	}
	for i := range es.cfg.Segments {
		e.Segments[es.cfg.Segments[i].Key] = es.segJSON[i]
	}
	var err error
	if e.FlagKeys, err = flagKeysJSON(es); err != nil {
		return e, err
	}
	e.SegKeys, err = segKeysJSON(es)
	return e, err
}

func flagKeysJSON(es *envState) ([]byte, error) {
	var fk []string
	if es.cfg.Flags != nil {
		fk = make([]string, len(es.cfg.Flags))
		for i := range es.cfg.Flags {
			fk[i] = es.cfg.Flags[i].Key
		}
	}
	return json.Marshal(fk)
}

func segKeysJSON(es *envState) ([]byte, error) {
	sk := make([]string, len(es.cfg.Segments))
	for i := range es.cfg.Segments {
		sk[i] = es.cfg.Segments[i].Key
	}
	return json.Marshal(sk)
}

// assembleEnv rebuilds the config document of a stored environment, in
// the stored order.
func assembleEnv(e *StoredEnv) ([]byte, error) {
	head := e.Head
	if len(head) < 2 || head[len(head)-1] != '}' {
		return nil, errors.New("incomplete stored config")
	}
	var fk, sk []string
	if err := json.Unmarshal(e.FlagKeys, &fk); err != nil {
		return nil, fmt.Errorf("flag keys: %w", err)
	}
	if err := json.Unmarshal(e.SegKeys, &sk); err != nil {
		return nil, fmt.Errorf("segment keys: %w", err)
	}
	parts := func(m map[string][]byte, keys []string, what string) ([][]byte, error) {
		out := make([][]byte, len(keys))
		for i, k := range keys {
			if out[i] = m[k]; out[i] == nil {
				return nil, fmt.Errorf("%s %q is missing", what, k)
			}
		}
		return out, nil
	}
	fp, err := parts(e.Flags, fk, "flag")
	if err != nil {
		return nil, err
	}
	sp, err := parts(e.Segments, sk, "segment")
	if err != nil {
		return nil, err
	}
	doc := append([]byte(nil), head[:len(head)-1]...)
	doc = append(doc, `,"flags":`...)
	if fk == nil {
		doc = append(doc, "null"...)
	} else {
		doc = appendParts(doc, fp)
	}
	if len(sk) > 0 {
		doc = append(doc, `,"segments":`...)
		doc = appendParts(doc, sp)
	}
	return append(doc, '}'), nil
}

// decodeStoredEnv decodes a stored environment into a Config.
func decodeStoredEnv(e *StoredEnv) (*evaluate.Config, error) {
	doc, err := assembleEnv(e)
	if err != nil {
		return nil, fmt.Errorf("flagserver: stored environment %q: %w", e.Name, err)
	}
	// The one config decoder: numbers exactly as stored, and fields a
	// newer version wrote skipped.
	cfg := new(evaluate.Config)
	if err := evaluate.DecodeJSON(doc, cfg, evaluate.JSONOptions{AllowUnknownFields: true, ExactNumbers: true}); err != nil {
		return nil, fmt.Errorf("flagserver: stored environment %q: %w", e.Name, err)
	}
	cfg.Environment = e.Name
	return cfg, nil
}
