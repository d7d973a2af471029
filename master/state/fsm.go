package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kiln-build/kiln/protocol"
)

// FSM holds the state and applies commands to it. Readers use the query
// methods, which take the read lock and return copies.
type FSM struct {
	mu        sync.RWMutex
	nextID    int64 // one sequence for changes, buildsets and builds keeps ids unambiguous in URLs and logs
	changes   map[int64]*Change
	buildsets map[int64]*Buildset
	builds    map[int64]*Build
	workers   map[string]*WorkerRecord
	repos     map[string]map[string]*RepoTarget // channel → target → packages

	// Derived indexes, rebuilt on restore.
	pending          map[int64]struct{}
	pendingByBuilder map[string]map[int64]struct{}
	running          map[string]map[int64]struct{} // worker → builds
	lastGood         map[string]int64              // builder → newest successful build
	latest           map[string]int64              // builder → newest build: the grid reads it on every page view
	inBuildset       map[int64]map[string]int64    // buildset → builder → build
	buildIDs         []int64                       // ascending
	changeIDs        []int64
	intake           intakeIndex
}

// NewFSM returns an empty state.
func NewFSM() *FSM {
	f := &FSM{}
	f.reset()
	return f
}

func (f *FSM) reset() {
	f.nextID = 0
	f.changes = map[int64]*Change{}
	f.buildsets = map[int64]*Buildset{}
	f.builds = map[int64]*Build{}
	f.workers = map[string]*WorkerRecord{}
	f.repos = map[string]map[string]*RepoTarget{}
	f.pending = map[int64]struct{}{}
	f.pendingByBuilder = map[string]map[int64]struct{}{}
	f.running = map[string]map[int64]struct{}{}
	f.lastGood = map[string]int64{}
	f.latest = map[string]int64{}
	f.inBuildset = map[int64]map[string]int64{}
	f.buildIDs = nil
	f.changeIDs = nil
	f.intake = newIntakeIndex()
}

// Apply implements raft.FSM. It returns []Outcome, one per command.
func (f *FSM) Apply(l *raft.Log) any {
	var e entry
	if err := json.Unmarshal(l.Data, &e); err != nil {
		return fmt.Errorf("decode raft entry %d: %w", l.Index, err)
	}
	if e.V > EntryVersion {
		return fmt.Errorf("raft entry %d has version %d, this master understands up to %d", l.Index, e.V, EntryVersion)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Outcome, len(e.Cmds))
	for i := range e.Cmds {
		out[i] = f.apply(&e.Cmds[i])
	}
	return out
}

func (f *FSM) apply(c *Command) Outcome {
	switch {
	case c.Force != nil:
		return f.force(c.Force)
	case c.Assign != nil:
		return f.assign(c.Assign)
	case c.Unassign != nil:
		return f.unassign(c.Unassign)
	case c.Step != nil:
		return f.step(c.Step)
	case c.Finish != nil:
		return f.finish(c.Finish)
	case c.Cancel != nil:
		return f.cancel(c.Cancel)
	case c.Skip != nil:
		return f.skip(c.Skip)
	case c.Lost != nil:
		return f.lost(c.Lost)
	case c.Publish != nil:
		return f.publish(c.Publish)
	case c.Worker != nil:
		r := c.Worker.Record
		f.workers[r.Name] = &r
		return Outcome{}
	}
	return Outcome{Err: fmt.Errorf("empty command")}
}

func (f *FSM) newID() int64 {
	f.nextID++
	return f.nextID
}

