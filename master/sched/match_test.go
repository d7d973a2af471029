package sched

import (
	"slices"
	"testing"

	"github.com/kiln-build/kiln/master/state"
)

func ready(id int64, priority int, tags ...string) state.Candidate {
	return state.Candidate{ID: id, Builder: "b", Tags: tags, Priority: priority, Readiness: state.Readiness{Ready: true}}
}

func worker(slots int, tags ...string) live {
	return live{tags: set(tags...), slots: slots, connected: true}
}

func TestMatch(t *testing.T) {
	waiting := state.Candidate{ID: 1, Readiness: state.Readiness{Wait: "dependency x is pending"}}
	doomed := state.Candidate{ID: 2, Readiness: state.Readiness{Skip: "dependency x ended failure"}}
	draining := worker(4)
	draining.draining = true
	gone := worker(4)
	gone.connected = false

	tests := []struct {
		name    string
		queue   []state.Candidate
		workers map[string]live
		running map[string]int
		want    []assignment
	}{
		{
			name:    "higher priority first, then older",
			queue:   []state.Candidate{ready(5, 0), ready(3, 0), ready(9, 2), ready(7, 1)},
			workers: map[string]live{"w": worker(3)},
			want:    []assignment{{9, "w"}, {7, "w"}, {3, "w"}},
		},
		{
			name:    "negative priority goes after the default",
			queue:   []state.Candidate{ready(1, -1), ready(2, 0)},
			workers: map[string]live{"w": worker(1)},
			want:    []assignment{{2, "w"}},
		},
		{
			name:  "a request goes only to a worker having all its tags",
			queue: []state.Candidate{ready(1, 0, "debian", "big"), ready(2, 0, "debian", "big")},
			workers: map[string]live{
				"a": worker(4, "debian"), "b": worker(4, "big"), "c": worker(1, "big", "debian", "arm"),
			},
			want: []assignment{{1, "c"}},
		},
		{
			name:    "an unmatched request does not hold back those behind it",
			queue:   []state.Candidate{ready(1, 5, "arm"), ready(2, 0)},
			workers: map[string]live{"w": worker(1, "debian")},
			want:    []assignment{{2, "w"}},
		},
		{
			name:    "a worker with N slots gets at most N",
			queue:   []state.Candidate{ready(1, 0), ready(2, 0), ready(3, 0), ready(4, 0)},
			workers: map[string]live{"w": worker(2)},
			want:    []assignment{{1, "w"}, {2, "w"}},
		},
		{
			name:    "running builds take slots",
			queue:   []state.Candidate{ready(1, 0), ready(2, 0)},
			workers: map[string]live{"w": worker(3)},
			running: map[string]int{"w": 2},
			want:    []assignment{{1, "w"}},
		},
		{
			name:    "a worker running more than its slots (lowered since) gets nothing",
			queue:   []state.Candidate{ready(1, 0)},
			workers: map[string]live{"w": worker(1)},
			running: map[string]int{"w": 3},
		},
		{
			name:    "draining and disconnected workers get nothing",
			queue:   []state.Candidate{ready(1, 0)},
			workers: map[string]live{"d": draining, "g": gone},
		},
		{
			name:    "the worker with most free slots first, ties by name",
			queue:   []state.Candidate{ready(1, 0), ready(2, 0), ready(3, 0), ready(4, 0)},
			workers: map[string]live{"b": worker(3), "a": worker(2)},
			running: map[string]int{"a": 1},
			// free: a 1, b 3 → b (a1 b2) → b (a1 b1) → a (tie) → b
			want: []assignment{{1, "b"}, {2, "b"}, {3, "a"}, {4, "b"}},
		},
		{
			name:    "requests not ready are left alone",
			queue:   []state.Candidate{waiting, doomed, ready(3, 0)},
			workers: map[string]live{"w": worker(4)},
			want:    []assignment{{3, "w"}},
		},
		{
			name:  "no workers",
			queue: []state.Candidate{ready(1, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queue := slices.Clone(tt.queue)
			got := match(queue, tt.workers, tt.running)
			if !slices.Equal(got, tt.want) {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
			if !slices.EqualFunc(queue, tt.queue, func(a, b state.Candidate) bool { return a.ID == b.ID }) {
				t.Errorf("match reordered its input: %v", queue)
			}
		})
	}
}

func TestFreeSlotsCountsRunningBuilds(t *testing.T) {
	busy := worker(2)
	busy.draining = true
	got := freeSlots(map[string]live{"c": worker(4), "a": worker(2), "b": worker(1), "d": busy}, map[string]int{"a": 1, "b": 1, "d": 0})
	var names []string
	var free []int
	for _, s := range got {
		names, free = append(names, s.name), append(free, s.free)
	}
	if !slices.Equal(names, []string{"a", "c"}) || !slices.Equal(free, []int{1, 4}) {
		t.Errorf("free slots %v %v, want [a c] [1 4]", names, free)
	}
}
