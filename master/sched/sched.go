// Package sched is the master's dispatcher. It owns the leader's view of
// connected workers (liveness is observed, not replicated), the matching of
// ready build requests to free worker slots by tags, priority and age, the
// turning of a dispatched build into a job, and the requeueing of builds
// whose worker went silent. It runs only on the raft leader and is driven by
// events, not polling: every state change that can free a slot or ready a
// request wakes it.
//
// It reads and changes the farm's state through State and Applier and
// reaches workers through Sender, so it knows nothing of raft or NATS and
// can be tested in memory.
package sched

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// State is what the scheduler reads of the replicated state. *state.FSM
// satisfies it.
type State interface {
	// Queue returns the pending builds with their readiness.
	Queue() []state.Candidate
	Build(id int64) (*state.Build, error)
	ReadinessOf(id int64) (*state.Build, state.Readiness, error)
	// RunningOn returns the builds a worker runs and their current attempts.
	RunningOn(worker string) map[int64]int
	RunningCounts() map[string]int
	Workers() []state.WorkerRecord
}

// Applier commits commands to the replicated state and returns one outcome
// per command. *state.Node satisfies it.
type Applier interface {
	Apply(ctx context.Context, cmds ...state.Command) ([]state.Outcome, error)
}

// Sender delivers jobs to workers.
type Sender interface {
	// SendJob delivers a job to a worker and returns the worker's answer.
	// ctx carries the deadline for that answer (Options.JobTimeout). An
	// error wrapping ErrNotDelivered means no answer came; any other error
	// means one came but could not be read. Either way the build goes back
	// to the queue, with the error's text as the reason.
	SendJob(ctx context.Context, worker string, job protocol.Job) (protocol.Ack, error)
}

// ErrNotDelivered marks a job the worker never answered (nobody listening,
// timeout, connection lost). The scheduler then takes the worker as gone
// until it speaks again, rather than keep sending it jobs.
var ErrNotDelivered = errors.New("job not delivered")

// JobRepo is what a job is told of its target's dev channel: where it is
// and the armored public key that signs it, so a build can install the
// packages its dependencies published moments before (both empty when
// nothing is published for the target), and the versions the builder
// already has there, so a rebuild can pick a higher one.
type JobRepo struct {
	URL, Key  string
	Published []string
}

// JobRepos tells a job of its builder's dev channel (see JobRepo).
type JobRepos func(builder, target string) JobRepo

// The farm's own state must keep satisfying what the scheduler reads and
// applies; a change there should break this package's build, not the master.
var (
	_ State   = (*state.FSM)(nil)
	_ Applier = (*state.Node)(nil)
)

// Options configure a Scheduler.
type Options struct {
	State   State   // the replicated state, read
	Applier Applier // where the scheduler's decisions are committed
	Sender  Sender
	// Matrix is the current configuration: a job is built from its
	// builder as configured when it is dispatched, not when it was queued.
	Matrix func() *builders.Matrix
	// HeartbeatTimeout is how long a worker may be silent before its
	// builds are lost and another process may take its name.
	HeartbeatTimeout time.Duration
	// MaxAttempts is how many lost attempts end a build as an exception
	// rather than requeue it; 0: no limit.
	MaxAttempts int
	JobTimeout  time.Duration // how long a worker has to ack a job; default 5s
	Logger      *slog.Logger
	// JobRepos, when set, fills a job's RepoURL, RepoKey and Published.
	JobRepos JobRepos
	// Now is the clock for liveness and for the times commands record;
	// default time.Now. Tests set it to decide who is silent without waiting.
	Now func() time.Time
}

// Scheduler dispatches builds to workers.
type Scheduler struct {
	o      Options
	log    *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	live   *liveness
	leader atomic.Bool

	sends sync.WaitGroup // job deliveries in flight; Run waits for them
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
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger.With("component", "sched")
	return &Scheduler{o: o, log: log, now: o.Now, wake: make(chan struct{}, 1), live: newLiveness(o.HeartbeatTimeout, o.Now, log)}
}

// Wake asks for a scheduling pass soon. Wakes coalesce.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run schedules until ctx ends. Call it while this master leads. It returns
// once every job it sent has been answered or given up on.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.sends.Wait()
	s.live.seed(s.o.State.RunningCounts())
	s.leader.Store(true)
	defer s.leader.Store(false)
	tick := time.NewTicker(max(s.o.HeartbeatTimeout/4, 50*time.Millisecond))
	defer tick.Stop()
	s.Wake()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
			s.pass(ctx)
		case <-tick.C:
			s.reapSilent(ctx)
		}
	}
}

// pass dispatches every ready request that a free matching slot can take
// and ends requests whose dependencies failed.
func (s *Scheduler) pass(ctx context.Context) {
	running := s.o.State.RunningCounts()
	queue := s.o.State.Queue()
	now := s.now()
	var cmds []state.Command
	for _, c := range queue {
		if c.Skip != "" {
			cmds = append(cmds, state.Command{Skip: &state.SkipCmd{Build: c.ID, Reason: c.Skip, Time: now}})
		}
	}
	skips := len(cmds)
	for _, a := range match(queue, s.live.snapshot(), running) {
		cmds = append(cmds, state.Command{Assign: &state.AssignCmd{Build: a.build, Worker: a.worker, Time: now}})
	}
	if len(cmds) == 0 {
		return
	}
	outs, err := s.o.Applier.Apply(ctx, cmds...)
	if err == nil && len(outs) != len(cmds) {
		err = fmt.Errorf("%d outcomes for %d commands", len(outs), len(cmds))
	}
	if err != nil {
		s.log.Warn("scheduling pass not applied", "err", err)
		return
	}
	for i, c := range cmds[skips:] {
		// An assign the state refused (the build was cancelled meanwhile)
		// sends nothing.
		if out := outs[skips+i]; out.Err == nil {
			s.send(ctx, c.Assign.Build, c.Assign.Worker, out.Attempt)
		}
	}
	if skips > 0 {
		// A skipped build may be the dependency others wait on.
		s.Wake()
	}
}

