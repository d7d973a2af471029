package state

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kiln-build/kiln/protocol"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// apply feeds commands to the FSM as one raft entry.
func apply(t *testing.T, f *FSM, cmds ...Command) []Outcome {
	t.Helper()
	data, err := json.Marshal(entry{V: EntryVersion, Cmds: cmds})
	if err != nil {
		t.Fatal(err)
	}
	switch r := f.Apply(&raft.Log{Data: data}).(type) {
	case []Outcome:
		return r
	case error:
		t.Fatalf("apply: %v", r)
	}
	return nil
}

// chain forces a → b → c on one target and returns the build ids in order.
func chain(t *testing.T, f *FSM) []int64 {
	t.Helper()
	out := apply(t, f, Command{Force: &ForceCmd{Component: "a", Reason: "forced", Time: t0, Builds: []NewBuild{
		{Builder: "a@t", Component: "a", Target: "t", Collapse: true},
		{Builder: "b@t", Component: "b", Target: "t", Deps: []string{"a@t"}, Collapse: true},
		{Builder: "c@t", Component: "c", Target: "t", Deps: []string{"b@t"}, Collapse: true},
	}}})
	return out[0].Builds
}

func run(t *testing.T, f *FSM, id int64, worker, status string) {
	t.Helper()
	out := apply(t, f, Command{Assign: &AssignCmd{Build: id, Worker: worker, Time: t0}})
	if out[0].Err != nil {
		t.Fatalf("assign %d: %v", id, out[0].Err)
	}
	out = apply(t, f, Command{Finish: &FinishCmd{Time: t0, Result: protocol.Result{Worker: worker, Build: FormatID(id), Attempt: out[0].Attempt, Status: status, Ended: t0}}})
	if out[0].Err != nil || out[0].Stale || out[0].Duplicate {
		t.Fatalf("finish %d: %+v", id, out[0])
	}
}

func readiness(t *testing.T, f *FSM, id int64) Readiness {
	t.Helper()
	_, r, err := f.ReadinessOf(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReadinessFollowsDependencies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		depStatus string // how a@t ends; "" leaves it pending
		wantB     Readiness
	}{
		{"dependency pending", "", Readiness{Wait: "dependency a@t (build 3) is pending"}},
		{"dependency succeeded", protocol.StatusSuccess, Readiness{Ready: true}},
		{"dependency failed", protocol.StatusFailure, Readiness{Skip: "dependency a@t (build 3) ended failure"}},
		{"dependency exception", protocol.StatusException, Readiness{Skip: "dependency a@t (build 3) ended exception"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			ids := chain(t, f)
			if tc.depStatus != "" {
				run(t, f, ids[0], "w", tc.depStatus)
			}
			if got := readiness(t, f, ids[1]); got != tc.wantB {
				t.Errorf("b: %+v, want %+v", got, tc.wantB)
			}
			if got := readiness(t, f, ids[2]); got.Ready || got.Skip != "" {
				t.Errorf("c must wait for b: %+v", got)
			}
		})
	}
}

func TestDependencyOutsideBuildsetNeedsAnEarlierGoodBuild(t *testing.T) {
	f := NewFSM()
	force := func() int64 {
		out := apply(t, f, Command{Force: &ForceCmd{Component: "b", Time: t0, Builds: []NewBuild{{Builder: "b@t", Component: "b", Target: "t", Deps: []string{"a@t"}}}}})
		return out[0].Builds[0]
	}
	b := force()
	if r := readiness(t, f, b); r.Wait != "dependency a@t has no successful build yet" {
		t.Fatalf("never-built dependency: %+v", r)
	}
	a := apply(t, f, Command{Force: &ForceCmd{Component: "a", Time: t0, Builds: []NewBuild{{Builder: "a@t", Component: "a", Target: "t"}}}})[0].Builds[0]
	run(t, f, a, "w", protocol.StatusSuccess)
	if r := readiness(t, f, b); !r.Ready {
		t.Fatalf("after a good build of a@t: %+v", r)
	}
}

func TestCollapseKeepsTheNewestPendingRequest(t *testing.T) {
	f := NewFSM()
	first := chain(t, f)
	run(t, f, first[0], "w", protocol.StatusSuccess) // a@t ran; b@t and c@t pending
	second := chain(t, f)
	for i, id := range first[1:] {
		b, _ := f.Build(id)
		if b.Status != protocol.StatusSuperseded || b.SupersededBy != second[i+1] {
			t.Errorf("%s: %s by %d, want superseded by %d", b.Builder, b.Status, b.SupersededBy, second[i+1])
		}
	}
	if b, _ := f.Build(first[0]); b.Status != protocol.StatusSuccess {
		t.Errorf("a finished build must not be superseded: %s", b.Status)
	}
	if q := f.Queue(); len(q) != 3 {
		t.Errorf("queue has %d requests, want the 3 newest", len(q))
	}
}

func TestQueueOrdersByPriorityThenAge(t *testing.T) {
	f := NewFSM()
	apply(t, f, Command{Force: &ForceCmd{Time: t0, Builds: []NewBuild{
		{Builder: "low@t"}, {Builder: "high@t", Priority: 5}, {Builder: "low2@t"}, {Builder: "high2@t", Priority: 5},
	}}})
	var got []string
	for _, c := range f.Queue() {
		got = append(got, c.Builder)
	}
	if want := []string{"high@t", "high2@t", "low@t", "low2@t"}; !reflect.DeepEqual(got, want) {
		t.Errorf("queue = %v, want %v", got, want)
	}
}

