package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// recorder keeps what the dispatcher logged, to assert on the line a
// dropped message leaves.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.lines, msg)
}

// scheduler counts what reaches it.
type scheduler struct {
	mu                 sync.Mutex
	hellos, heartbeats int
}

func (s *scheduler) Hello(context.Context, protocol.Hello, int) (protocol.HelloReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hellos++
	return protocol.HelloReply{V: protocol.Version, OK: true}, nil
}

func (s *scheduler) Heartbeat(protocol.Heartbeat) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heartbeats++
	return nil
}

func (s *scheduler) Wake() {}

type finisher struct{ node *state.Node }

func (f finisher) FinishResult(ctx context.Context, r protocol.Result, _ *slog.Logger) (state.Outcome, error) {
	return f.node.Apply1(ctx, state.Command{Finish: &state.FinishCmd{Result: r, Time: time.Now()}})
}

type conversation struct {
	nc    *nats.Conn
	node  *state.Node
	sched *scheduler
	log   *recorder
	build int64 // running on w1, attempt 1
}

// converse runs a Dispatcher over a real embedded NATS server and a real
// one-node raft, with w1 and w2 configured and one build running on w1.
func converse(t *testing.T) *conversation {
	t.Helper()
	nc := kilntest.NATS(t).Connect("", "")
	node, err := state.Open(state.NodeOptions{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	kilntest.WaitFor(t, 10*time.Second, "raft leadership", node.IsLeader)
	ctx := context.Background()
	out, err := node.Apply1(ctx, state.Command{Force: &state.ForceCmd{Component: "a", Time: time.Now(), Builds: []state.NewBuild{{Builder: "a@t", Target: "t"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Apply1(ctx, state.Command{Assign: &state.AssignCmd{Build: out.Builds[0], Worker: "w1", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	c := &conversation{nc: nc, node: node, sched: &scheduler{}, log: &recorder{}, build: out.Builds[0]}
	d := New(Options{Conn: nc, Node: node, Scheduler: c.sched, Finisher: finisher{node},
		Workers:     func() []builders.Worker { return []builders.Worker{{Name: "w1", Slots: 1}, {Name: "w2", Slots: 1}} },
		MaxAttempts: 3, Logger: slog.New(c.log)})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(runCtx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { stop(); <-done })
	// Run subscribes asynchronously: a flushed round trip proves it is in.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := nc.Request(protocol.HeartbeatSubject("w2"), protocol.Encode(protocol.Heartbeat{V: protocol.Version, Worker: "w2"}), 50*time.Millisecond); err == nil || c.heartbeats() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dispatcher never subscribed")
		}
	}
	return c
}

func (c *conversation) heartbeats() int {
	c.sched.mu.Lock()
	defer c.sched.mu.Unlock()
	return c.sched.heartbeats
}

func (c *conversation) ask(subject string, data []byte) (protocol.Ack, bool) {
	msg, err := c.nc.Request(subject, data, 300*time.Millisecond)
	if err != nil {
		return protocol.Ack{}, false
	}
	var ack protocol.Ack
	_ = protocol.Decode(msg.Data, &ack)
	return ack, true
}

// A malformed or misaddressed worker message is dropped with a log line
// naming why, gets no answer, and reaches neither the scheduler nor raft.
func TestMalformedWorkerMessagesAreDropped(t *testing.T) {
	c := converse(t)
	id := state.FormatID(c.build)
	for _, tc := range []struct {
		name, subject string
		data          []byte
		logged        string
	}{
		{"hello that is not JSON", protocol.HelloSubject("w1"), []byte("{hello"), "dropped malformed hello"},
		{"hello claiming another worker", protocol.HelloSubject("w1"), protocol.Encode(protocol.Hello{V: protocol.Version, Worker: "w2"}), "dropped malformed hello"},
		{"message from an unconfigured worker", protocol.HelloSubject("ghost"), protocol.Encode(protocol.Hello{V: protocol.Version, Worker: "ghost"}), "dropped message from unconfigured worker"},
		{"step event that is not JSON", protocol.EventSubject("w1"), []byte(`{"build":`), "dropped malformed step event"},
		{"result with a made-up status", protocol.ResultSubject("w1"), protocol.Encode(protocol.Result{V: protocol.Version, Worker: "w1", Build: id, Attempt: 1, Status: "victory"}), "dropped malformed result"},
		{"result claiming another worker", protocol.ResultSubject("w1"), protocol.Encode(protocol.Result{V: protocol.Version, Worker: "w2", Build: id, Attempt: 1, Status: protocol.StatusSuccess}), "dropped malformed result"},
		{"unknown kind of message", "kiln.worker.w1.bogus", []byte("{}"), "dropped message of unknown kind"},
		{"subject with extra tokens", "kiln.worker.w1.hello.x", []byte("{}"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, answered := c.ask(tc.subject, tc.data); answered {
				t.Errorf("%s was answered", tc.subject)
			}
			if tc.logged != "" && !c.log.has(tc.logged) {
				t.Errorf("no %q log line; logged %v", tc.logged, c.log.lines)
			}
		})
	}
	c.sched.mu.Lock()
	hellos := c.sched.hellos
	c.sched.mu.Unlock()
	if hellos != 0 {
		t.Errorf("scheduler saw %d hellos", hellos)
	}
	b, err := c.node.FSM.Build(c.build)
	if err != nil || b.Status != protocol.StatusRunning || b.Worker != "w1" || len(b.Steps) != 0 {
		t.Errorf("build after the bad messages: %+v, %v; want running on w1 with no steps", b, err)
	}
}

// A worker stopped mid-build reports the build lost: only the worker
// running it may, and the build is queued again at once.
func TestLostResultRequeuesOnlyFromItsWorker(t *testing.T) {
	c := converse(t)
	lost := protocol.Result{V: protocol.Version, Worker: "w2", Build: state.FormatID(c.build), Attempt: 1, Status: protocol.StatusLost, Summary: "worker stopped mid-build"}
	ack, ok := c.ask(protocol.ResultSubject("w2"), protocol.Encode(lost))
	if !ok || !ack.Cancel {
		t.Errorf("another worker's lost report: answered %v, ack %+v; want a cancel", ok, ack)
	}
	if b, _ := c.node.FSM.Build(c.build); b.Status != protocol.StatusRunning {
		t.Fatalf("another worker gave the build up: %s", b.Status)
	}
	lost.Worker = "w1"
	if ack, ok := c.ask(protocol.ResultSubject("w1"), protocol.Encode(lost)); !ok || !ack.OK || ack.Cancel {
		t.Fatalf("lost report from its worker: answered %v, ack %+v", ok, ack)
	}
	b, err := c.node.FSM.Build(c.build)
	if err != nil || b.Status != protocol.StatusPending || len(b.Attempts) != 1 || b.Attempts[0].Status != protocol.StatusLost ||
		!strings.Contains(b.Attempts[0].Reason, "stopped mid-build") {
		t.Errorf("after the lost report: %+v, %v; want pending again with attempt 1 lost", b, err)
	}
}

// Jobs go out as requests on the worker's job subject: no listener is "not
// delivered" (the scheduler marks the worker gone), an answer that is not an
// ack is an error of its own, and an ack comes back as the worker sent it.
func TestNATSSenderDeliversJobs(t *testing.T) {
	nc := kilntest.NATS(t).Connect("", "")
	s := NewNATSSender(nc)
	job := protocol.Job{V: protocol.Version, Build: "7", Attempt: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.SendJob(ctx, "w1", job); !errors.Is(err, sched.ErrNotDelivered) {
		t.Errorf("nobody listening: %v, want ErrNotDelivered", err)
	}
	sub, err := nc.Subscribe(protocol.JobSubject("w2"), func(m *nats.Msg) { _ = m.Respond([]byte("not json")) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if _, err := s.SendJob(ctx, "w2", job); err == nil || errors.Is(err, sched.ErrNotDelivered) || !strings.Contains(err.Error(), "bad ack") {
		t.Errorf("garbage answer: %v, want a bad ack error", err)
	}
	var got protocol.Job
	sub3, err := nc.Subscribe(protocol.JobSubject("w3"), func(m *nats.Msg) {
		_ = protocol.Decode(m.Data, &got)
		_ = m.Respond(protocol.Encode(protocol.Ack{V: protocol.Version, OK: true}))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub3.Unsubscribe()
	ack, err := s.SendJob(ctx, "w3", job)
	if err != nil || !ack.OK || got.Build != "7" {
		t.Errorf("worker listening: ack %+v, %v, job seen %+v", ack, err, got)
	}
}
