package state

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

func openNode(t testing.TB, dir string) *Node {
	t.Helper()
	n, err := Open(NodeOptions{Dir: dir, Logger: kilntest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	kilntest.WaitFor(t, 10*time.Second, "leadership", n.IsLeader)
	return n
}

func TestNodeBootstrapsAndReplaysAfterRestart(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir)
	ctx := context.Background()
	out, err := n.Apply1(ctx, Command{Force: &ForceCmd{Component: "a", Time: t0, Builds: []NewBuild{{Builder: "a@t"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply1(ctx, Command{Assign: &AssignCmd{Build: out.Builds[0], Worker: "w", Time: t0}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// The second start finds state (no bootstrap) on a new port and leads again.
	n = openNode(t, dir)
	defer n.Close()
	b, err := n.FSM.Build(out.Builds[0])
	if err != nil || b.Status != protocol.StatusRunning || b.Worker != "w" {
		t.Fatalf("after restart: %+v, %v", b, err)
	}
	if _, err := n.Apply1(ctx, Command{Cancel: &CancelCmd{Build: out.Builds[0], Reason: "test", Time: t0}}); err != nil {
		t.Fatalf("apply after restart: %v", err)
	}
}

// BenchmarkApply measures one command's round trip through raft (log
// write with fsync, commit, FSM apply), one caller at a time.
func BenchmarkApply(b *testing.B) {
	n := openNode(b, b.TempDir())
	defer n.Close()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := n.Apply1(ctx, Command{Worker: &WorkerCmd{Record: WorkerRecord{Name: "w", LastHello: t0}}}); err != nil {
			b.Fatal(err)
		}
	}
}
