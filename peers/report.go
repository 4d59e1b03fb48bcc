package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
)

// answer is what a check compares: value, variant, reason and error code.
type answer struct {
	Value     any    `json:"value"`
	Variant   string `json:"variant"`
	Reason    string `json:"reason"`
	ErrorCode string `json:"errorCode"`
}

func (a answer) String() string {
	v, _ := json.Marshal(a.Value)
	s := fmt.Sprintf("value=%s variant=%q reason=%s", v, a.Variant, orDash(a.Reason))
	if a.ErrorCode != "" {
		s += " error=" + a.ErrorCode
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sameAnswer compares two answers; values are compared as JSON (so 25 and
// 25.0, or a map and its JSON text, are equal).
func sameAnswer(a, b answer) bool {
	return a.Variant == b.Variant && a.Reason == b.Reason && a.ErrorCode == b.ErrorCode && sameJSON(a.Value, b.Value)
}

// sameJSON compares two values by their JSON meaning.
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		var data []byte
		switch t := v.(type) {
		case json.RawMessage:
			data = t
		case []byte:
			data = t
		default:
			var err error
			if data, err = json.Marshal(v); err != nil {
				return fmt.Sprintf("unencodable %T", v)
			}
		}
		var out any
		if err := json.Unmarshal(data, &out); err != nil {
			return fmt.Sprintf("invalid JSON %q", data)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// results collects per-case lines and counts.
type results struct {
	title        string
	rows         [][]string
	pass, failed int
	known        int      // failures a peer is documented to have (notes)
	notes        []string // why each KNOWN line fails
}

// addKnown records a case that fails because of a documented limitation
// of the peer under test, not of Flagwire: printed as KNOWN with the
// reason, not counted as a failure. A peer that no longer has the
// limitation passes the case.
func (r *results) addKnown(flag, call, want, got, why string) {
	r.known++
	r.notes = append(r.notes, fmt.Sprintf("KNOWN (%s %s): %s", flag, call, why))
	r.rows = append(r.rows, []string{"KNOWN", flag, call, want, got})
}

func (r *results) add(flag, call, want, got string, ok bool) {
	verdict := "PASS"
	if ok {
		r.pass++
	} else {
		verdict = "FAIL"
		r.failed++
	}
	r.rows = append(r.rows, []string{verdict, flag, call, want, got})
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", r.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "result\tflag\tcall\texpected\tgot")
	for _, row := range r.rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	for _, n := range r.notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d known peer limitations\n", r.pass, r.failed, r.known)
}
