package view

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/intake"
	"github.com/kiln-build/kiln/master/publish"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// The API's records were cut from the raft records with the same JSON; a
// conversion that drops or renames a field shows here as a different
// document for a fully populated record.
func TestConversionsKeepTheAPIsJSON(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	b := &state.Build{ID: 9, Buildset: 2, Change: 3, Builder: "a@d/v/x", Component: "a", Target: "d/v/x", Revision: "abc",
		Deps: []string{"b@d/v/x"}, Tags: []string{"debian"}, Priority: 5, Collapse: true, Status: protocol.StatusFailure,
		Summary: "exit 1", SupersededBy: 11, Created: t0, Started: t0.Add(time.Second), Ended: t0.Add(2 * time.Second),
		Worker: "w1", Attempt: 2,
		Attempts:   []state.Attempt{{N: 1, Worker: "w2", Assigned: t0, Started: t0, Ended: t0, Status: protocol.StatusLost, Reason: "silent"}},
		Steps:      []state.Step{{Index: 0, Name: "build", Status: protocol.StatusFailure, Summary: "exit 1", Started: t0, Ended: t0}},
		Properties: map[string]string{"got_revision": "abc"},
		Artifacts:  []protocol.Artifact{{Name: "dist/a.deb", Size: 10, SHA256: "00"}}}
	c := &state.Change{ID: 3, Component: "a", Target: "d/v/x", Revision: "abc", Ref: "refs/heads/main", Reason: "webhook",
		Created: t0, Buildset: 2, Source: &state.Source{Kind: "webhook", Provider: "github", Delivery: "d1", User: "ada", Poller: "p"}}
	w := sched.WorkerStatus{WorkerRecord: state.WorkerRecord{Name: "w1", Tags: []string{"debian"}, Slots: 2, KilnVersion: "v1",
		Protocol: protocol.Version, LastHello: t0}, Connected: true, Draining: true, LastSeen: t0, Running: []int64{9}, Free: 1}
	for _, tc := range []struct {
		name      string
		raft, api any
	}{
		{"build", b, apiBuild(b)},
		{"change", c, apiChange(c)},
		{"worker", w, apiWorker(w)},
	} {
		want, _ := json.Marshal(tc.raft)
		got, _ := json.Marshal(tc.api)
		if string(got) != string(want) {
			t.Errorf("%s: API JSON\n%s\nwant\n%s", tc.name, got, want)
		}
	}
	// The copy is deep: changing it leaves the record alone.
	ab := apiBuild(b)
	ab.Deps[0], ab.Properties["got_revision"] = "x", "x"
	if b.Deps[0] != "b@d/v/x" || b.Properties["got_revision"] != "abc" {
		t.Error("the API's build shares slices or maps with the raft record")
	}
}

// Each package's refusals reach the API as the API's own sentinel, with
// the message kept.
func TestAPIErrorsMapEveryRefusal(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("build 7: %w", state.ErrNotFound), api.ErrNotFound},
		{fmt.Errorf("force x: %w", intake.ErrUnknownComponent), api.ErrUnknownComponent},
		{fmt.Errorf("force: %w", intake.ErrInvalid), api.ErrInvalid},
		{fmt.Errorf("cancel: %w", state.ErrFinished), api.ErrConflict},
		{fmt.Errorf("apply: %w", state.ErrNotLeader), api.ErrUnavailable},
		{sched.ErrNotLeading, api.ErrUnavailable},
		{publish.ErrNoRepos, api.ErrUnavailable},
	} {
		got := apiError(tc.err)
		if !errors.Is(got, tc.want) || got.Error() == "" || !errors.Is(got, tc.err) {
			t.Errorf("apiError(%v) = %v, want it to wrap %v and the original", tc.err, got, tc.want)
		}
	}
	plain := errors.New("disk on fire")
	if got := apiError(plain); got != plain {
		t.Errorf("an unmapped error changed: %v", got)
	}
}

// Ended builds are converted once and shared; a running build, which still
// changes, is converted on every read.
func TestFinishedBuildsConvertOnce(t *testing.T) {
	var c finishedBuilds
	done := &state.Build{ID: 1, Status: protocol.StatusSuccess}
	live := &state.Build{ID: 2, Status: protocol.StatusRunning}
	if a, b := c.of(done), c.of(done); a != b {
		t.Error("an ended build was converted twice")
	}
	a := c.of(live)
	live.Summary = "step 2"
	if b := c.of(live); a == b || b.Summary != "step 2" {
		t.Errorf("a running build was served from the cache: %+v", b)
	}
}
