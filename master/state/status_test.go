package state

import (
	"errors"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

// TestFSMHandlesEveryStatus ties the FSM to protocol.Statuses: a build in a
// status that is not final can still be cancelled, one in a final status
// cannot. A status added to protocol that the FSM's transitions do not know
// fails here instead of leaving builds that nobody can stop.
func TestFSMHandlesEveryStatus(t *testing.T) {
	for _, status := range protocol.Statuses {
		t.Run(status, func(t *testing.T) {
			if Terminal(status) != protocol.Terminal(status) {
				t.Fatalf("state.Terminal(%q) disagrees with protocol.Terminal", status)
			}
			f := NewFSM()
			id := chain(t, f)[0]
			if status == protocol.StatusRunning {
				if out := apply(t, f, Command{Assign: &AssignCmd{Build: id, Worker: "w1", Time: t0}}); out[0].Err != nil {
					t.Fatal(out[0].Err)
				}
			} else {
				// Most statuses have no one transition that reaches them
				// from pending; the FSM's answer to a cancel depends on the
				// status alone.
				f.builds[id].Status = status
			}
			out := apply(t, f, Command{Cancel: &CancelCmd{Build: id, Reason: "test", Time: t0}})
			if refused := errors.Is(out[0].Err, ErrFinished); refused != Terminal(status) {
				t.Errorf("cancel of a %s build: err %v; final %v", status, out[0].Err, Terminal(status))
			}
		})
	}
}