func TestResultsAreIdempotentAndStaleOnesRefused(t *testing.T) {
	f := NewFSM()
	id := chain(t, f)[0]
	out := apply(t, f, Command{Assign: &AssignCmd{Build: id, Worker: "w1", Time: t0}})
	res := protocol.Result{Worker: "w1", Build: FormatID(id), Attempt: out[0].Attempt, Status: protocol.StatusSuccess, Ended: t0}
	for _, tc := range []struct {
		name string
		r    func(protocol.Result) protocol.Result
		want Outcome
	}{
		{"first result", func(r protocol.Result) protocol.Result { return r }, Outcome{Worker: "w1", Attempt: 1, Finished: []Ended{{Build: id, Status: protocol.StatusSuccess}}}},
		{"repeated", func(r protocol.Result) protocol.Result { r.Status = protocol.StatusFailure; return r }, Outcome{Duplicate: true, Worker: "w1", Attempt: 1}},
		{"other attempt", func(r protocol.Result) protocol.Result { r.Attempt = 2; return r }, Outcome{Stale: true, Worker: "w1", Attempt: 1}},
		{"unknown build", func(r protocol.Result) protocol.Result { r.Build = "999"; return r }, Outcome{Err: ErrNotFound}},
	} {
		got := apply(t, f, Command{Finish: &FinishCmd{Result: tc.r(res), Time: t0}})[0]
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if b, _ := f.Build(id); b.Status != protocol.StatusSuccess {
		t.Errorf("status after duplicates: %s", b.Status)
	}
}

func TestLostAttemptsRequeueUntilMaxAttempts(t *testing.T) {
	f := NewFSM()
	id := chain(t, f)[0]
	for i := 1; i <= 3; i++ {
		a := apply(t, f, Command{Assign: &AssignCmd{Build: id, Worker: "w", Time: t0}})[0]
		apply(t, f, Command{Lost: &LostCmd{Build: id, Attempt: a.Attempt, Reason: "gone", MaxAttempts: 3, Time: t0}})
		b, _ := f.Build(id)
		want := protocol.StatusPending
		if i == 3 {
			want = protocol.StatusException
		}
		if b.Status != want || len(b.Attempts) != i || b.Attempts[i-1].Status != protocol.StatusLost {
			t.Fatalf("after %d lost attempts: %s, attempts %+v", i, b.Status, b.Attempts)
		}
	}
	if n := f.RunningCounts()["w"]; n != 0 {
		t.Errorf("worker still counts %d running", n)
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	f := NewFSM()
	ids := chain(t, f)
	run(t, f, ids[0], "w1", protocol.StatusSuccess)
	apply(t, f, Command{Assign: &AssignCmd{Build: ids[1], Worker: "w2", Time: t0}},
		Command{Worker: &WorkerCmd{Record: WorkerRecord{Name: "w2", Tags: []string{"x"}, Slots: 2, LastHello: t0}}})

	g := restored(t, f)
	for _, id := range ids {
		a, _ := f.Build(id)
		b, _ := g.Build(id)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("build %d differs after restore:\n%+v\n%+v", id, a, b)
		}
	}
	for name, pair := range map[string][2]any{
		"workers": {f.Workers(), g.Workers()}, "running": {f.RunningCounts(), g.RunningCounts()}, "queue": {f.Queue(), g.Queue()},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s differ after restore:\n%+v\n%+v", name, pair[0], pair[1])
		}
	}
	// Ids continue where they left off.
	if next := chain(t, g); next[0] <= ids[2] {
		t.Errorf("restored FSM reused ids: %v after %v", next, ids)
	}
}

func TestNewerEntryVersionIsRefused(t *testing.T) {
	f := NewFSM()
	r := f.Apply(&raft.Log{Data: []byte(`{"v":99,"cmds":[]}`)})
	if _, ok := r.(error); !ok {
		t.Fatalf("entry v99 applied: %v", r)
	}
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// restored takes a snapshot of f and restores it into a new FSM, as a
// follower catching up from a snapshot would.
func restored(t *testing.T, f *FSM) *FSM {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	return g
}

// A worker may report lost only the attempt it runs: another worker's
// report is stale and changes nothing.
func TestLostFromAnotherWorkerIsStale(t *testing.T) {
	f := NewFSM()
	id := chain(t, f)[0]
	a := apply(t, f, Command{Assign: &AssignCmd{Build: id, Worker: "w1", Time: t0}})[0]
	out := apply(t, f, Command{Lost: &LostCmd{Build: id, Attempt: a.Attempt, Worker: "w2", Reason: "not mine", Time: t0}})[0]
	if b, _ := f.Build(id); !out.Stale || b.Status != protocol.StatusRunning || b.Attempts[0].Status == protocol.StatusLost {
		t.Fatalf("another worker's lost report: %+v, build %s %+v", out, b.Status, b.Attempts)
	}
	out = apply(t, f, Command{Lost: &LostCmd{Build: id, Attempt: a.Attempt, Worker: "w1", Reason: "stopped", Time: t0}})[0]
	if b, _ := f.Build(id); out.Stale || b.Status != protocol.StatusPending {
		t.Fatalf("its own worker's lost report: %+v, build %s", out, b.Status)
	}
}
