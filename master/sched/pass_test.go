package sched

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

func TestPassDispatchesByPriorityThenAge(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 1)
	old := h.force(request{builder: "lib@" + amd64})[0]
	newer := h.force(request{builder: "lib@" + arm64})[0]
	urgent := h.force(request{builder: "app@" + arm64, priority: 10})[0]

	var order []int64
	for range 3 {
		h.pass()
		running := h.st.RunningOn("w")
		if len(running) != 1 {
			t.Fatalf("worker with one slot runs %v", running)
		}
		for id := range running {
			order = append(order, id)
			h.finish(id, protocol.StatusSuccess)
		}
	}
	if want := []int64{urgent, old, newer}; !slices.Equal(order, want) {
		t.Errorf("dispatch order %v, want %v", order, want)
	}
	if got := len(h.sender.sent()); got != 3 {
		t.Errorf("%d jobs sent, want 3", got)
	}
}

func TestPassCountsSlotsAcrossPasses(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 2)
	ids := h.force(request{builder: "lib@" + amd64}, request{builder: "lib@" + arm64}, request{builder: "app@" + amd64}, request{builder: "app@" + arm64})
	h.pass()
	h.pass() // the running builds the state records fill the slots
	if got := h.sender.sentIDs(); len(got) != 2 {
		t.Fatalf("sent %v, want two jobs for two slots", got)
	}
	h.finish(ids[0], protocol.StatusSuccess)
	h.pass()
	if got := h.sender.sentIDs(); len(got) != 3 {
		t.Errorf("after one build ended, sent %v, want a third job", got)
	}
}

func TestPassDispatchesOnlyNewestOfCollapsedRequests(t *testing.T) {
	for _, tt := range []struct {
		collapse bool
		want     []string // statuses of the first and second request
	}{
		{true, []string{protocol.StatusSuperseded, "running on w#1"}},
		{false, []string{"running on w#1", "running on w#1"}},
	} {
		t.Run(map[bool]string{true: "collapse", false: "no collapse"}[tt.collapse], func(t *testing.T) {
			h := newHarness(t)
			first := h.force(request{builder: "lib@" + amd64, collapse: tt.collapse})[0]
			second := h.force(request{builder: "lib@" + amd64, collapse: tt.collapse})[0]
			h.hello("w", 4)
			h.pass()
			if got := []string{h.where(first), h.where(second)}; !slices.Equal(got, tt.want) {
				t.Errorf("builds %d, %d are %v, want %v", first, second, got, tt.want)
			}
			var wantSent []string
			for i, id := range []int64{first, second} {
				if tt.want[i] != protocol.StatusSuperseded {
					wantSent = append(wantSent, state.FormatID(id)+"@w")
				}
			}
			if got := h.sender.sentIDs(); !slices.Equal(got, wantSent) {
				t.Errorf("sent %v, want %v", got, wantSent)
			}
		})
	}
}

// A dependency is per target: app on amd64 waits for lib on amd64 and for
// nothing on arm64.
func TestPassGatesDependentsOnTheirTargetOnly(t *testing.T) {
	for _, tt := range []struct {
		name             string
		libAMD, libARM   string // how each lib ends; "" leaves it running
		wantAMD, wantARM string
	}{
		{"neither dependency done", "", "", protocol.StatusPending, protocol.StatusPending},
		{"one target's dependency done", protocol.StatusSuccess, "", "running on w#1", protocol.StatusPending},
		{"the other target's dependency done", "", protocol.StatusSuccess, protocol.StatusPending, "running on w#1"},
		{"both done", protocol.StatusSuccess, protocol.StatusSuccess, "running on w#1", "running on w#1"},
		{"one target's dependency failed", protocol.StatusFailure, protocol.StatusSuccess, protocol.StatusSkipped, "running on w#1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.hello("w", 8)
			ids := h.force(
				request{builder: "lib@" + amd64}, request{builder: "lib@" + arm64},
				request{builder: "app@" + amd64, deps: []string{"lib@" + amd64}},
				request{builder: "app@" + arm64, deps: []string{"lib@" + arm64}},
			)
			h.pass()
			if got := h.sender.sentIDs(); !slices.Equal(got, []string{state.FormatID(ids[0]) + "@w", state.FormatID(ids[1]) + "@w"}) {
				t.Fatalf("first pass sent %v, want only the two libs", got)
			}
			for i, status := range []string{tt.libAMD, tt.libARM} {
				if status != "" {
					h.finish(ids[i], status)
				}
			}
			h.pass()
			if got := []string{h.where(ids[2]), h.where(ids[3])}; !slices.Equal(got, []string{tt.wantAMD, tt.wantARM}) {
				t.Errorf("app on amd64, arm64: %v, want %v, %v", got, tt.wantAMD, tt.wantARM)
			}
			for _, s := range h.sender.sent() {
				if b := h.build(state.ParseID(s.job.Build)); b.Status == protocol.StatusSkipped {
					t.Errorf("a job was sent for skipped build %s", s.job.Build)
				}
			}
			if tt.wantAMD == protocol.StatusSkipped && !strings.Contains(h.build(ids[2]).Summary, "lib@"+amd64) {
				t.Errorf("skip summary %q does not name the failed dependency", h.build(ids[2]).Summary)
			}
		})
	}
}

