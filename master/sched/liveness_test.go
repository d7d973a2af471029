package sched

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

func TestSilentWorkerLosesItsBuilds(t *testing.T) {
	type step struct {
		advance   time.Duration
		heartbeat bool
	}
	for _, tt := range []struct {
		name      string
		steps     []step
		want      string // the build after the reaps
		connected bool
	}{
		{"heard within the timeout", []step{{advance: testTimeout}}, "running on w#1", true},
		{"silent past the timeout", []step{{advance: testTimeout + time.Second}}, protocol.StatusPending, false},
		{"heartbeats keep it", []step{{advance: testTimeout - time.Second, heartbeat: true}, {advance: testTimeout - time.Second}}, "running on w#1", true},
		{"silent after a heartbeat", []step{{advance: testTimeout / 2, heartbeat: true}, {advance: testTimeout + time.Second}}, protocol.StatusPending, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.hello("w", 1)
			id := h.force(request{builder: "lib@" + amd64})[0]
			h.pass()
			for _, st := range tt.steps {
				h.clock.advance(st.advance)
				if st.heartbeat {
					h.heartbeat("w", false, id)
				}
				h.s.reapSilent(context.Background())
			}
			if got := h.where(id); got != tt.want {
				t.Fatalf("build is %s, want %s", got, tt.want)
			}
			if got := h.worker("w").Connected; got != tt.connected {
				t.Errorf("worker connected %t, want %t", got, tt.connected)
			}
			if tt.want != protocol.StatusPending {
				return
			}
			b := h.build(id)
			if a := b.Attempts[0]; a.Status != protocol.StatusLost || !strings.Contains(a.Reason, "silent for more than") {
				t.Errorf("attempt %s (%q), want lost for silence", a.Status, a.Reason)
			}
			// Requeued: another worker takes it, and the silent one gets
			// nothing more.
			h.hello("other", 1)
			h.pass()
			if got := h.where(id); got != "running on other#2" {
				t.Errorf("requeued build is %s, want running on other#2", got)
			}
		})
	}
}

// A master taking over the lead gives every worker the state says is busy
// one heartbeat timeout from then, whether it never heard of the worker or
// heard of it long ago, in an earlier term.
func TestNewLeaderGivesBusyWorkersOneTimeout(t *testing.T) {
	for _, heardBefore := range []bool{false, true} {
		h := newHarness(t)
		if heardBefore {
			h.hello("w", 1)
		}
		id := h.force(request{builder: "lib@" + amd64})[0]
		// Assigned by whoever led meanwhile.
		if _, err := h.st.Apply(context.Background(), state.Command{Assign: &state.AssignCmd{Build: id, Worker: "w", Time: t0}}); err != nil {
			t.Fatal(err)
		}
		h.clock.advance(time.Hour)
		h.s.live.seed(h.st.RunningCounts())
		h.clock.advance(testTimeout)
		h.s.reapSilent(context.Background())
		if got := h.where(id); got != "running on w#1" {
			t.Fatalf("heard before %t: within a timeout of taking over, the build is %s", heardBefore, got)
		}
		h.clock.advance(time.Second)
		h.s.reapSilent(context.Background())
		if got := h.where(id); got != protocol.StatusPending {
			t.Errorf("heard before %t: a timeout after taking over, the build is %s, want pending", heardBefore, got)
		}
	}
}