func (f *FSM) force(c *ForceCmd) Outcome {
	if id, dup := f.intake.duplicate(c); dup {
		return Outcome{Duplicate: true, Change: id, Buildset: f.changes[id].Buildset}
	}
	ch := &Change{ID: f.newID(), Component: c.Component, Target: c.Target, Revision: c.Revision, Ref: c.Ref, Source: c.Source, Reason: c.Reason, Created: c.Time}
	bs := &Buildset{ID: f.newID(), Change: ch.ID, Created: c.Time}
	ch.Buildset = bs.ID
	index := map[string]int64{}
	f.inBuildset[bs.ID] = index
	var out Outcome
	for _, nb := range c.Builds {
		b := &Build{
			ID: f.newID(), Buildset: bs.ID, Change: ch.ID,
			Builder: nb.Builder, Component: nb.Component, Target: nb.Target, Revision: c.Revision,
			Deps: nb.Deps, Tags: nb.Tags, Priority: nb.Priority, Collapse: nb.Collapse,
			Status: protocol.StatusPending, Created: c.Time,
		}
		if b.Collapse {
			for old := range f.pendingByBuilder[b.Builder] {
				ob := f.builds[old]
				ob.Status, ob.SupersededBy, ob.Ended = protocol.StatusSuperseded, b.ID, c.Time
				ob.Summary = fmt.Sprintf("superseded by build %d", b.ID)
				f.unpend(ob)
				out.Finished = append(out.Finished, Ended{Build: ob.ID, Status: ob.Status})
			}
		}
		f.builds[b.ID] = b
		f.buildIDs = append(f.buildIDs, b.ID)
		f.latest[b.Builder] = b.ID
		f.pend(b)
		bs.Builds = append(bs.Builds, b.ID)
		index[b.Builder] = b.ID
	}
	f.changes[ch.ID] = ch
	f.changeIDs = append(f.changeIDs, ch.ID)
	f.intake.add(ch)
	f.buildsets[bs.ID] = bs
	out.Change, out.Buildset, out.Builds = ch.ID, bs.ID, slices.Clone(bs.Builds)
	return out
}

func (f *FSM) pend(b *Build) {
	f.pending[b.ID] = struct{}{}
	m := f.pendingByBuilder[b.Builder]
	if m == nil {
		m = map[int64]struct{}{}
		f.pendingByBuilder[b.Builder] = m
	}
	m[b.ID] = struct{}{}
}

func (f *FSM) unpend(b *Build) {
	delete(f.pending, b.ID)
	if m := f.pendingByBuilder[b.Builder]; m != nil {
		delete(m, b.ID)
		if len(m) == 0 {
			delete(f.pendingByBuilder, b.Builder)
		}
	}
}

func (f *FSM) setRunning(worker string, id int64, on bool) {
	m := f.running[worker]
	if on {
		if m == nil {
			m = map[int64]struct{}{}
			f.running[worker] = m
		}
		m[id] = struct{}{}
		return
	}
	delete(m, id)
	if len(m) == 0 {
		delete(f.running, worker)
	}
}

func (f *FSM) assign(c *AssignCmd) Outcome {
	b, ok := f.builds[c.Build]
	if !ok {
		return Outcome{Err: ErrNotFound}
	}
	if b.Status != protocol.StatusPending {
		return Outcome{Err: fmt.Errorf("build %d is %s: %w", b.ID, b.Status, ErrFinished)}
	}
	f.unpend(b)
	b.Attempt++
	b.Status, b.Worker, b.Steps, b.Properties = protocol.StatusRunning, c.Worker, nil, nil
	b.Attempts = append(b.Attempts, Attempt{N: b.Attempt, Worker: c.Worker, Assigned: c.Time, Status: protocol.StatusRunning})
	f.setRunning(c.Worker, b.ID, true)
	return Outcome{Worker: c.Worker, Attempt: b.Attempt}
}

// current returns the build if attempt is its running attempt.
func (f *FSM) current(id int64, attempt int) (*Build, Outcome, bool) {
	b, ok := f.builds[id]
	if !ok {
		return nil, Outcome{Err: ErrNotFound}, false
	}
	if b.Attempt != attempt || b.Status != protocol.StatusRunning {
		return b, Outcome{Stale: true, Worker: b.Worker, Attempt: b.Attempt}, false
	}
	return b, Outcome{Worker: b.Worker, Attempt: b.Attempt}, true
}

func (f *FSM) endAttempt(b *Build, status, reason string, t time.Time) {
	a := &b.Attempts[len(b.Attempts)-1]
	a.Status, a.Reason, a.Ended = status, reason, t
	f.setRunning(b.Worker, b.ID, false)
}

func (f *FSM) unassign(c *UnassignCmd) Outcome {
	b, out, ok := f.current(c.Build, c.Attempt)
	if !ok {
		return out
	}
	f.endAttempt(b, "refused", c.Reason, c.Time)
	b.Status, b.Worker = protocol.StatusPending, ""
	f.pend(b)
	return out
}

