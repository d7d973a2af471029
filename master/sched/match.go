package sched

import (
	"cmp"
	"slices"

	"github.com/kiln-build/kiln/master/state"
)

// assignment gives one build request to one worker.
type assignment struct {
	build  int64
	worker string
}

// slot is a worker's spare capacity during one matching.
type slot struct {
	name string
	tags map[string]bool
	free int
}

// freeSlots returns the workers that can take a job now and how many: a
// worker takes jobs while connected and not draining, up to its slots less
// the builds the state says it runs. Ordered by name so matching, and the
// tests and explanations that follow it, are deterministic.
func freeSlots(workers map[string]live, running map[string]int) []*slot {
	var out []*slot
	for name, w := range workers {
		if !w.connected || w.draining {
			continue
		}
		if f := w.slots - running[name]; f > 0 {
			out = append(out, &slot{name: name, tags: w.tags, free: f})
		}
	}
	slices.SortFunc(out, func(a, b *slot) int { return cmp.Compare(a.name, b.name) })
	return out
}

// match gives ready requests to free slots, highest priority first and,
// within a priority, oldest (lowest id) first. A request goes to the worker
// having all its tags with the most free slots, which spreads load; ties go
// to the first by name. A request no free worker matches waits without
// holding back the requests behind it, which may need other tags. Requests
// not ready are left alone.
func match(queue []state.Candidate, workers map[string]live, running map[string]int) []assignment {
	slots := freeSlots(workers, running)
	if len(slots) == 0 {
		return nil
	}
	queue = slices.Clone(queue)
	slices.SortStableFunc(queue, func(a, b state.Candidate) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.ID, b.ID))
	})
	var out []assignment
	for _, c := range queue {
		if !c.Ready {
			continue
		}
		var best *slot
		for _, sl := range slots {
			if sl.free > 0 && hasAll(sl.tags, c.Tags) && (best == nil || sl.free > best.free) {
				best = sl
			}
		}
		if best == nil {
			continue
		}
		best.free--
		out = append(out, assignment{build: c.ID, worker: best.name})
	}
	return out
}

func hasAll(have map[string]bool, need []string) bool {
	for _, t := range need {
		if !have[t] {
			return false
		}
	}
	return true
}
