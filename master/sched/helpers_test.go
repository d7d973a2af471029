package sched

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

const (
	amd64 = "debian/bookworm/amd64"
	arm64 = "debian/bookworm/arm64"
)

// testConfig has two targets so dependencies can be checked per target:
// app depends on lib on each.
const testConfig = `
targets:
  - distro: debian
    versions: [bookworm]
    arches: [amd64, arm64]
    kind: nfpm
    format: apt
components:
  - {name: lib, git: https://git.example/lib.git, branches: [stable, main]}
  - {name: app, git: https://git.example/app.git, depends: [lib]}
repos:
  channels: [{name: dev, key: k}]
`

func testMatrix(t *testing.T) *builders.Matrix {
	t.Helper()
	cfg, err := builders.LoadBytes("test.yaml", []byte(testConfig))
	if err != nil {
		t.Fatalf("load test config: %v", err)
	}
	m, err := builders.Expand(cfg)
	if err != nil {
		t.Fatalf("expand test config: %v", err)
	}
	return m
}

// memState is the real FSM without raft: each Apply is one log entry, as
// the node makes it, so the scheduler meets the farm's own rules (collapse,
// readiness, attempts) without elections or disks.
type memState struct {
	*state.FSM
	mu    sync.Mutex
	index uint64
	err   error // set: every Apply fails, as on a master that lost leadership
	// before, when set, runs ahead of each Apply with its commands, so a
	// test can change the state between a pass's reads and its writes.
	before func(cmds []state.Command)
}

func newMemState() *memState { return &memState{FSM: state.NewFSM()} }

func (m *memState) Apply(_ context.Context, cmds ...state.Command) ([]state.Outcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if b := m.before; b != nil {
		m.before = nil // once: what it applies comes back through here
		m.mu.Unlock()
		b(cmds)
		m.mu.Lock()
	}
	data, err := json.Marshal(struct {
		V    int             `json:"v"`
		Cmds []state.Command `json:"cmds"`
	}{state.EntryVersion, cmds})
	if err != nil {
		return nil, err
	}
	m.index++
	switch r := m.FSM.Apply(&raft.Log{Index: m.index, Data: data}).(type) {
	case []state.Outcome:
		return r, nil
	case error:
		return nil, r
	default:
		panic("unexpected FSM response")
	}
}

var (
	_ State   = (*memState)(nil)
	_ Applier = (*memState)(nil)
)

// sent is one job the fake sender was asked to deliver.
type sent struct {
	worker      string
	job         protocol.Job
	hasDeadline bool
}

// fakeSender records jobs and answers as answer says (default: accepted).
type fakeSender struct {
	mu     sync.Mutex
	jobs   []sent
	answer func(ctx context.Context, worker string, job protocol.Job) (protocol.Ack, error)
}

func (f *fakeSender) SendJob(ctx context.Context, worker string, job protocol.Job) (protocol.Ack, error) {
	_, ok := ctx.Deadline()
	f.mu.Lock()
	f.jobs = append(f.jobs, sent{worker: worker, job: job, hasDeadline: ok})
	answer := f.answer
	f.mu.Unlock()
	if answer == nil {
		return protocol.Ack{V: protocol.Version, OK: true}, nil
	}
	return answer(ctx, worker, job)
}

func (f *fakeSender) setAnswer(a func(ctx context.Context, worker string, job protocol.Job) (protocol.Ack, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = a
}

func (f *fakeSender) sent() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.jobs...)
}