func (f *FSM) step(c *StepCmd) Outcome {
	ev := c.Event
	b, out, ok := f.current(ParseID(ev.Build), ev.Attempt)
	if !ok {
		return out
	}
	if ev.Worker != b.Worker {
		return Outcome{Stale: true}
	}
	a := &b.Attempts[len(b.Attempts)-1]
	if a.Started.IsZero() && !ev.Started.IsZero() {
		out.Dispatched, out.Build, out.DispatchWait = true, b.ID, max(ev.Started.Sub(f.readyAt(b)), 0)
	}
	if a.Started.IsZero() || (!ev.Started.IsZero() && ev.Started.Before(a.Started)) {
		a.Started = ev.Started
	}
	if b.Started.IsZero() {
		b.Started = ev.Started
	}
	s := Step{Index: ev.Step, Name: ev.Name, Status: ev.Status, Summary: ev.Summary, Started: ev.Started, Ended: ev.Ended}
	i := slices.IndexFunc(b.Steps, func(x Step) bool { return x.Index == ev.Step })
	if i < 0 {
		b.Steps = append(b.Steps, s)
		slices.SortFunc(b.Steps, func(x, y Step) int { return x.Index - y.Index })
	} else {
		b.Steps[i] = s
	}
	mergeProps(b, ev.Properties)
	return out
}

func mergeProps(b *Build, p map[string]string) {
	if len(p) == 0 {
		return
	}
	if b.Properties == nil {
		b.Properties = map[string]string{}
	}
	for k, v := range p {
		b.Properties[k] = v
	}
}

func (f *FSM) finish(c *FinishCmd) Outcome {
	r := c.Result
	b, out, ok := f.current(ParseID(r.Build), r.Attempt)
	if !ok {
		if b != nil && b.Attempt == r.Attempt && Terminal(b.Status) && len(b.Attempts) > 0 && b.Attempts[len(b.Attempts)-1].Worker == r.Worker {
			// The worker repeats a result we applied but whose ack it missed.
			return Outcome{Duplicate: true, Worker: b.Worker, Attempt: b.Attempt}
		}
		return out
	}
	if r.Worker != b.Worker {
		return Outcome{Stale: true}
	}
	f.endAttempt(b, r.Status, r.Summary, r.Ended)
	a := &b.Attempts[len(b.Attempts)-1]
	if !r.Started.IsZero() {
		a.Started = r.Started
	}
	b.Status, b.Summary, b.Ended = r.Status, r.Summary, r.Ended
	if b.Ended.IsZero() {
		b.Ended = c.Time
	}
	if b.Started.IsZero() {
		b.Started = a.Started
	}
	mergeProps(b, r.Properties)
	if b.Revision == "" {
		// A build of the branch head records what the head was.
		b.Revision = b.Properties["revision"]
	}
	b.Artifacts = r.Artifacts
	out.Finished = []Ended{{Build: b.ID, Status: b.Status}}
	if b.Status == protocol.StatusSuccess {
		if prev, ok := f.lastGood[b.Builder]; !ok || prev < b.ID {
			f.lastGood[b.Builder] = b.ID
		}
	}
	return out
}

func (f *FSM) cancel(c *CancelCmd) Outcome {
	b, ok := f.builds[c.Build]
	if !ok {
		return Outcome{Err: ErrNotFound}
	}
	switch b.Status {
	case protocol.StatusPending:
		f.unpend(b)
	case protocol.StatusRunning:
		f.endAttempt(b, protocol.StatusCancelled, c.Reason, c.Time)
	default:
		return Outcome{Err: fmt.Errorf("build %d is %s: %w", b.ID, b.Status, ErrFinished)}
	}
	b.Status, b.Summary, b.Ended = protocol.StatusCancelled, c.Reason, c.Time
	return Outcome{Worker: b.Worker, Attempt: b.Attempt, Finished: []Ended{{Build: b.ID, Status: b.Status}}}
}

func (f *FSM) skip(c *SkipCmd) Outcome {
	b, ok := f.builds[c.Build]
	if !ok {
		return Outcome{Err: ErrNotFound}
	}
	if b.Status != protocol.StatusPending {
		return Outcome{Err: fmt.Errorf("build %d is %s: %w", b.ID, b.Status, ErrFinished)}
	}
	f.unpend(b)
	b.Status, b.Summary, b.Ended = protocol.StatusSkipped, c.Reason, c.Time
	return Outcome{Finished: []Ended{{Build: b.ID, Status: b.Status}}}
}

