package state

import (
	"fmt"
	"slices"

	"github.com/kiln-build/kiln/protocol"
)

// Build returns a copy of one build.
func (f *FSM) Build(id int64) (*Build, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, ok := f.builds[id]
	if !ok {
		return nil, fmt.Errorf("build %d: %w", id, ErrNotFound)
	}
	return b.clone(), nil
}

// Change returns a copy of one change.
func (f *FSM) Change(id int64) (*Change, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, ok := f.changes[id]
	if !ok {
		return nil, fmt.Errorf("change %d: %w", id, ErrNotFound)
	}
	cc := *c
	return &cc, nil
}

// Filter selects builds; empty fields match all.
type Filter struct {
	Component string
	Target    string
	Status    string
	Statuses  []string // any of these; with Status, either
	Worker    string   // the worker of the current attempt
	Buildset  int64
	Limit     int // 0: no limit
	Offset    int
}

func (q *Filter) match(b *Build) bool {
	if (q.Component != "" && b.Component != q.Component) || (q.Target != "" && b.Target != q.Target) || (q.Worker != "" && b.Worker != q.Worker) {
		return false
	}
	if q.Status == "" && len(q.Statuses) == 0 {
		return true
	}
	return b.Status == q.Status || slices.Contains(q.Statuses, b.Status)
}

func (q *Filter) matchesAll() bool {
	return q.Component == "" && q.Target == "" && q.Worker == "" && q.Status == "" && len(q.Statuses) == 0
}

// Builds returns matching builds, newest first, and how many matched in all.
// Live builds are copies; finished ones are shared, since the state never
// changes a build after it ended and lists of history are the API's hottest
// read: callers must not modify what they get.
func (f *FSM) Builds(q Filter) ([]*Build, int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ids := f.buildIDs
	if q.Buildset != 0 {
		bs, ok := f.buildsets[q.Buildset]
		if !ok {
			return nil, 0
		}
		ids = bs.Builds
	}
	var out []*Build
	if q.matchesAll() {
		// The unfiltered history is the common request (front page, API
		// default): page it without touching the builds it skips.
		end := max(len(ids)-q.Offset, 0)
		start := 0
		if q.Limit > 0 {
			start = max(end-q.Limit, 0)
		}
		for i := end - 1; i >= start; i-- {
			out = append(out, f.builds[ids[i]].view())
		}
		return out, len(ids)
	}
	total := 0
	for i := len(ids) - 1; i >= 0; i-- {
		b := f.builds[ids[i]]
		if !q.match(b) {
			continue
		}
		total++
		if total <= q.Offset || (q.Limit > 0 && len(out) >= q.Limit) {
			continue
		}
		out = append(out, b.view())
	}
	return out, total
}

// view is b for a reader outside the lock: itself once it has ended, a copy
// while it may still change.
func (b *Build) view() *Build {
	if Terminal(b.Status) {
		return b
	}
	return b.clone()
}

// Changes returns changes of component (all when empty), newest first,
// from offset, at most limit (0: all), and how many matched in all.
func (f *FSM) Changes(component string, offset, limit int) ([]*Change, int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*Change
	total := 0
	for i := len(f.changeIDs) - 1; i >= 0; i-- {
		c := f.changes[f.changeIDs[i]]
		if component != "" && c.Component != component {
			continue
		}
		total++
		if total <= offset || (limit > 0 && len(out) >= limit) {
			continue
		}
		cc := *c
		out = append(out, &cc)
	}
	return out, total
}

// Workers returns the worker records, by name.
func (f *FSM) Workers() []WorkerRecord {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]WorkerRecord, 0, len(f.workers))
	for _, n := range sortedKeys(f.workers) {
		w := *f.workers[n]
		w.Tags = slices.Clone(w.Tags)
		out = append(out, w)
	}
	return out
}

// RunningOn returns the builds running on a worker and their current attempts.
func (f *FSM) RunningOn(worker string) map[int64]int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[int64]int, len(f.running[worker]))
	for id := range f.running[worker] {
		out[id] = f.builds[id].Attempt
	}
	return out
}

// RunningCounts returns how many builds each worker runs.
func (f *FSM) RunningCounts() map[string]int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]int, len(f.running))
	for w, m := range f.running {
		out[w] = len(m)
	}
	return out
}

// Readiness of a pending build.
type Readiness struct {
	Ready bool
	// Wait says which dependency the build waits for.
	Wait string
	// Skip says why the build can never run (a dependency failed).
	Skip string
}

// Candidate is a pending build as the scheduler sees it.
type Candidate struct {
	ID       int64
	Builder  string
	Tags     []string
	Priority int
	Readiness
}

// Queue returns the pending builds in dispatch order (priority, then age)
// with their readiness, judged under one consistent view of the state.
func (f *FSM) Queue() []Candidate {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Candidate, 0, len(f.pending))
	for id := range f.pending {
		b := f.builds[id]
		out = append(out, Candidate{ID: id, Builder: b.Builder, Tags: b.Tags, Priority: b.Priority, Readiness: f.readiness(b)})
	}
	slices.SortFunc(out, func(x, y Candidate) int {
		if x.Priority != y.Priority {
			return y.Priority - x.Priority
		}
		return int(x.ID - y.ID)
	})
	return out
}

// ReadinessOf judges one build.
func (f *FSM) ReadinessOf(id int64) (*Build, Readiness, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, ok := f.builds[id]
	if !ok {
		return nil, Readiness{}, fmt.Errorf("build %d: %w", id, ErrNotFound)
	}
	if b.Status != protocol.StatusPending {
		return b.clone(), Readiness{}, nil
	}
	return b.clone(), f.readiness(b), nil
}

// readiness: each dependency builder on the same target must have a
// successful build in this buildset, or, when the buildset does not rebuild
// it, any earlier successful build.
func (f *FSM) readiness(b *Build) Readiness {
	index := f.inBuildset[b.Buildset]
	for _, dep := range b.Deps {
		id, ok := index[dep]
		if !ok {
			if _, ok := f.lastGood[dep]; !ok {
				return Readiness{Wait: fmt.Sprintf("dependency %s has no successful build yet", dep)}
			}
			continue
		}
		in := f.builds[id]
		// A collapsed dependency request lives on in the request that superseded it.
		for in.Status == protocol.StatusSuperseded && in.SupersededBy != 0 {
			in = f.builds[in.SupersededBy]
		}
		switch in.Status {
		case protocol.StatusSuccess:
		case protocol.StatusPending, protocol.StatusRunning:
			return Readiness{Wait: fmt.Sprintf("dependency %s (build %d) is %s", dep, in.ID, in.Status)}
		default:
			return Readiness{Skip: fmt.Sprintf("dependency %s (build %d) ended %s", dep, in.ID, in.Status)}
		}
	}
	return Readiness{Ready: true}
}
