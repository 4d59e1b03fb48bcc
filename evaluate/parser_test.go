package evaluate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRuleSyntaxErrors(t *testing.T) {
	const valueMsg = "expected a value (a string, number, true or false)"
	const opMsg = "expected an operator (==, !=, <, <=, >, >=, in, not in, contains, startsWith, endsWith, matches) after "
	tests := []struct {
		name      string
		src       string
		line, col int
		token     string
		msg       string // exact Msg
	}{
		{"empty", "", 1, 1, "", "expected a condition"},
		{"blank", "  \n ", 2, 2, "", "expected a condition"},
		{"missing value at end", "plan == ", 1, 9, "", valueMsg},
		{"keyword as value", "region == and plan == 'x'", 1, 11, "and", valueMsg},
		{"unquoted string", "plan == pro", 1, 9, "pro", valueMsg + "; strings need quotes: 'pro'"},
		{"list as value", "tags contains [1]", 1, 15, "[", valueMsg + `; lists are only allowed after "in" and "not in"`},
		{"single equals", "plan = 'pro'", 1, 6, "=", `expected "==" ("=" alone is not an operator)`},
		{"single ampersand", "a & b", 1, 3, "&", `expected "&&"`},
		{"single bar", "a | b", 1, 3, "|", `expected "||"`},
		{"dangling and", "plan == 'pro' and", 1, 18, "", "expected a condition"},
		{"dangling not", "not", 1, 4, "", "expected a condition"},
		{"dangling or symbol", "a ||", 1, 5, "", "expected a condition"},
		{"unterminated string", "plan == 'pro", 1, 9, "'pro", "unterminated string (a string ends with its opening quote, on the same line)"},
		{"string across lines", "plan == 'pro\n' or x", 1, 9, "'pro", "unterminated string (a string ends with its opening quote, on the same line)"},
		{"trailing backslash", `plan == 'pro\`, 1, 9, `'pro\`, "unterminated string (a string ends with its opening quote, on the same line)"},
		{"unknown escape", `email matches '^\d+$'`, 1, 17, `\d`, `unknown escape sequence: write \\ for a backslash (a regexp digit class is written '\\d')`},
		{"bad unicode escape", `x == 'a\u12'`, 1, 8, `\u12`, `invalid \u escape: want exactly 4 hex digits, e.g. \u00e9`},
		{"unclosed paren", "(plan == 'pro'", 1, 15, "", `expected "and", "or" or ")" to close the "(" at 1:1`},
		{"extra paren", "plan == 'pro')", 1, 14, ")", `expected "and", "or" or end of rule (this ")" has no matching "(")`},
		{"missing operator", "plan 'pro'", 1, 6, "'pro'", opMsg + `"plan"`},
		{"two comparisons", "x == 1 y == 2", 1, 8, "y", `expected "and", "or" or end of rule`},
		{"uppercase AND", "plan == 'a' AND x == 1", 1, 13, "AND", `expected "and", "or" or end of rule (keywords are case-sensitive: write "and")`},
		{"camel case keyword", "email startswith 'a'", 1, 7, "startswith", opMsg + `"email" (keywords are case-sensitive: write "startsWith")`},
		{"in without list", "plan in 'pro'", 1, 9, "'pro'", "expected a list, e.g. ['US', 'CA']"},
		{"list missing comma", "plan in ['a' 'b']", 1, 14, "'b'", `expected "," or "]"`},
		{"list unclosed", "plan in ['a',", 1, 14, "", `expected a value (a string, number, true or false) or "]"`},
		{"list of paths", "plan in [other]", 1, 10, "other", `expected a value (a string, number, true or false) or "]"; strings need quotes: 'other'`},
		{"not without in", "x not y", 1, 7, "y", `expected "in" after "not"`},
		{"bool ordering", "plan < true", 1, 8, "true", "a bool can only be compared with == or !=, not <"},
		{"startsWith number", "x startsWith 5", 1, 14, "5", "expected a string after startsWith"},
		{"matches path", "x matches y", 1, 11, "y", "expected a string after matches"},
		{"bad regexp", "email matches 'a(['", 1, 15, "'a(['", "invalid regular expression: missing closing ]: `[`"},
		{"bad regexp repeat", "email matches 'a{2000}'", 1, 15, "'a{2000}'", "invalid regular expression: invalid repeat count: `{2000}`"},
		{"literal first", "'pro' == plan", 1, 1, "'pro'", "expected a condition (a test starts with the attribute, e.g. plan == 'pro')"},
		{"keyword first", "in == 1", 1, 1, "in", "expected a condition"},
		{"operator first", "== 1", 1, 1, "==", "expected a condition"},
		{"bad version", "semver(v) < 'x.y'", 1, 13, "'x.y'", "not a valid semantic version: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '2.1.0' or '2.1.0-beta.1'"},
		{"version leading zero", "semver(v) < '1.02'", 1, 13, "'1.02'", "not a valid semantic version: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '2.1.0' or '2.1.0-beta.1'"},
		{"unquoted version", "semver(v) < 2", 1, 13, "2", "expected a version in quotes, e.g. '2.0.0'"},
		{"semver in", "semver(v) in ['1']", 1, 11, "in", "expected a comparison operator (==, !=, <, <=, >, >=) after semver(...)"},
		{"semver no path", "semver('1.0') < '2'", 1, 8, "'1.0'", "expected an attribute path in semver(...)"},
		{"semver unclosed", "semver(v < '2'", 1, 10, "<", `expected ")" to close semver(`},
		{"bad date", "date(d) > '2026-13-01'", 1, 11, "'2026-13-01'", "not a valid RFC 3339 date or date-time: want 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM:SS[.frac]' with Z or a ±HH:MM offset"},
		{"date without zone", "date(d) > '2026-01-01T10:00:00'", 1, 11, "'2026-01-01T10:00:00'", "not a valid RFC 3339 date or date-time: want 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM:SS[.frac]' with Z or a ±HH:MM offset"},
		{"date number", "date(d) > 5", 1, 11, "5", "expected a date in quotes, e.g. '2026-01-01' or '2026-01-01T09:00:00Z'"},
		{"date contains", "date(d) contains '2026'", 1, 9, "contains", "expected a comparison operator (==, !=, <, <=, >, >=) after date(...)"},
		{"now alone", "now", 1, 4, "", `expected a comparison operator (==, !=, <, <=, >, >=) after "now"`},
		{"now number", "now > 5", 1, 7, "5", "expected a date in quotes, e.g. '2026-01-01' or '2026-01-01T09:00:00Z'"},
		{"now date unclosed", "now > date(x", 1, 13, "", `expected ")" to close date(`},
		{"segment unquoted", "segment(beta)", 1, 9, "beta", "expected a segment name in quotes, e.g. segment('beta_testers')"},
		{"segment empty", "segment('')", 1, 9, "''", "segment name is empty"},
		{"segment unclosed", "segment('a' or x", 1, 13, "or", `expected ")" to close segment(`},
		{"has literal", "has('x')", 1, 5, "'x'", "expected an attribute path in has(...)"},
		{"has unclosed", "has(x", 1, 6, "", `expected ")" to close has(`},
		{"has compared", "has(x) == true", 1, 8, "==", `expected "and", "or" or end of rule`},
		{"dangling dot", "account. plan == 1", 1, 1, "account.", `expected an attribute name after "."`},
		{"dot digit", "account.1 == 1", 1, 1, "account.", `expected an attribute name after "."`},
		{"bad number", "x == 5abc", 1, 6, "5abc", "invalid number"},
		{"bad number dot", "x == 1.", 1, 6, "1.", "invalid number"},
		{"number overflow", "x == 1e999", 1, 6, "1e999", "number out of range"},
		{"unexpected character", "x @ 1", 1, 3, "@", "unexpected character"},
		{"unicode character", "x == 1 ∧ y == 2", 1, 8, "∧", "unexpected character"},
		{"columns count code points", "name == 'héllo' and x ==", 1, 25, "", valueMsg},
		{"lexical error after parse error", "x == and 'unterminated", 1, 6, "and", valueMsg},
		{"multi-line", "plan == 'pro'\nand (\n  region in ['US', 'CA'\n  or beta\n)", 4, 3, "or", `expected "," or "]"`},
		{"multi-line crlf", "plan == 'pro'\r\n  and region ==\r\n", 3, 1, "", valueMsg},
		{"multi-line tab", "a\n\tand b ==\t=", 2, 11, "=", `expected "==" ("=" alone is not an operator)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCondition(tt.src)
			if err == nil {
				t.Fatalf("ParseCondition(%q) = %v, want an error", tt.src, c)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			want := SyntaxError{Line: tt.line, Col: tt.col, Token: tt.token, Msg: tt.msg}
			if *se != want {
				t.Errorf("ParseCondition(%q) error\n got %d:%d %q %q\nwant %d:%d %q %q",
					tt.src, se.Line, se.Col, se.Token, se.Msg, want.Line, want.Col, want.Token, want.Msg)
			}
			if !strings.Contains(se.Error(), fmt.Sprintf("line %d:%d: ", tt.line, tt.col)) {
				t.Errorf("Error() = %q lacks the position", se.Error())
			}
			if tt.token != "" && !strings.Contains(se.Error(), strconv.Quote(tt.token)) {
				t.Errorf("Error() = %q lacks the token", se.Error())
			}
		})
	}
}

func TestRuleSyntaxErrorString(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"region == and", `line 1:11: unexpected token "and": expected a value (a string, number, true or false)`},
		{"plan ==", `line 1:8: unexpected end of input: expected a value (a string, number, true or false)`},
		{"semver(v) < '2.x'", `line 1:13: at "'2.x'": not a valid semantic version: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '2.1.0' or '2.1.0-beta.1'`},
		{strings.Repeat("x", ruleMaxSourceLen+1), `line 1:65537: rule is too long (65537 bytes; the limit is 65536 bytes): put long lists in a static segment and use segment('name')`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseCondition(tt.src)
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseCondition error = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestRuleLimits(t *testing.T) {
	list := func(n int) string { return "x in [" + strings.Repeat("1,", n) + "]" }
	chain := func(n int) string { return "x == 1" + strings.Repeat(" or x == 1", n-1) }
	tests := []struct {
		name      string
		src       string
		ok        bool
		line, col int
		token     string
		msg       string // substring
	}{
		{"10 MB rule", "plan == '" + strings.Repeat("x", 10<<20-10) + "'", false, 1, 65537, "", "rule is too long (10485760 bytes; the limit is 65536 bytes)"},
		{"1,000,000-element list", list(1_000_000), false, 1, 65537, "", "rule is too long (2000007 bytes; the limit is 65536 bytes)"},
		{"64 KiB rule", "x == '" + strings.Repeat("a", ruleMaxSourceLen-8) + "'", true, 0, 0, "", ""},
		{"10,000-element list", list(10_000), true, 0, 0, "", ""},
		{"10,001-element list", list(10_001), false, 1, 20007, "1", "list has more than 10000 elements; put long lists in a static segment and use segment('name')"},
		{"depth 64", strings.Repeat("(", 64) + "x" + strings.Repeat(")", 64), true, 0, 0, "", ""},
		{"depth 65", strings.Repeat("(", 65) + "x" + strings.Repeat(")", 65), false, 1, 65, "(", "nesting is deeper than 64 levels"},
		{"not depth 65", strings.Repeat("not ", 65) + "x", false, 1, 257, "not", "nesting is deeper than 64 levels"},
		{"mixed depth 65", strings.Repeat("(not ", 33) + "x" + strings.Repeat(")", 33), false, 1, 161, "(", "nesting is deeper than 64 levels"},
		{"1,000 nodes", "not " + chain(500), true, 0, 0, "", ""},
		{"1,001 nodes", chain(501), false, 1, 5001, "x", "rule has more than 1000 comparisons and operators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c, err := ParseCondition(tt.src)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("ParseCondition took %v", elapsed)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				c.Match(Attributes{"x": 1}, nil, ruleNow)
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want a *SyntaxError", err)
			}
			if se.Line != tt.line || se.Col != tt.col || se.Token != tt.token || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("error = %d:%d %q %q\nwant %d:%d %q containing %q", se.Line, se.Col, se.Token, se.Msg, tt.line, tt.col, tt.token, tt.msg)
			}
		})
	}
}
