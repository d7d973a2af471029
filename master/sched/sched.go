// Package sched is the master's dispatcher: it keeps the leader's view of
// connected workers (liveness is observed, not replicated), matches ready
// build requests to free worker slots by tags, priority and age, sends jobs,
// and requeues builds whose worker went silent. It runs only on the raft
// leader and is driven by events, not polling: every state change that can
// free a slot or ready a request wakes it.
package sched

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// Options configure a Scheduler.
type Options struct {
	Node             *state.Node
	Conn             *nats.Conn
	Matrix           func() *builders.Matrix
	HeartbeatTimeout time.Duration
	MaxAttempts      int
	JobTimeout       time.Duration // how long a worker has to ack a job; default 5s
	Logger           *slog.Logger
	// Repo, when set, names a target's dev channel and its armored public
	// key for jobs, so builds can install their dependencies' packages.
	Repo func(target string) (url, key string)
}

// Scheduler dispatches builds to workers.
type Scheduler struct {
	o    Options
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	workers map[string]*live
	leader  bool

	sends sync.WaitGroup // job deliveries in flight
}

// live is the leader's observation of one worker.
type live struct {
	tags      map[string]bool
	slots     int
	connected bool
	draining  bool
	lastSeen  time.Time
	instance  string // of the process last admitted by Hello; empty: unknown
}

