package evaluate

import (
	"strings"
	"testing"
	"time"
)

func TestRuleParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-01-15", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), true},
		{"2024-02-29", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"2026-01-15T10:20:30Z", time.Date(2026, 1, 15, 10, 20, 30, 0, time.UTC), true},
		{"2026-01-15t10:20:30z", time.Date(2026, 1, 15, 10, 20, 30, 0, time.UTC), true},
		{"2026-01-15 10:20:30Z", time.Date(2026, 1, 15, 10, 20, 30, 0, time.UTC), true},
		{"2026-01-15T10:20:30.5Z", time.Date(2026, 1, 15, 10, 20, 30, 5e8, time.UTC), true},
		{"2026-01-15T10:20:30.123456789123Z", time.Date(2026, 1, 15, 10, 20, 30, 123456789, time.UTC), true},
		{"2026-01-15T10:20:30+05:30", time.Date(2026, 1, 15, 4, 50, 30, 0, time.UTC), true},
		{"2026-01-15T00:00:00-01:00", time.Date(2026, 1, 15, 1, 0, 0, 0, time.UTC), true},
		{"2025-02-29", time.Time{}, false},
		{"2026-13-01", time.Time{}, false},
		{"2026-00-01", time.Time{}, false},
		{"2026-04-31", time.Time{}, false},
		{"2026-1-5", time.Time{}, false},
		{"26-01-15", time.Time{}, false},
		{"2026-01-15T", time.Time{}, false},
		{"2026-01-15T10:20:30", time.Time{}, false},
		{"2026-01-15T24:00:00Z", time.Time{}, false},
		{"2026-01-15T10:60:00Z", time.Time{}, false},
		{"2026-01-15T10:20:60Z", time.Time{}, false},
		{"2026-01-15T10:20:30.Z", time.Time{}, false},
		{"2026-01-15T10:20:30+0530", time.Time{}, false},
		{"2026-01-15T10:20:30+24:00", time.Time{}, false},
		{"2026-01-15T10:20:30ZZ", time.Time{}, false},
		{"2026-01-15X", time.Time{}, false},
		{"tomorrow", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := rlParseDate(tt.in)
			if ok != tt.ok || ok && !got.Equal(tt.want) {
				t.Errorf("rlParseDate(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok {
				ref, err := time.Parse(time.RFC3339Nano, strings.Replace(tt.in, " ", "T", 1))
				if len(tt.in) > 10 && err == nil && !ref.Equal(got) {
					t.Errorf("rlParseDate(%q) = %v, time.Parse says %v", tt.in, got, ref)
				}
			}
		})
	}
}
