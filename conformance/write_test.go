package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestServerWriteCompileErrors builds every compile-error config through
// the reference server's write API, one entity per request, and checks
// that the write which makes the environment's config uncompilable is
// refused with 400 compile_error and findings from the case's list (each
// write is compiled with the environment; nothing is applied when it
// fails). Forward references cannot be written in one pass, so segments
// are created without their conditions and flags without their
// prerequisites, then patched with them.
func TestServerWriteCompileErrors(t *testing.T) {
	var files []*caseFile
	for _, cf := range loadCases(t) {
		if slices.ContainsFunc(cf.Cases, func(c tcase) bool { return c.Expect.CompileError }) {
			files = append(files, cf)
		}
	}
	skip := func(cf *caseFile, c *tcase) string {
		if !c.Expect.CompileError {
			return "not a compile-error case"
		}
		if dup := duplicateKey(decodeConfig(t, cf.config(c))); dup != "" {
			return "two entities named " + dup + ": the write API refuses the second as a conflict before compiling"
		}
		return ""
	}
	forEachCase(t, files, skip, func(t *testing.T, cf *caseFile, c *tcase) {
		var raw struct {
			Salt     string                       `json:"salt"`
			Flags    []map[string]json.RawMessage `json:"flags"`
			Segments []map[string]json.RawMessage `json:"segments"`
		}
		if err := json.Unmarshal(cf.config(c), &raw); err != nil {
			t.Fatal(err)
		}
		srv := flagtest.NewServer(t, flagtest.WithConfig(&evaluate.Config{Environment: caseEnv, Salt: raw.Salt}))
		type write struct {
			method, path string
			body         map[string]json.RawMessage
		}
		var first, second []write
		stage := func(kind string, objs []map[string]json.RawMessage, later string) {
			for _, o := range objs {
				var key string
				_ = json.Unmarshal(o["key"], &key)
				create := map[string]json.RawMessage{}
				for k, v := range o {
					if k != later {
						create[k] = v
					}
				}
				first = append(first, write{http.MethodPost, "/v1/" + kind, create})
				if v, ok := o[later]; ok {
					second = append(second, write{http.MethodPatch, "/v1/" + kind + "/" + url.PathEscape(key), map[string]json.RawMessage{later: v}})
				}
			}
		}
		stage("segments", raw.Segments, "when")
		stage("flags", raw.Flags, "prerequisites")
		for i, w := range append(first, second...) {
			status, body := writeEntity(t, srv, w.method, w.path, w.body)
			if status/100 == 2 {
				continue
			}
			var eb struct {
				Error struct {
					Code    string `json:"code"`
					Details struct {
						Findings []evaluate.Finding `json:"findings"`
					} `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &eb); err != nil || status != http.StatusBadRequest || eb.Error.Code != wire.CodeCompileError {
				t.Fatalf("write %d (%s %s): %d %s; want 400 %s", i+1, w.method, w.path, status, body, wire.CodeCompileError)
			}
			checkFindings(t, c, fmt.Sprintf("write %d (%s %s)", i+1, w.method, w.path), findingsOf(eb.Error.Details.Findings), true)
			return
		}
		t.Fatalf("the server accepted every write of a config that must not compile (%s)", c.Description)
	})
}

// duplicateKey returns a key two flags or two segments of cfg share, or "".
func duplicateKey(cfg *evaluate.Config) string {
	seen := map[string]bool{}
	for _, f := range cfg.Flags {
		if seen["flag "+f.Key] {
			return "flag " + f.Key
		}
		seen["flag "+f.Key] = true
	}
	for _, s := range cfg.Segments {
		if seen["segment "+s.Key] {
			return "segment " + s.Key
		}
		seen["segment "+s.Key] = true
	}
	return ""
}

// writeEntity sends one write (If-Match: * for a PATCH) to the case
// environment and returns the status and body.
func writeEntity(t *testing.T, srv *flagtest.Server, method, path string, body any) (int, []byte) {
	t.Helper()
	hdr := map[string]string{}
	if method == http.MethodPatch {
		hdr["If-Match"] = "*"
	}
	return sendJSON(t, method, srv.URL+path+"?environment="+caseEnv, srv.Token(), hdr, body)
}