// WorkerStatus is a worker as operators see it.
type WorkerStatus struct {
	state.WorkerRecord
	Connected bool      `json:"connected"`
	Draining  bool      `json:"draining"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Running   []int64   `json:"running"`
	Free      int       `json:"free"`
}

// New returns a scheduler; Run drives it.
func New(o Options) *Scheduler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.JobTimeout == 0 {
		o.JobTimeout = 5 * time.Second
	}
	return &Scheduler{o: o, log: o.Logger.With("component", "sched"), wake: make(chan struct{}, 1), workers: map[string]*live{}}
}

// Wake asks for a scheduling pass soon. Wakes coalesce.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run schedules until ctx ends. Call it while this master leads.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.sends.Wait()
	s.seed()
	interval := max(s.o.HeartbeatTimeout/4, 50*time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	s.Wake()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.leader = false
			s.mu.Unlock()
			return nil
		case <-s.wake:
			s.pass(ctx)
		case <-tick.C:
			s.reapSilent(ctx)
		}
	}
}

// seed gives every worker that the state says runs builds one heartbeat
// timeout from now to show up, so a new leader neither trusts a dead worker
// forever nor declares a live one lost before it could speak.
func (s *Scheduler) seed() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leader = true
	for w, n := range s.o.Node.FSM.RunningCounts() {
		if n == 0 {
			continue
		}
		if _, ok := s.workers[w]; !ok {
			s.workers[w] = &live{lastSeen: now, tags: map[string]bool{}}
		} else {
			s.workers[w].lastSeen = now
		}
	}
}

type slot struct {
	name string
	tags map[string]bool
	free int
}

func (s *Scheduler) freeSlots() []*slot {
	counts := s.o.Node.FSM.RunningCounts()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*slot
	for name, w := range s.workers {
		if !w.connected || w.draining {
			continue
		}
		if f := w.slots - counts[name]; f > 0 {
			out = append(out, &slot{name: name, tags: w.tags, free: f})
		}
	}
	// Deterministic order keeps tests and explanations stable.
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
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

// pass dispatches every ready request that a free matching slot can take
// and ends requests whose dependencies failed.
func (s *Scheduler) pass(ctx context.Context) {
	slots := s.freeSlots()
	queue := s.o.Node.FSM.Queue()
	now := time.Now()
	var cmds []state.Command
	for _, c := range queue {
		if c.Skip != "" {
			cmds = append(cmds, state.Command{Skip: &state.SkipCmd{Build: c.ID, Reason: c.Skip, Time: now}})
			continue
		}
		if !c.Ready {
			continue
		}
		// The matching worker with the most free slots spreads load.
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
		cmds = append(cmds, state.Command{Assign: &state.AssignCmd{Build: c.ID, Worker: best.name, Time: now}})
	}
	if len(cmds) == 0 {
		return
	}
	outs, err := s.o.Node.Apply(ctx, cmds...)
	if err != nil {
		s.log.Warn("scheduling pass not applied", "err", err)
		return
	}
	skipped := false
	for i, c := range cmds {
		switch {
		case c.Skip != nil:
			skipped = true
		case c.Assign != nil && outs[i].Err == nil:
			s.send(ctx, c.Assign.Build, c.Assign.Worker, outs[i].Attempt)
		}
	}
	if skipped {
		// A skipped build may be the dependency others wait on.
		s.Wake()
	}
}

// send delivers a job and waits for the worker's ack in the background; a
// refusal or silence puts the build back in the queue.
func (s *Scheduler) send(ctx context.Context, id int64, worker string, attempt int) {
	b, err := s.o.Node.FSM.Build(id)
	if err != nil {
		return
	}
	job, err := s.jobFor(b, attempt)
	if err != nil {
		s.log.Error("build cannot be dispatched", "build", id, "err", err)
		_, _ = s.o.Node.Apply(ctx, state.Command{Finish: &state.FinishCmd{Time: time.Now(), Result: protocol.Result{
			V: protocol.Version, Worker: worker, Build: job.Build, Attempt: attempt, Status: protocol.StatusException, Summary: err.Error(), Ended: time.Now(),
		}}})
		return
	}
	data := protocol.Encode(job)
	s.sends.Add(1)
	go func() {
		defer s.sends.Done()
		reason := ""
		msg, err := s.o.Conn.RequestWithContext(withTimeout(ctx, s.o.JobTimeout), protocol.JobSubject(worker), data)
		if err != nil {
			reason = fmt.Sprintf("job not delivered: %v", err)
			s.markGone(worker)
		} else {
			var ack protocol.Ack
			if err := protocol.Decode(msg.Data, &ack); err != nil {
				reason = fmt.Sprintf("bad ack: %v", err)
			} else if !ack.OK {
				reason = "worker refused: " + ack.Error
				s.markBusy(worker)
			}
		}
		if reason == "" {
			return
		}
		s.log.Warn("job returned to queue", "build", id, "worker", worker, "reason", reason)
		if _, err := s.o.Node.Apply(context.WithoutCancel(ctx), state.Command{Unassign: &state.UnassignCmd{Build: id, Attempt: attempt, Reason: reason, Time: time.Now()}}); err != nil {
			s.log.Warn("unassign not applied", "build", id, "err", err)
		}
		s.Wake()
	}()
}

// withTimeout bounds a request without leaking the cancel func: the
// deadline's timer is released when it fires or the parent ends.
func withTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(c, cancel)
	return c
}

func (s *Scheduler) markGone(worker string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.workers[worker]; ok {
		w.connected = false
	}
}

// markBusy stops sending to a worker that refused until its next heartbeat
// says how it is.
func (s *Scheduler) markBusy(worker string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.workers[worker]; ok {
		w.draining = true
	}
}

// jobFor resolves a build's builder in the current configuration into a job.
func (s *Scheduler) jobFor(b *state.Build, attempt int) (protocol.Job, error) {
	job := protocol.Job{V: protocol.Version, Build: state.FormatID(b.ID), Attempt: attempt, Builder: b.Builder,
		Component: b.Component, Target: b.Target, Revision: b.Revision}
	bl, ok := s.o.Matrix().Builder(b.Builder)
	if !ok {
		return job, fmt.Errorf("builder %s is no longer in the configuration", b.Builder)
	}
	job.Format = bl.Format
	if s.o.Repo != nil {
		job.RepoURL, job.RepoKey = s.o.Repo(b.Target)
	}
	if bl.Component != nil {
		job.Git = bl.Component.Git
		if len(bl.Component.Branches) > 0 {
			job.Branch = bl.Component.Branches[0]
		}
	}
	// Only configured properties: what an earlier attempt set is its own.
	job.Properties = maps.Clone(bl.Properties)
	for _, st := range bl.Steps {
		job.Steps = append(job.Steps, ProtocolStep(st))
	}
	return job, nil
}

// ProtocolStep converts a configured step into its wire form.
func ProtocolStep(st builders.Step) protocol.Step {
	return protocol.Step{Name: st.Name, Type: st.Type, Command: st.Command, Script: st.Script, Env: st.Env,
		Workdir: st.Workdir, Timeout: st.Timeout.D(), SetProperty: st.SetProperty, AllowFailure: st.AllowFailure,
		With: st.With, Artifacts: st.Artifacts}
}

// reapSilent marks the builds of workers silent past the heartbeat timeout
// as lost, which requeues them (or ends them after MaxAttempts).
func (s *Scheduler) reapSilent(ctx context.Context) {
	now := time.Now()
	var gone []string
	s.mu.Lock()
	for name, w := range s.workers {
		if now.Sub(w.lastSeen) > s.o.HeartbeatTimeout {
			if w.connected {
				s.log.Warn("worker silent past heartbeat timeout", "worker", name, "last_seen", w.lastSeen)
			}
			w.connected = false
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.lose(ctx, name, nil, fmt.Sprintf("worker %s silent for more than %s", name, s.o.HeartbeatTimeout))
	}
}

// lose marks the builds running on a worker lost, except those in keep.
func (s *Scheduler) lose(ctx context.Context, worker string, keep map[int64]bool, reason string) {
	var cmds []state.Command
	for id, attempt := range s.o.Node.FSM.RunningOn(worker) {
		if keep[id] {
			continue
		}
		cmds = append(cmds, state.Command{Lost: &state.LostCmd{Build: id, Attempt: attempt, Reason: reason, MaxAttempts: s.o.MaxAttempts, Time: time.Now()}})
	}
	if len(cmds) == 0 {
		return
	}
	if _, err := s.o.Node.Apply(ctx, cmds...); err != nil {
		s.log.Warn("lost builds not recorded", "worker", worker, "err", err)
		return
	}
	s.log.Warn("builds lost", "worker", worker, "count", len(cmds), "reason", reason)
	s.Wake()
}

// Hello admits a (re)connecting worker. Builds it reports that the master
// gave away are to be cancelled; builds the master thinks it runs but it
// does not report are lost.
// A second process under a live worker's name is refused: both would take
// the same jobs.
func (s *Scheduler) Hello(ctx context.Context, h protocol.Hello, configuredSlots int) (protocol.HelloReply, error) {
	if err := s.claim(h.Worker, h.Instance); err != nil {
		return protocol.HelloReply{V: protocol.Version, Error: err.Error(), Duplicate: true}, nil
	}
	rec := state.WorkerRecord{Name: h.Worker, Tags: slices.Clone(h.Tags), Slots: h.Slots, KilnVersion: h.KilnVersion, Protocol: h.V, LastHello: time.Now()}
	if rec.Slots <= 0 {
		rec.Slots = max(configuredSlots, 1)
	}
	slices.Sort(rec.Tags)
	if _, err := s.o.Node.Apply1(ctx, state.Command{Worker: &state.WorkerCmd{Record: rec}}); err != nil {
		return protocol.HelloReply{}, fmt.Errorf("record worker %s: %w", h.Worker, err)
	}
	mine := s.o.Node.FSM.RunningOn(h.Worker)
	reply := protocol.HelloReply{V: protocol.Version, OK: true, HeartbeatInterval: s.heartbeatInterval()}
	keep := map[int64]bool{}
	for _, r := range h.Running {
		id := state.ParseID(r)
		if _, ok := mine[id]; ok {
			keep[id] = true
			continue
		}
		reply.Cancel = append(reply.Cancel, r)
	}
	s.observe(h.Worker, rec.Tags, rec.Slots, false)
	s.lose(ctx, h.Worker, keep, fmt.Sprintf("worker %s reconnected without it", h.Worker))
	s.Wake()
	return reply, nil
}

// claim makes instance the worker's current process unless another one has
// been heard from within the heartbeat timeout. Empty instances come from
// older workers and are let in as before.
func (s *Scheduler) claim(name, instance string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.workers[name]
	if !ok {
		s.workers[name] = &live{tags: map[string]bool{}, lastSeen: time.Now(), instance: instance}
		return nil
	}
	if s.foreign(w, instance) && time.Since(w.lastSeen) <= s.o.HeartbeatTimeout {
		return fmt.Errorf("worker %s is already connected from another process (instance %s); stop it or use another name", name, w.instance)
	}
	w.instance = instance
	return nil
}

// foreign reports whether instance is known not to be w's current process.
func (s *Scheduler) foreign(w *live, instance string) bool {
	return instance != "" && w.instance != "" && instance != w.instance
}

func (s *Scheduler) heartbeatInterval() time.Duration {
	return max(s.o.HeartbeatTimeout/3, 100*time.Millisecond)
}

func (s *Scheduler) observe(name string, tags []string, slots int, draining bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.workers[name]
	if !ok {
		w = &live{}
		s.workers[name] = w
	}
	w.tags = map[string]bool{}
	for _, t := range tags {
		w.tags[t] = true
	}
	w.slots, w.connected, w.draining, w.lastSeen = slots, true, draining, time.Now()
}

// Heartbeat refreshes a worker's liveness. It returns the builds the worker
// runs that are not (or no longer) its own, which it must cancel.
func (s *Scheduler) Heartbeat(hb protocol.Heartbeat) []string {
	rec, known := s.record(hb.Worker)
	if !known {
		// A worker we never heard hello from cannot be scheduled: its tags
		// are unknown. It says hello when it (re)connects.
		return nil
	}
	s.mu.Lock()
	w, ok := s.workers[hb.Worker]
	if ok && s.foreign(w, hb.Instance) {
		// A process the master refused, or one superseded after going
		// silent: its word on liveness and builds is not this worker's.
		s.mu.Unlock()
		return nil
	}
	wasFree := ok && w.connected && !w.draining
	s.mu.Unlock()
	s.observe(hb.Worker, rec.Tags, rec.Slots, hb.Draining)
	if !wasFree && !hb.Draining {
		s.Wake()
	}
	mine := s.o.Node.FSM.RunningOn(hb.Worker)
	var cancel []string
	for _, r := range hb.Running {
		if _, ok := mine[state.ParseID(r)]; !ok {
			cancel = append(cancel, r)
		}
	}
	return cancel
}

func (s *Scheduler) record(name string) (state.WorkerRecord, bool) {
	for _, w := range s.o.Node.FSM.Workers() {
		if w.Name == name {
			return w, true
		}
	}
	return state.WorkerRecord{}, false
}

// Workers reports every known worker with its liveness.
func (s *Scheduler) Workers() []WorkerStatus {
	recs := s.o.Node.FSM.Workers()
	counts := s.o.Node.FSM.RunningCounts()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WorkerStatus, 0, len(recs))
	for _, r := range recs {
		ws := WorkerStatus{WorkerRecord: r, Running: []int64{}}
		for id := range s.o.Node.FSM.RunningOn(r.Name) {
			ws.Running = append(ws.Running, id)
		}
		slices.Sort(ws.Running)
		if w, ok := s.workers[r.Name]; ok {
			ws.Connected, ws.Draining, ws.LastSeen = w.connected, w.draining, w.lastSeen
		}
		ws.Free = max(r.Slots-counts[r.Name], 0)
		out = append(out, ws)
	}
	return out
}

// Explanation says why a request waits.
type Explanation struct {
	Build   int64    `json:"build"`
	Builder string   `json:"builder"`
	Status  string   `json:"status"`
	Reason  string   `json:"reason"`
	Tags    []string `json:"tags,omitempty"`
	// WaitsFor names the dependency, MissingTags the tags no connected
	// worker has, BusyWorkers the matching workers whose slots are all taken.
	WaitsFor    string   `json:"waits_for,omitempty"`
	MissingTags []string `json:"missing_tags,omitempty"`
	BusyWorkers []string `json:"busy_workers,omitempty"`
}

// ErrNotLeading is returned when a question needs the leader's view.
var ErrNotLeading = errors.New("this master is not scheduling (not the leader)")

// Explain answers why a request has not started.
func (s *Scheduler) Explain(id int64) (*Explanation, error) {
	b, r, err := s.o.Node.FSM.ReadinessOf(id)
	if err != nil {
		return nil, err
	}
	e := &Explanation{Build: id, Builder: b.Builder, Status: b.Status, Tags: b.Tags}
	switch {
	case b.Status != protocol.StatusPending:
		e.Reason = fmt.Sprintf("not waiting: build is %s", b.Status)
		if b.Summary != "" {
			e.Reason += " (" + b.Summary + ")"
		}
		if b.Worker != "" {
			e.Reason += " on " + b.Worker
		}
		return e, nil
	case r.Skip != "":
		e.Reason = "will be skipped: " + r.Skip
		return e, nil
	case !r.Ready:
		e.WaitsFor, e.Reason = r.Wait, "waits for "+r.Wait
		return e, nil
	}
	counts := s.o.Node.FSM.RunningCounts()
	s.mu.Lock()
	leading := s.leader
	have := map[string]bool{}
	var matching, busy []string
	for name, w := range s.workers {
		if !w.connected {
			continue
		}
		for t := range w.tags {
			have[t] = true
		}
		if hasAll(w.tags, b.Tags) {
			matching = append(matching, name)
			if w.draining || counts[name] >= w.slots {
				busy = append(busy, name)
			}
		}
	}
	s.mu.Unlock()
	slices.Sort(busy)
	for _, t := range b.Tags {
		if !have[t] {
			e.MissingTags = append(e.MissingTags, t)
		}
	}
	switch {
	case !leading:
		return nil, ErrNotLeading
	case len(e.MissingTags) > 0:
		e.Reason = "no connected worker has tags " + strings.Join(e.MissingTags, ", ")
	case len(matching) == 0:
		e.Reason = "no connected worker has all of tags " + strings.Join(b.Tags, ", ")
	case len(busy) == len(matching):
		e.BusyWorkers = busy
		e.Reason = "all slots busy on matching workers " + strings.Join(busy, ", ")
	default:
		e.Reason = "ready: being dispatched (or queued behind higher-priority or older requests)"
	}
	return e, nil
}
