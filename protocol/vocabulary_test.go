package protocol

import (
	"slices"
	"testing"
)

func TestTerminal(t *testing.T) {
	tests := []struct {
		status string
		want   bool
	}{
		{StatusPending, false},
		{StatusRunning, false},
		{StatusSuccess, true},
		{StatusFailure, true},
		{StatusException, true},
		{StatusCancelled, true},
		{StatusLost, true},
		{StatusSuperseded, true},
		{StatusSkipped, true},
		{"", false},
		{"bogus", false},
		{"Success", false},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.status] = true
		if got := Terminal(tt.status); got != tt.want {
			t.Errorf("Terminal(%q) = %v, want %v", tt.status, got, tt.want)
		}
	}
	// A new status needs a row here: someone must decide whether it is final.
	for _, s := range Statuses {
		if !covered[s] {
			t.Errorf("status %q has no row in this test", s)
		}
	}
}

// TestVocabularies checks the lists' shapes that their users rely on: no
// repeats (a repeat would show twice in every menu and message), the subsets
// really subsets, step types sorted as error messages print them.
func TestVocabularies(t *testing.T) {
	tests := []struct {
		name   string
		list   []string
		within []string // nil: no constraint
		sorted bool
	}{
		{"Statuses", Statuses, nil, false},
		{"FinalStatuses", FinalStatuses, Statuses, false},
		{"ResultStatuses", ResultStatuses, FinalStatuses, false},
		{"StepTypes", StepTypes, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.list) == 0 {
				t.Fatal("empty")
			}
			seen := map[string]bool{}
			for _, v := range tt.list {
				if v == "" || seen[v] {
					t.Errorf("empty or repeated value %q", v)
				}
				seen[v] = true
				if tt.within != nil && !slices.Contains(tt.within, v) {
					t.Errorf("%q is not in %v", v, tt.within)
				}
			}
			if tt.sorted && !slices.IsSorted(tt.list) {
				t.Errorf("not sorted: %v", tt.list)
			}
		})
	}
}