func (f *FSM) lost(c *LostCmd) Outcome {
	b, out, ok := f.current(c.Build, c.Attempt)
	if !ok {
		return out
	}
	if c.Worker != "" && c.Worker != b.Worker {
		out.Stale = true
		return out
	}
	f.endAttempt(b, protocol.StatusLost, c.Reason, c.Time)
	lost := 0
	for _, a := range b.Attempts {
		if a.Status == protocol.StatusLost {
			lost++
		}
	}
	if c.MaxAttempts > 0 && lost >= c.MaxAttempts {
		b.Status, b.Ended = protocol.StatusException, c.Time
		b.Summary = fmt.Sprintf("lost %d times, last: %s", lost, c.Reason)
		out.Finished = []Ended{{Build: b.ID, Status: b.Status}}
		return out
	}
	b.Status, b.Worker = protocol.StatusPending, ""
	f.pend(b)
	return out
}

// snapshot is the serialised state: a header line, then one JSON value per
// line, so neither writing nor reading needs the whole state as one buffer.
type snapshotHeader struct {
	V         int   `json:"v"`
	NextID    int64 `json:"next_id"`
	Changes   int   `json:"changes"`
	Buildsets int   `json:"buildsets"`
	Builds    int   `json:"builds"`
	Workers   int   `json:"workers"`
	Repos     int   `json:"repos,omitempty"`
}

type fsmSnapshot struct{ data []byte }

// Snapshot implements raft.FSM. The state is encoded under the read lock so
// the copy is consistent; raft persists it without blocking applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var buf jsonLines
	buf.put(snapshotHeader{V: EntryVersion, NextID: f.nextID, Changes: len(f.changes), Buildsets: len(f.buildsets), Builds: len(f.builds), Workers: len(f.workers), Repos: f.repoCount()})
	for _, id := range f.changeIDs {
		buf.put(f.changes[id])
	}
	for _, id := range sortedKeys(f.buildsets) {
		buf.put(f.buildsets[id])
	}
	for _, id := range f.buildIDs {
		buf.put(f.builds[id])
	}
	for _, name := range sortedKeys(f.workers) {
		buf.put(f.workers[name])
	}
	f.snapshotRepos(&buf)
	if buf.err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", buf.err)
	}
	return &fsmSnapshot{data: buf.b}, nil
}

type jsonLines struct {
	b   []byte
	err error
}

func (j *jsonLines) put(v any) {
	d, err := json.Marshal(v)
	if err != nil && j.err == nil {
		j.err = err
	}
	j.b = append(append(j.b, d...), '\n')
}

func sortedKeys[K int64 | string, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(rc, 1<<20))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("restore snapshot header: %w", err)
	}
	if h.V > EntryVersion {
		return fmt.Errorf("restore snapshot: version %d, this master understands up to %d", h.V, EntryVersion)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
	f.nextID = h.NextID
	for range h.Changes {
		c := &Change{}
		if err := dec.Decode(c); err != nil {
			return fmt.Errorf("restore change: %w", err)
		}
		f.changes[c.ID] = c
		f.changeIDs = append(f.changeIDs, c.ID)
		f.intake.add(c)
	}
	for range h.Buildsets {
		bs := &Buildset{}
		if err := dec.Decode(bs); err != nil {
			return fmt.Errorf("restore buildset: %w", err)
		}
		f.buildsets[bs.ID] = bs
	}
	for range h.Builds {
		b := &Build{}
		if err := dec.Decode(b); err != nil {
			return fmt.Errorf("restore build: %w", err)
		}
		f.builds[b.ID] = b
		f.buildIDs = append(f.buildIDs, b.ID)
		f.latest[b.Builder] = b.ID
		index := f.inBuildset[b.Buildset]
		if index == nil {
			index = map[string]int64{}
			f.inBuildset[b.Buildset] = index
		}
		index[b.Builder] = b.ID
		switch b.Status {
		case protocol.StatusPending:
			f.pend(b)
		case protocol.StatusRunning:
			f.setRunning(b.Worker, b.ID, true)
		case protocol.StatusSuccess:
			if prev, ok := f.lastGood[b.Builder]; !ok || prev < b.ID {
				f.lastGood[b.Builder] = b.ID
			}
		}
	}
	for range h.Workers {
		w := &WorkerRecord{}
		if err := dec.Decode(w); err != nil {
			return fmt.Errorf("restore worker: %w", err)
		}
		f.workers[w.Name] = w
	}
	for range h.Repos {
		r := &repoRecord{}
		if err := dec.Decode(r); err != nil {
			return fmt.Errorf("restore repository: %w", err)
		}
		f.restoreRepo(r)
	}
	return nil
}

// ParseID reads a build id as the protocol carries it; anything else is 0,
// which names no build.
func ParseID(s string) int64 {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
}

// FormatID writes a build id as the protocol carries it.
func FormatID(id int64) string { return strconv.FormatInt(id, 10) }
