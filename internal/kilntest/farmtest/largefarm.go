package farmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// LargeFarm copies configs/farm-large.yaml (4,184 builders) into dir with
// its worker credentials pointed at files there and its data dir at
// dir/data, for benchmarks at the scale of the farm Kiln replaces. It
// returns the config's path and its matrix.
func LargeFarm(tb testing.TB, dir string) (string, *builders.Matrix) {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "configs", "farm-large.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(src), "/etc/kiln/workers/", dir+"/")
	cfg = strings.Replace(cfg, "data_dir: /var/lib/kiln", "data_dir: "+filepath.Join(dir, "data"), 1)
	p := filepath.Join(dir, "farm-large.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	c, mx, err := builders.LoadMatrix(p)
	if err != nil {
		tb.Fatal(err)
	}
	for _, w := range c.Workers {
		if err := os.WriteFile(filepath.Join(dir, w.Name+".secret"), []byte("token-"+w.Name), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return p, mx
}

// FillHistory records n completed builds spread over the matrix's
// builders, each with two steps, a property and an artifact, through raft
// as the master would, in batches of a thousand.
func FillHistory(tb testing.TB, m *master.Master, mx *builders.Matrix, n int) {
	tb.Helper()
	ctx := context.Background()
	const chunk = 1000
	next := 0
	for done := 0; done < n; done += chunk {
		force := &state.ForceCmd{Component: "history", Reason: "benchmark history", Time: time.Now()}
		for range chunk {
			bl := mx.Builders[next%len(mx.Builders)]
			next++
			force.Builds = append(force.Builds, state.NewBuild{Builder: bl.Name, Component: bl.Component.Name, Target: bl.Target.String(), Deps: bl.Deps, Tags: bl.Tags})
		}
		out, err := m.Node().Apply1(ctx, state.Command{Force: force})
		if err != nil {
			tb.Fatal(err)
		}
		var cmds []state.Command
		now := time.Now()
		for i, id := range out.Builds {
			cmds = append(cmds, state.Command{Assign: &state.AssignCmd{Build: id, Worker: fmt.Sprintf("deb%02d", i%8+1), Time: now}})
		}
		if _, err := m.Node().Apply(ctx, cmds...); err != nil {
			tb.Fatal(err)
		}
		cmds = cmds[:0]
		for i, id := range out.Builds {
			w, bid := fmt.Sprintf("deb%02d", i%8+1), state.FormatID(id)
			for s, name := range []string{"checkout", "pbuilder"} {
				cmds = append(cmds, state.Command{Step: &state.StepCmd{Event: protocol.StepEvent{Worker: w, Build: bid, Attempt: 1, Step: s, Name: name, Status: protocol.StatusSuccess, Started: now, Ended: now, Summary: "ok"}}})
			}
			sum := fmt.Sprintf("%064x", id)
			cmds = append(cmds, state.Command{Finish: &state.FinishCmd{Time: now, Result: protocol.Result{Worker: w, Build: bid, Attempt: 1, Status: protocol.StatusSuccess,
				Properties: map[string]string{"version": "1.2.3-" + bid}, Artifacts: []protocol.Artifact{{Name: "pkg_1.2.3-" + bid + "_amd64.deb", Size: 123456, SHA256: sum}},
				Started: now, Ended: now}}})
		}
		if _, err := m.Node().Apply(ctx, cmds...); err != nil {
			tb.Fatal(err)
		}
	}
}
