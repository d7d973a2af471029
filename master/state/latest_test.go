package state

import (
	"bytes"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// snapshotRestore copies f through a snapshot into a new FSM.
func snapshotRestore(t *testing.T, f *FSM) *FSM {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap.(*fsmSnapshot).data))); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestLatestFollowsNewestBuildAndSurvivesRestore(t *testing.T) {
	f := NewFSM()
	first := chain(t, f)
	run(t, f, first[0], "w1", protocol.StatusFailure)
	second := chain(t, f) // supersedes the pending b and c of the first
	run(t, f, second[0], "w1", protocol.StatusSuccess)
	want := []BuildRef{{second[0], protocol.StatusSuccess}, {second[1], protocol.StatusPending}, {second[2], protocol.StatusPending}, {}}
	names := []string{"a@t", "b@t", "c@t", "never@t"}
	if got := f.Latest(names); !reflect.DeepEqual(got, want) {
		t.Errorf("latest = %v, want %v", got, want)
	}
	if got := snapshotRestore(t, f).Latest(names); !reflect.DeepEqual(got, want) {
		t.Errorf("latest after restore = %v, want %v", got, want)
	}
	if n := f.QueueLength(); n != 2 {
		t.Errorf("queue length %d, want 2", n)
	}
}

// TestFinishedBuildsNeverChange holds the invariant Builds relies on to
// share finished builds with readers: no command alters a build that ended.
func TestFinishedBuildsNeverChange(t *testing.T) {
	f := NewFSM()
	id := chain(t, f)[0]
	run(t, f, id, "w1", protocol.StatusSuccess)
	before, _ := f.Build(id)
	later := t0.Add(time.Hour)
	bid := FormatID(id)
	for _, c := range []Command{
		{Finish: &FinishCmd{Time: later, Result: protocol.Result{Worker: "w1", Build: bid, Attempt: 1, Status: protocol.StatusFailure, Summary: "again"}}},
		{Step: &StepCmd{Event: protocol.StepEvent{Worker: "w1", Build: bid, Attempt: 1, Step: 0, Name: "x", Status: protocol.StatusRunning, Started: later}}},
		{Cancel: &CancelCmd{Build: id, Reason: "late", Time: later}},
		{Skip: &SkipCmd{Build: id, Reason: "late", Time: later}},
		{Lost: &LostCmd{Build: id, Attempt: 1, Reason: "late", MaxAttempts: 1, Time: later}},
		{Unassign: &UnassignCmd{Build: id, Attempt: 1, Reason: "late", Time: later}},
		{Assign: &AssignCmd{Build: id, Worker: "w2", Time: later}},
		{Force: &ForceCmd{Component: "a", Reason: "again", Time: later, Builds: []NewBuild{{Builder: "a@t", Component: "a", Target: "t", Collapse: true}}}},
	} {
		apply(t, f, c)
		if after, _ := f.Build(id); !reflect.DeepEqual(after, before) {
			t.Fatalf("after %+v the finished build changed:\n%+v\nwas\n%+v", c, after, before)
		}
	}
}

func TestDispatchWaitCountsFromReadiness(t *testing.T) {
	f := NewFSM()
	ids := chain(t, f)
	run(t, f, ids[0], "w1", protocol.StatusSuccess) // a ends at t0, so b is ready at t0
	out := apply(t, f, Command{Assign: &AssignCmd{Build: ids[1], Worker: "w1", Time: t0}})
	ev := protocol.StepEvent{Worker: "w1", Build: FormatID(ids[1]), Attempt: out[0].Attempt, Step: 0, Name: "build", Status: protocol.StatusRunning, Started: t0.Add(3 * time.Second)}
	got := apply(t, f, Command{Step: &StepCmd{Event: ev}})[0]
	if !got.Dispatched || got.DispatchWait != 3*time.Second {
		t.Errorf("first step: dispatched %v after %s, want after 3s", got.Dispatched, got.DispatchWait)
	}
	ev.Step, ev.Started = 1, t0.Add(5*time.Second)
	if again := apply(t, f, Command{Step: &StepCmd{Event: ev}})[0]; again.Dispatched {
		t.Error("a second step counted as another dispatch")
	}
}