func TestPassSendsJobFromCurrentConfiguration(t *testing.T) {
	var asked []string
	h := newHarness(t, func(o *Options) {
		o.JobRepos = func(builder, target string) JobRepo {
			asked = append(asked, builder+" "+target)
			return JobRepo{URL: "https://repo.example/dev/" + target, Key: "KEY", Published: []string{"1.0-1", "1.0-1+b1"}}
		}
	})
	h.hello("w", 1)
	id := h.force(request{builder: "lib@" + arm64})[0]
	h.pass()
	sent := h.sender.sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d jobs, want 1", len(sent))
	}
	j := sent[0].job
	if j.V != protocol.Version || j.Build != state.FormatID(id) || j.Attempt != 1 || j.Builder != "lib@"+arm64 ||
		j.Component != "lib" || j.Target != arm64 || j.Format != "apt" ||
		j.Git != "https://git.example/lib.git" || j.Branch != "stable" || len(j.Steps) == 0 {
		t.Errorf("job %+v", j)
	}
	if j.RepoURL != "https://repo.example/dev/"+arm64 || j.RepoKey != "KEY" || !slices.Equal(asked, []string{"lib@" + arm64 + " " + arm64}) {
		t.Errorf("job repository %q %q, asked for %v", j.RepoURL, j.RepoKey, asked)
	}
	if !slices.Equal(j.Published, []string{"1.0-1", "1.0-1+b1"}) || j.ExactVersions {
		t.Errorf("job published %v, exact versions %v; want the builder's versions, not exact", j.Published, j.ExactVersions)
	}
	if !sent[0].hasDeadline {
		t.Error("job sent without a deadline for the ack")
	}
}

func TestPassEndsBuildWhoseBuilderLeftTheConfiguration(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 1)
	id := h.force(request{builder: "gone@" + amd64})[0]
	h.woke()
	h.pass()
	if !h.woke() {
		t.Error("ending the build did not wake the scheduler for its dependents")
	}
	b := h.build(id)
	if b.Status != protocol.StatusException || !strings.Contains(b.Summary, "no longer in the configuration") {
		t.Errorf("build is %s (%s), want exception", b.Status, b.Summary)
	}
	if got := h.sender.sentIDs(); len(got) != 0 {
		t.Errorf("sent %v for a builder not configured", got)
	}
	if w := h.worker("w"); w.Free != 1 {
		t.Errorf("worker has %d free slots after the exception, want 1", w.Free)
	}
}

func TestPassSendsNothingWhenStateRefuses(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 1)
	id := h.force(request{builder: "lib@" + amd64})[0]
	h.st.err = state.ErrNotLeader
	h.pass()
	h.st.err = nil
	if got := h.sender.sentIDs(); len(got) != 0 {
		t.Errorf("sent %v though nothing was assigned", got)
	}
	if got := h.where(id); got != protocol.StatusPending {
		t.Errorf("build is %s, want pending", got)
	}
}