// sentIDs lists the builds of the jobs sent so far, as "build@worker", by
// build: jobs go out concurrently, so the order they were sent in means
// nothing.
func (f *fakeSender) sentIDs() []string {
	jobs := f.sent()
	slices.SortStableFunc(jobs, func(a, b sent) int {
		return cmp.Compare(state.ParseID(a.job.Build), state.ParseID(b.job.Build))
	})
	var out []string
	for _, s := range jobs {
		out = append(out, s.job.Build+"@"+s.worker)
	}
	return out
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness drives a Scheduler step by step: no Run loop, so every pass and
// every reap happens exactly when a test says.
type harness struct {
	t      *testing.T
	st     *memState
	sender *fakeSender
	clock  *clock
	s      *Scheduler
}

const testTimeout = 30 * time.Second

func newHarness(t *testing.T, edit ...func(*Options)) *harness {
	t.Helper()
	m := testMatrix(t)
	h := &harness{t: t, st: newMemState(), sender: &fakeSender{}, clock: &clock{t: t0}}
	o := Options{
		State: h.st, Applier: h.st, Sender: h.sender,
		Matrix:           func() *builders.Matrix { return m },
		HeartbeatTimeout: testTimeout,
		MaxAttempts:      3,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:              h.clock.now,
	}
	for _, e := range edit {
		e(&o)
	}
	h.s = New(o)
	return h
}

// pass runs one scheduling pass and waits for its deliveries to settle.
func (h *harness) pass() {
	h.s.pass(context.Background())
	h.s.sends.Wait()
}

// woke reports whether anything asked for a pass since the last call, and
// forgets it.
func (h *harness) woke() bool {
	select {
	case <-h.s.wake:
		return true
	default:
		return false
	}
}

// hello admits a worker process and fails the test unless it is accepted.
func (h *harness) hello(worker string, slots int, tags ...string) protocol.HelloReply {
	h.t.Helper()
	return h.helloRunning(worker, slots, tags, nil)
}

func (h *harness) helloRunning(worker string, slots int, tags []string, running []int64) protocol.HelloReply {
	h.t.Helper()
	hl := protocol.Hello{V: protocol.Version, Worker: worker, Tags: tags, Slots: slots, Instance: worker + "-1"}
	for _, id := range running {
		hl.Running = append(hl.Running, state.FormatID(id))
	}
	r, err := h.s.Hello(context.Background(), hl, 0)
	if err != nil || !r.OK {
		h.t.Fatalf("hello %s: %+v, %v", worker, r, err)
	}
	return r
}

// heartbeat sends a heartbeat from the instance hello used.
func (h *harness) heartbeat(worker string, draining bool, running ...int64) []string {
	hb := protocol.Heartbeat{V: protocol.Version, Worker: worker, Draining: draining, Instance: worker + "-1"}
	for _, id := range running {
		hb.Running = append(hb.Running, state.FormatID(id))
	}
	return h.s.Heartbeat(hb)
}

// request describes one build of a forced change, as "component@target".
type request struct {
	builder  string
	deps     []string
	tags     []string
	priority int
	collapse bool
}

// force records one change whose buildset holds the requests, and returns
// their ids in order.
func (h *harness) force(reqs ...request) []int64 {
	h.t.Helper()
	var nbs []state.NewBuild
	for _, r := range reqs {
		comp, target, _ := strings.Cut(r.builder, "@")
		nbs = append(nbs, state.NewBuild{Builder: r.builder, Component: comp, Target: target, Deps: r.deps, Tags: r.tags, Priority: r.priority, Collapse: r.collapse})
	}
	outs, err := h.st.Apply(context.Background(), state.Command{Force: &state.ForceCmd{Component: "test", Reason: "test", Time: h.clock.now(), Builds: nbs}})
	if err != nil || outs[0].Err != nil {
		h.t.Fatalf("force: %v %v", err, outs)
	}
	return outs[0].Builds
}

// finish ends a running build's current attempt as its worker would.
func (h *harness) finish(id int64, status string) {
	h.t.Helper()
	b := h.build(id)
	if b.Status != protocol.StatusRunning {
		h.t.Fatalf("finish %d: build is %s", id, b.Status)
	}
	outs, err := h.st.Apply(context.Background(), state.Command{Finish: &state.FinishCmd{Time: h.clock.now(), Result: protocol.Result{
		V: protocol.Version, Worker: b.Worker, Build: state.FormatID(id), Attempt: b.Attempt, Status: status, Ended: h.clock.now(),
	}}})
	if err != nil || outs[0].Err != nil || outs[0].Stale {
		h.t.Fatalf("finish %d: %v %+v", id, err, outs)
	}
}

func (h *harness) build(id int64) *state.Build {
	h.t.Helper()
	b, err := h.st.Build(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// where says how a build stands: "pending", "skipped", "running on w#2"
// (attempt 2), so a table can say what it expects in one string.
func (h *harness) where(id int64) string {
	h.t.Helper()
	b := h.build(id)
	if b.Status == protocol.StatusRunning {
		return b.Status + " on " + b.Worker + "#" + state.FormatID(int64(b.Attempt))
	}
	return b.Status
}

func (h *harness) worker(name string) WorkerStatus {
	h.t.Helper()
	for _, w := range h.s.Workers() {
		if w.Name == name {
			return w
		}
	}
	h.t.Fatalf("worker %s unknown", name)
	return WorkerStatus{}
}

func set(tags ...string) map[string]bool {
	m := map[string]bool{}
	for _, t := range tags {
		m[t] = true
	}
	return m
}