func TestLostTooOftenEndsAsException(t *testing.T) {
	for _, tt := range []struct {
		maxAttempts, losses int
		want                string
	}{
		{maxAttempts: 2, losses: 1, want: protocol.StatusPending},
		{maxAttempts: 2, losses: 2, want: protocol.StatusException},
		{maxAttempts: 3, losses: 2, want: protocol.StatusPending},
		{maxAttempts: 0, losses: 4, want: protocol.StatusPending}, // 0: no limit
	} {
		h := newHarness(t, func(o *Options) { o.MaxAttempts = tt.maxAttempts })
		id := h.force(request{builder: "lib@" + amd64})[0]
		for i := range tt.losses {
			h.hello("w", 1)
			h.pass()
			if got, want := h.where(id), "running on w#"+state.FormatID(int64(i+1)); got != want {
				t.Fatalf("max %d, loss %d: build is %s, want %s", tt.maxAttempts, i+1, got, want)
			}
			h.clock.advance(testTimeout + time.Second)
			h.s.reapSilent(context.Background())
		}
		b := h.build(id)
		if b.Status != tt.want {
			t.Errorf("max %d, %d losses: build is %s, want %s", tt.maxAttempts, tt.losses, b.Status, tt.want)
		}
		if tt.want == protocol.StatusException && !strings.HasPrefix(b.Summary, "lost 2 times") {
			t.Errorf("exception summary %q", b.Summary)
		}
	}
}