// reapSilent marks the builds of workers silent past the heartbeat timeout
// as lost, which requeues them (or ends them after MaxAttempts).
func (s *Scheduler) reapSilent(ctx context.Context) {
	for _, name := range s.live.silent() {
		s.lose(ctx, name, nil, fmt.Sprintf("worker %s silent for more than %s", name, s.o.HeartbeatTimeout))
	}
}

// lose marks the builds running on a worker lost, except those in keep.
func (s *Scheduler) lose(ctx context.Context, worker string, keep map[int64]bool, reason string) {
	now := s.now()
	var cmds []state.Command
	for id, attempt := range s.o.State.RunningOn(worker) {
		if keep[id] {
			continue
		}
		cmds = append(cmds, state.Command{Lost: &state.LostCmd{Build: id, Attempt: attempt, Reason: reason, MaxAttempts: s.o.MaxAttempts, Time: now}})
	}
	if len(cmds) == 0 {
		return
	}
	if _, err := s.o.Applier.Apply(ctx, cmds...); err != nil {
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
	if err := s.live.claim(h.Worker, h.Instance); err != nil {
		return protocol.HelloReply{V: protocol.Version, Error: err.Error(), Duplicate: true}, nil
	}
	rec := state.WorkerRecord{Name: h.Worker, Tags: slices.Clone(h.Tags), Slots: h.Slots, KilnVersion: h.KilnVersion, Protocol: h.V, LastHello: s.now()}
	if rec.Slots <= 0 {
		rec.Slots = max(configuredSlots, 1)
	}
	slices.Sort(rec.Tags)
	if err := s.apply1(ctx, state.Command{Worker: &state.WorkerCmd{Record: rec}}); err != nil {
		return protocol.HelloReply{}, fmt.Errorf("record worker %s: %w", h.Worker, err)
	}
	mine := s.o.State.RunningOn(h.Worker)
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
	s.live.observe(h.Worker, rec.Tags, rec.Slots, false)
	s.lose(ctx, h.Worker, keep, fmt.Sprintf("worker %s reconnected without it", h.Worker))
	s.Wake()
	return reply, nil
}

// apply1 applies one command and returns its refusal, if any, as the error.
func (s *Scheduler) apply1(ctx context.Context, c state.Command) error {
	outs, err := s.o.Applier.Apply(ctx, c)
	switch {
	case err != nil:
		return err
	case len(outs) != 1:
		return fmt.Errorf("%d outcomes for one command", len(outs))
	}
	return outs[0].Err
}

func (s *Scheduler) heartbeatInterval() time.Duration {
	return max(s.o.HeartbeatTimeout/3, 100*time.Millisecond)
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
	admitted, wasFree := s.live.heartbeat(hb.Worker, hb.Instance, rec.Tags, rec.Slots, hb.Draining)
	if !admitted {
		return nil
	}
	if !wasFree && !hb.Draining {
		s.Wake()
	}
	mine := s.o.State.RunningOn(hb.Worker)
	var cancel []string
	for _, r := range hb.Running {
		if _, ok := mine[state.ParseID(r)]; !ok {
			cancel = append(cancel, r)
		}
	}
	return cancel
}

func (s *Scheduler) record(name string) (state.WorkerRecord, bool) {
	for _, w := range s.o.State.Workers() {
		if w.Name == name {
			return w, true
		}
	}
	return state.WorkerRecord{}, false
}

// Workers reports every known worker with its liveness.
func (s *Scheduler) Workers() []WorkerStatus {
	recs := s.o.State.Workers()
	counts := s.o.State.RunningCounts()
	seen := s.live.snapshot()
	out := make([]WorkerStatus, 0, len(recs))
	for _, r := range recs {
		ws := WorkerStatus{WorkerRecord: r, Running: []int64{}}
		for id := range s.o.State.RunningOn(r.Name) {
			ws.Running = append(ws.Running, id)
		}
		slices.Sort(ws.Running)
		if w, ok := seen[r.Name]; ok {
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

// Explain answers why a request has not started. What the replicated state
// alone decides (finished, skipped, waiting on a dependency) any master can
// answer; what depends on connected workers only the leader can.
func (s *Scheduler) Explain(id int64) (*Explanation, error) {
	b, r, err := s.o.State.ReadinessOf(id)
	if err != nil {
		return nil, err // names the build and wraps state.ErrNotFound
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
	if !s.leader.Load() {
		return nil, ErrNotLeading
	}
	counts := s.o.State.RunningCounts()
	have := map[string]bool{}
	var matching, busy []string
	for name, w := range s.live.snapshot() {
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
	slices.Sort(busy)
	for _, t := range b.Tags {
		if !have[t] {
			e.MissingTags = append(e.MissingTags, t)
		}
	}
	switch {
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
