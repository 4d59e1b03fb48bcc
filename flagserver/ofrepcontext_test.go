package flagserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// ofrepContextOracle decodes body as the OFREP handlers did before the
// fast path: encoding/json with UseNumber into struct{Context any}. ok is
// false when encoding/json refuses the body or finds trailing data.
func ofrepContextOracle(body []byte) (ctx any, ok bool) {
	var one struct {
		Context any `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&one) != nil || dec.More() {
		return nil, false
	}
	return one.Context, true
}

var ofrepContextSeeds = []string{
	`{"context":{"targetingKey":"user-42","plan":"pro","region":"EU","appVersion":"2.3.1"}}`,
	`{"context":{"targetingKey":"u","n":12345678901234567890,"f":-1.5e-7,"b":true,"z":null,"a":[1,"x",{"k":[]}],"o":{}}}`,
	`{"context":null}`, `{}`, `{"other":1,"context":{"k":"v"},"more":[1,2]}`, ` {"context":{"k":"\u00e9\n\"\/"}} `,
	`{"context":{"k":"v"}} x`, `{"context":{"k":"v"},"context":{"k":"w"}}`, `{"Context":{"k":"v"}}`, `{"CONTEXT":{}}`,
	`{"context":{"k":"v","k":"w"}}`, `{"context":"x"}`, `{"context":[1]}`, `{"context":{"k":"\ud800"}}`,
	"{\"context\":{\"k\":\"\xff\"}}", `{"context":{"k":1e400}}`, `[]`, `null`, `{"context":{"k":}}`, `{"context":{"k":1}`,
	`{"conte\u0078t":{"k":"v"}}`, "{\"\u212Aontext\":{}}", `{"context":{"deep":[[[[[[[[[[{"a":[]}]]]]]]]]]]}}`,
}

// FuzzOFREPContextFast holds the OFREP handlers' one-pass context decoder
// to encoding/json's result: whatever it accepts, encoding/json (with
// UseNumber, into struct{Context any}) accepts too and decodes to the
// same context, value for value; whatever it refuses goes to the
// two-pass path, which is encoding/json itself.
func FuzzOFREPContextFast(f *testing.F) {
	for _, s := range ofrepContextSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := ofrepContextFast(body)
		if !ok {
			return
		}
		want, wok := ofrepContextOracle(body)
		if !wok {
			t.Fatalf("fast path accepted %q, which encoding/json refuses", body)
		}
		var g any
		if got != nil {
			g = got
		}
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("%q: fast path %#v, encoding/json %#v", body, g, want)
		}
	})
}

// The usual request bodies take the fast path; the unusual ones, which it
// might read otherwise than encoding/json, do not.
func TestOFREPContextFastTakesTheUsual(t *testing.T) {
	for _, s := range ofrepContextSeeds[:6] {
		if _, ok := ofrepContextFast([]byte(s)); !ok {
			t.Errorf("fast path refused %s", s)
		}
	}
	for _, s := range ofrepContextSeeds[6:] {
		got, ok := ofrepContextFast([]byte(s))
		if ok {
			want, _ := ofrepContextOracle([]byte(s))
			if !reflect.DeepEqual(any(got), want) && !(got == nil && want == nil) {
				t.Errorf("fast path took %s as %#v; encoding/json: %#v", s, got, want)
			}
		}
	}
}

// The pooled decoders hand no state from one request to another: many
// goroutines decoding bodies of distinct subjects at once each get their
// own context, as encoding/json decodes that body.
func TestOFREPContextFastDistinctSubjectsConcurrently(t *testing.T) {
	const workers, each = 8, 300
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			for i := range each {
				body := fmt.Sprintf(`{"context":{"targetingKey":"user-%d-%d","plan":%q,"n":%d,"tags":[%d,"t%d"]}}`, w, i, []string{"free", "pro"}[i%2], i, w, i)
				got, ok := ofrepContextFast([]byte(body))
				want, _ := ofrepContextOracle([]byte(body))
				if !ok || !reflect.DeepEqual(any(got), want) {
					errs <- fmt.Sprintf("%s: fast path %#v (ok %v), encoding/json %#v", body, got, ok, want)
					return
				}
			}
			errs <- ""
		}()
	}
	for range workers {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
