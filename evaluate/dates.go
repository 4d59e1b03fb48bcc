package evaluate

import (
	"math"
	"time"
)

// rlAsTime returns v as an instant: an RFC 3339 date or date-time string, a
// time.Time, or a number of Unix seconds.
func rlAsTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		return rlParseDate(x)
	case time.Time:
		return x, true
	case *time.Time:
		if x == nil {
			return time.Time{}, false
		}
		return *x, true
	case bool, []any, map[string]any:
		return time.Time{}, false
	}
	n, ok := rlToNumber(v)
	if !ok {
		if s, isStr := rlAsString(v); isStr {
			return rlParseDate(s)
		}
		return time.Time{}, false
	}
	return rlNumberTime(n)
}

// asTime is rlAsTime for a Value, without boxing it.
func (v Value) asTime() (time.Time, bool) {
	switch x := v.any.(type) {
	case stringptr:
		return rlParseDate(v.str(x))
	case Kind:
		if n, ok := v.asNumber(); ok {
			return rlNumberTime(n)
		}
		return time.Time{}, false
	}
	return rlAsTime(v.any)
}

// rlNumberTime is a number of Unix seconds as an instant.
func rlNumberTime(n rlNumber) (time.Time, bool) {
	if n.exact {
		return time.Unix(n.i, 0), true
	}
	if math.IsInf(n.f, 0) || math.Abs(n.f) > 1<<62 {
		return time.Time{}, false
	}
	sec := math.Floor(n.f)
	return time.Unix(int64(sec), int64((n.f-sec)*1e9)), true
}

// rlDaysIn returns the number of days in month (1-12) of year.
func rlDaysIn(year, month int) int {
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
}

// rlParseDate parses YYYY-MM-DD (midnight UTC) or an RFC 3339 date-time
// (YYYY-MM-DD[Tt ]HH:MM:SS[.frac](Z|z|±HH:MM)) without allocating.
func rlParseDate(s string) (time.Time, bool) {
	num := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			if !rlIsDigit(s[i]) {
				return 0, false
			}
			n = n*10 + int(s[i]-'0')
		}
		return n, true
	}
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > rlDaysIn(year, month) {
		return time.Time{}, false
	}
	if len(s) == 10 {
		return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), true
	}
	s = s[10:]
	if len(s) < 10 || s[0] != 'T' && s[0] != 't' && s[0] != ' ' || s[3] != ':' || s[6] != ':' {
		return time.Time{}, false
	}
	hour, ok1 := num(s[1:3])
	minute, ok2 := num(s[4:6])
	sec, ok3 := num(s[7:9])
	if !ok1 || !ok2 || !ok3 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	s = s[9:]
	nsec := 0
	if s[0] == '.' {
		i := 1
		for i < len(s) && rlIsDigit(s[i]) {
			if i <= 9 {
				nsec = nsec*10 + int(s[i]-'0')
			}
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		for k := i; k <= 9; k++ {
			nsec *= 10
		}
		s = s[i:]
	}
	offset := 0
	switch {
	case s == "Z" || s == "z":
	case len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':':
		oh, ok1 := num(s[1:3])
		om, ok2 := num(s[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if s[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}
