package web

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		start, end time.Time
		want       string
	}{
		{"not started", time.Time{}, time.Time{}, ""},
		{"milliseconds", t0, t0.Add(45 * time.Millisecond), "45ms"},
		{"just under a second", t0, t0.Add(999 * time.Millisecond), "999ms"},
		{"seconds", t0, t0.Add(12*time.Second + 400*time.Millisecond), "12s"},
		{"minutes", t0, t0.Add(3*time.Minute + 7*time.Second), "3m07s"},
		{"hours", t0, t0.Add(2*time.Hour + 5*time.Minute), "2h05m"},
		{"running: measured to now", t0, time.Time{}, "1m00s"},
		{"clock skew", t0, t0.Add(-time.Second), "0ms"},
	}
	now := t0.Add(time.Minute)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := duration(tc.start, tc.end, now); got != tc.want {
				t.Errorf("duration = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUntil(t *testing.T) {
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{{now.Add(90 * time.Second), "in 1m30s"}, {now, "due"}, {now.Add(-time.Second), "due"}} {
		if got := until(tc.at, now); got != tc.want {
			t.Errorf("until(now%+v) = %q, want %q", tc.at.Sub(now), got, tc.want)
		}
	}
}
