package sched

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

func TestExplain(t *testing.T) {
	for _, tt := range []struct {
		name    string
		setup   func(h *harness) int64 // returns the build to explain
		leading bool
		want    Explanation // Build and Builder are not compared
		wantErr error
	}{
		{
			name: "running",
			setup: func(h *harness) int64 {
				h.hello("w", 1)
				id := h.force(request{builder: "lib@" + amd64})[0]
				h.pass()
				return id
			},
			want: Explanation{Status: protocol.StatusRunning, Reason: "not waiting: build is running on w"},
		},
		{
			name: "waits for a dependency, known without leading",
			setup: func(h *harness) int64 {
				return h.force(request{builder: "lib@" + amd64}, request{builder: "app@" + amd64, deps: []string{"lib@" + amd64}})[1]
			},
			want: Explanation{Status: protocol.StatusPending, Reason: "waits for dependency lib@" + amd64 + " (build 3) is pending", WaitsFor: "dependency lib@" + amd64 + " (build 3) is pending"},
		},
		{
			name:    "ready but not leading",
			setup:   func(h *harness) int64 { return h.force(request{builder: "lib@" + amd64})[0] },
			wantErr: ErrNotLeading,
		},
		{
			name: "tags no connected worker has",
			setup: func(h *harness) int64 {
				h.hello("w", 1, "debian")
				return h.force(request{builder: "lib@" + amd64, tags: []string{"debian", "big", "gpu"}})[0]
			},
			leading: true,
			want:    Explanation{Status: protocol.StatusPending, Tags: []string{"debian", "big", "gpu"}, MissingTags: []string{"big", "gpu"}, Reason: "no connected worker has tags big, gpu"},
		},
		{
			name: "tags spread over workers",
			setup: func(h *harness) int64 {
				h.hello("a", 1, "debian")
				h.hello("b", 1, "big")
				return h.force(request{builder: "lib@" + amd64, tags: []string{"debian", "big"}})[0]
			},
			leading: true,
			want:    Explanation{Status: protocol.StatusPending, Tags: []string{"debian", "big"}, Reason: "no connected worker has all of tags debian, big"},
		},
		{
			name: "matching workers busy",
			setup: func(h *harness) int64 {
				h.hello("b", 1)
				h.hello("a", 1)
				h.force(request{builder: "lib@" + amd64}, request{builder: "lib@" + arm64})
				h.pass()
				return h.force(request{builder: "app@" + arm64})[0]
			},
			leading: true,
			want:    Explanation{Status: protocol.StatusPending, BusyWorkers: []string{"a", "b"}, Reason: "all slots busy on matching workers a, b"},
		},
		{
			name: "ready",
			setup: func(h *harness) int64 {
				h.hello("w", 1)
				return h.force(request{builder: "lib@" + amd64})[0]
			},
			leading: true,
			want:    Explanation{Status: protocol.StatusPending, Reason: "ready: being dispatched (or queued behind higher-priority or older requests)"},
		},
		{
			name:    "unknown build",
			setup:   func(h *harness) int64 { return 42 },
			leading: true,
			wantErr: state.ErrNotFound,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id := tt.setup(h)
			h.s.leader.Store(tt.leading)
			e, err := h.s.Explain(id)
			if tt.wantErr != nil || err != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if e.Build != id {
				t.Errorf("explained build %d, asked %d", e.Build, id)
			}
			tt.want.Build, tt.want.Builder = e.Build, e.Builder
			if !equalExplanation(*e, tt.want) {
				t.Errorf("explanation\n%+v\nwant\n%+v", *e, tt.want)
			}
		})
	}
}

func equalExplanation(a, b Explanation) bool {
	return a.Build == b.Build && a.Builder == b.Builder && a.Status == b.Status && a.Reason == b.Reason && a.WaitsFor == b.WaitsFor &&
		slices.Equal(a.Tags, b.Tags) && slices.Equal(a.MissingTags, b.MissingTags) && slices.Equal(a.BusyWorkers, b.BusyWorkers)
}

func TestWorkers(t *testing.T) {
	h := newHarness(t)
	h.hello("a", 3, "debian")
	h.hello("b", 1)
	ids := h.force(request{builder: "lib@" + amd64, tags: []string{"debian"}}, request{builder: "lib@" + arm64, tags: []string{"debian"}})
	h.pass()
	h.clock.advance(time.Second)
	h.heartbeat("b", true)
	// A worker the state remembers but this leader has not heard from.
	if _, err := h.st.Apply(context.Background(), state.Command{Worker: &state.WorkerCmd{Record: state.WorkerRecord{Name: "c", Slots: 2}}}); err != nil {
		t.Fatal(err)
	}
	got := h.s.Workers()
	type view struct {
		name                string
		connected, draining bool
		lastSeen            time.Time
		running             []int64
		free                int
	}
	want := []view{
		{"a", true, false, t0, ids, 1},
		{"b", true, true, t0.Add(time.Second), []int64{}, 1},
		{"c", false, false, time.Time{}, []int64{}, 2},
	}
	if len(got) != len(want) {
		t.Fatalf("workers %+v", got)
	}
	for i, w := range got {
		v := view{w.Name, w.Connected, w.Draining, w.LastSeen, w.Running, w.Free}
		if v.name != want[i].name || v.connected != want[i].connected || v.draining != want[i].draining ||
			!v.lastSeen.Equal(want[i].lastSeen) || !slices.Equal(v.running, want[i].running) || v.free != want[i].free {
			t.Errorf("worker %d: %+v, want %+v", i, v, want[i])
		}
	}
}

func TestWakeCoalesces(t *testing.T) {
	h := newHarness(t)
	h.s.Wake()
	h.s.Wake()
	<-h.s.wake
	select {
	case <-h.s.wake:
		t.Error("two wakes queued two passes")
	default:
	}
}

// TestRunOnRaftNode drives the scheduler through Run against a real
// one-node raft cluster: what the master wires up, minus NATS.
func TestRunOnRaftNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raft node")
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := state.Open(state.NodeOptions{Dir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("raft node did not lead")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := testMatrix(t)
	jobs := make(chan protocol.Job, 4)
	sender := &fakeSender{answer: func(_ context.Context, _ string, job protocol.Job) (protocol.Ack, error) {
		jobs <- job
		return protocol.Ack{V: protocol.Version, OK: true}, nil
	}}
	s := New(Options{State: n.FSM, Applier: n, Sender: sender, Matrix: func() *builders.Matrix { return m },
		HeartbeatTimeout: time.Minute, MaxAttempts: 3, Logger: logger})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	if r, err := s.Hello(ctx, protocol.Hello{V: protocol.Version, Worker: "w", Slots: 1}, 0); err != nil || !r.OK {
		t.Fatalf("hello: %+v %v", r, err)
	}
	out, err := n.Apply1(ctx, state.Command{Force: &state.ForceCmd{Component: "lib", Reason: "test", Time: time.Now(),
		Builds: []state.NewBuild{{Builder: "lib@" + amd64, Component: "lib", Target: amd64}}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Wake()
	select {
	case job := <-jobs:
		if job.Build != state.FormatID(out.Builds[0]) || job.Attempt != 1 {
			t.Errorf("job %+v", job)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no job sent")
	}
	if got := n.FSM.RunningOn("w"); got[out.Builds[0]] != 1 {
		t.Errorf("running on w: %v", got)
	}
	if e, err := s.Explain(out.Builds[0]); err != nil || e.Status != protocol.StatusRunning {
		t.Errorf("explain: %+v %v", e, err)
	}
}