// A build cancelled between the pass's reading of the queue and its
// assign is refused by the state; no job may go out for it.
func TestPassSendsNothingForRefusedAssign(t *testing.T) {
	h := newHarness(t)
	h.hello("w", 2)
	ids := h.force(request{builder: "lib@" + amd64}, request{builder: "lib@" + arm64})
	h.st.before = func([]state.Command) {
		if _, err := h.st.Apply(context.Background(), state.Command{Cancel: &state.CancelCmd{Build: ids[0], Reason: "test", Time: t0}}); err != nil {
			t.Error(err)
		}
	}
	h.pass()
	if got, want := h.sender.sentIDs(), []string{state.FormatID(ids[1]) + "@w"}; !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if got := []string{h.where(ids[0]), h.where(ids[1])}; !slices.Equal(got, []string{protocol.StatusCancelled, "running on w#1"}) {
		t.Errorf("builds are %v", got)
	}
}

func TestUnackedJobReturnsToQueue(t *testing.T) {
	for _, tt := range []struct {
		name                string
		answer              func() (protocol.Ack, error)
		block               bool // wait for the job timeout instead of answering
		wantReason          string
		connected, draining bool
		redispatched        bool // the next pass sends the build again, to the same worker
	}{
		{
			name:       "refused",
			answer:     func() (protocol.Ack, error) { return protocol.Ack{V: protocol.Version, Error: "no free slot"}, nil },
			wantReason: "worker refused: no free slot", connected: true, draining: true,
		},
		{
			name: "not delivered",
			answer: func() (protocol.Ack, error) {
				return protocol.Ack{}, fmt.Errorf("%w: %w", ErrNotDelivered, errors.New("nats: no responders available for request"))
			},
			wantReason: "job not delivered: nats: no responders available for request", connected: false,
		},
		{
			name:       "no ack before the job timeout",
			block:      true,
			wantReason: "job not delivered: context deadline exceeded", connected: false,
		},
		{
			name:       "unreadable ack",
			answer:     func() (protocol.Ack, error) { return protocol.Ack{}, errors.New("bad ack: decode protocol.Ack: EOF") },
			wantReason: "bad ack", connected: true, redispatched: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.JobTimeout = time.Millisecond })
			h.sender.setAnswer(func(ctx context.Context, _ string, _ protocol.Job) (protocol.Ack, error) {
				if tt.block {
					select {
					case <-ctx.Done():
						return protocol.Ack{}, fmt.Errorf("%w: %w", ErrNotDelivered, ctx.Err())
					case <-time.After(10 * time.Second):
						t.Error("the job timeout did not end the delivery")
						return protocol.Ack{V: protocol.Version, OK: true}, nil
					}
				}
				return tt.answer()
			})
			h.hello("w", 1)
			id := h.force(request{builder: "lib@" + amd64})[0]
			h.woke()
			h.pass()
			b := h.build(id)
			if b.Status != protocol.StatusPending || len(b.Attempts) != 1 {
				t.Fatalf("build is %s with %d attempts, want pending after one", b.Status, len(b.Attempts))
			}
			if a := b.Attempts[0]; a.Status != "refused" || !strings.HasPrefix(a.Reason, tt.wantReason) {
				t.Errorf("attempt %s (%q), want refused (%q...)", a.Status, a.Reason, tt.wantReason)
			}
			if w := h.worker("w"); w.Connected != tt.connected || w.Draining != tt.draining {
				t.Errorf("worker connected %t draining %t, want %t %t", w.Connected, w.Draining, tt.connected, tt.draining)
			}
			if !h.woke() {
				t.Error("returning the build did not wake the scheduler")
			}

			h.sender.setAnswer(nil)
			h.pass()
			if got, want := len(h.sender.sent()) == 2, tt.redispatched; got != want {
				t.Errorf("next pass sent again: %t, want %t (sent %v)", got, want, h.sender.sentIDs())
			}
			if tt.redispatched {
				return
			}
			// The worker is taken back once it speaks again.
			if tt.connected {
				h.heartbeat("w", false)
			} else {
				h.hello("w", 1)
			}
			h.pass()
			if got := h.where(id); got != "running on w#2" {
				t.Errorf("after the worker spoke again the build is %s, want running on w#2", got)
			}
		})
	}
}