func TestHelloReconcilesRunningBuilds(t *testing.T) {
	const b1, b2 = "lib@" + amd64, "lib@" + arm64
	for _, tt := range []struct {
		name string
		// awayFor is how long w is silent before it says hello again, with
		// a reap at the end; another worker then gets what w lost.
		awayFor    time.Duration
		reports    []int // which of the two builds w's hello lists; 2 names an unknown build
		wantCancel []int
		want       []string
	}{
		{"reconnect with everything", time.Second, []int{0, 1}, nil, []string{"running on w#1", "running on w#1"}},
		{"reconnect without one", time.Second, []int{0}, nil, []string{"running on w#1", "running on other#2"}},
		{"return after the builds were given away", testTimeout + time.Second, []int{0, 1}, []int{0, 1}, []string{"running on other#2", "running on other#2"}},
		{"unknown build", time.Second, []int{0, 1, 2}, []int{2}, []string{"running on w#1", "running on w#1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.hello("w", 2)
			ids := h.force(request{builder: b1}, request{builder: b2})
			ids = append(ids, 999)
			h.pass()
			h.clock.advance(tt.awayFor)
			h.s.reapSilent(context.Background())
			h.hello("other", 2)
			h.pass()

			var reported []int64
			for _, i := range tt.reports {
				reported = append(reported, ids[i])
			}
			r := h.helloRunning("w", 2, nil, reported)
			var wantCancel []string
			for _, i := range tt.wantCancel {
				wantCancel = append(wantCancel, state.FormatID(ids[i]))
			}
			if !slices.Equal(r.Cancel, wantCancel) {
				t.Errorf("told to cancel %v, want %v", r.Cancel, wantCancel)
			}
			h.pass()
			if got := []string{h.where(ids[0]), h.where(ids[1])}; !slices.Equal(got, tt.want) {
				t.Errorf("builds are %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHeartbeatNamesBuildsToCancel(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 1)
	id := h.force(request{builder: "lib@" + amd64})[0]
	h.pass()
	if got := h.heartbeat("w", false, id); len(got) != 0 {
		t.Errorf("told to cancel its own build: %v", got)
	}
	if _, err := h.st.Apply(context.Background(), state.Command{Cancel: &state.CancelCmd{Build: id, Reason: "test", Time: t0}}); err != nil {
		t.Fatal(err)
	}
	if got := h.heartbeat("w", false, id, 999); !slices.Equal(got, []string{state.FormatID(id), "999"}) {
		t.Errorf("after the build was cancelled, told to cancel %v", got)
	}
	if got := h.s.Heartbeat(protocol.Heartbeat{V: protocol.Version, Worker: "stranger", Running: []string{"999"}}); got != nil {
		t.Errorf("a worker that never said hello is told to cancel %v", got)
	}
}

func TestHeartbeatFromAnotherProcessIsIgnored(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 1)
	h.clock.advance(testTimeout / 2)
	cancel := h.s.Heartbeat(protocol.Heartbeat{V: protocol.Version, Worker: "w", Instance: "impostor", Running: []string{"999"}})
	if cancel != nil {
		t.Errorf("a foreign process is told to cancel %v", cancel)
	}
	if got := h.worker("w").LastSeen; !got.Equal(t0) {
		t.Errorf("a foreign process refreshed liveness to %s", got)
	}
}

func TestHeartbeatEndsRefusalPause(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 1)
	h.s.live.markBusy("w")
	id := h.force(request{builder: "lib@" + amd64})[0]
	h.pass()
	if got := h.where(id); got != protocol.StatusPending {
		t.Fatalf("a worker that refused got a job: %s", got)
	}
	h.heartbeat("w", true)
	h.pass()
	if got := h.where(id); got != protocol.StatusPending {
		t.Fatalf("a draining worker got a job: %s", got)
	}
	h.woke()
	h.heartbeat("w", false)
	if !h.woke() {
		t.Error("a worker ready again did not wake the scheduler")
	}
	h.heartbeat("w", false)
	if h.woke() {
		t.Error("a worker already free woke the scheduler on every heartbeat")
	}
	h.pass()
	if got := h.where(id); got != "running on w#1" {
		t.Errorf("after a heartbeat without draining the build is %s", got)
	}
}

func TestHelloRefusesSecondProcess(t *testing.T) {
	for _, tt := range []struct {
		name      string
		first     string
		after     time.Duration
		second    string
		duplicate bool
	}{
		{"same process reconnecting", "p1", time.Second, "p1", false},
		{"another process while the first is alive", "p1", testTimeout, "p2", true},
		{"another process after the first went silent", "p1", testTimeout + time.Second, "p2", false},
		{"a worker too old to name its process", "", time.Second, "p2", false},
		{"a second process too old to name itself", "p1", time.Second, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			if r, err := h.s.Hello(ctx, protocol.Hello{V: protocol.Version, Worker: "w", Slots: 1, Instance: tt.first}, 0); err != nil || !r.OK {
				t.Fatalf("first hello: %+v %v", r, err)
			}
			h.clock.advance(tt.after)
			r, err := h.s.Hello(ctx, protocol.Hello{V: protocol.Version, Worker: "w", Slots: 1, Instance: tt.second}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Duplicate != tt.duplicate || r.OK == tt.duplicate {
				t.Errorf("second hello %+v, want duplicate %t", r, tt.duplicate)
			}
			if tt.duplicate && !strings.Contains(r.Error, "another process") {
				t.Errorf("refusal %q does not say why", r.Error)
			}
		})
	}
}

func TestHelloRecordsWorker(t *testing.T) {
	for _, tt := range []struct {
		helloSlots, configured, want int
	}{
		{3, 5, 3},
		{0, 5, 5},
		{0, 0, 1},
	} {
		h := newHarness(t)
		r, err := h.s.Hello(context.Background(), protocol.Hello{V: protocol.Version, Worker: "w", KilnVersion: "1.2", Tags: []string{"z", "a"}, Slots: tt.helloSlots}, tt.configured)
		if err != nil || !r.OK || r.HeartbeatInterval != testTimeout/3 {
			t.Fatalf("hello: %+v %v", r, err)
		}
		w := h.worker("w")
		if w.Slots != tt.want || !slices.Equal(w.Tags, []string{"a", "z"}) || w.KilnVersion != "1.2" || !w.Connected || w.Free != tt.want {
			t.Errorf("slots %d/configured %d: worker %+v, want %d slots", tt.helloSlots, tt.configured, w, tt.want)
		}
	}
}

func TestHelloFailsWhenNotRecorded(t *testing.T) {
	h := newHarness(t)
	h.st.err = state.ErrNotLeader
	_, err := h.s.Hello(context.Background(), protocol.Hello{V: protocol.Version, Worker: "w", Slots: 1}, 0)
	if !errors.Is(err, state.ErrNotLeader) {
		t.Errorf("hello on a master that cannot record it: %v", err)
	}
}
