//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/api/client"
	"github.com/kiln-build/kiln/protocol"
)

// laneFarm: component liba on a Debian target whose builds need the tag
// deb-lane, which no host detects by itself. A build checks liba out, logs
// its attempt, sleeps long enough for its worker to be killed in the
// middle, and uploads one artifact. A worker silent for a second is gone.
const laneFarm = `
master:
  heartbeat_timeout: 1s
targets:
  - distro: debian
    versions: [bookworm]
    arches: [amd64]
    kind: shell
    format: apt
    tags: [deb-lane]
    steps:
      - name: build
        type: shell
        script: |
          echo "building ${prop.builder} attempt ${prop.attempt}"
          cat VERSION
          sleep 2
          mkdir -p out
          echo "${prop.component} for ${prop.target}" > out/${prop.component}.pkg
      - {name: upload, type: upload, artifacts: ["out/*.pkg"]}
components:
  - {name: liba, git: %s}
workers:
  - {name: w1, credentials: w1.token, slots: 1}
  - {name: w2, credentials: w2.token, slots: 1}
users:
  - {name: ops, token: ops.token}
repos:
  channels:
    - {name: dev, key: demo}
`

// TestKilledWorkerProcessBuildIsRetriedOnTheOther: a `kiln worker` process
// SIGKILLed in the middle of a build leaves no word behind; the master
// declares the attempt lost once the worker is silent and runs the build
// again on the other worker, keeping both attempts' logs. The master and
// w2 run in-process; w1 is the kiln binary (kilnBinary).
//
//	go test -tags e2e -run KilledWorkerProcess ./e2e
func TestKilledWorkerProcessBuildIsRetriedOnTheOther(t *testing.T) {
	kiln := kilnBinary(t)
	src := kilntest.GitRepo(t)
	src.Write("VERSION", "liba 1.0\n")
	src.Commit("main", "release liba 1.0")
	m := farmtest.StartMaster(t, farmtest.Config(fmt.Sprintf(laneFarm, src.Dir)),
		farmtest.File("w1.token", "secret-w1\n"), farmtest.File("w2.token", "secret-w2\n"), farmtest.File("ops.token", opsToken+"\n"))
	ops, ctx := client.New(m.URL, opsToken), context.Background()
	connected := func(name string) bool {
		ws, err := ops.Workers(ctx)
		return err == nil && slices.ContainsFunc(ws, func(w api.Worker) bool { return w.Name == name && w.Connected })
	}
	buildLog := func(id int64) string {
		var b strings.Builder
		if _, err := ops.Log(ctx, id, false, &b); err != nil {
			t.Fatalf("log of build %d: %v", id, err)
		}
		return b.String()
	}

	procs := &processes{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(procs.tails())
		}
	})
	procs.start("w1", nil, kiln, "worker", "--master", m.NATSURL, "--name", "w1", "--credentials", filepath.Join(m.Dir, "w1.token"),
		"--tags", "deb-lane", "--slots", "1", "--workdir", filepath.Join(procs.dir, "work-w1"))
	w1 := procs.cmds[0]
	kilntest.WaitFor(t, 10*time.Second, "the w1 process to connect", func() bool { return connected("w1") })

	res, err := ops.Force(ctx, api.ForceRequest{Component: "liba@debian/bookworm/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Builds[0]
	kilntest.WaitFor(t, 20*time.Second, "w1 to log from the build step", func() bool { return strings.Contains(buildLog(id), "attempt 1") })
	// The process only, as a crash would: the build's shell is orphaned.
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	farmtest.StartWorker(t, m.NATSURL, "w2", "secret-w2", farmtest.Slots(1), farmtest.Tags("deb-lane"))

	var b *api.BuildDetail
	kilntest.WaitFor(t, 30*time.Second, "the build to finish", func() bool {
		b, err = ops.Build(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return protocol.Terminal(b.Status)
	})
	if b.Status != protocol.StatusSuccess || b.Worker != "w2" {
		t.Fatalf("build ended %s on %s (%s), want success on w2", b.Status, b.Worker, b.Summary)
	}
	if len(b.Attempts) != 2 || b.Attempts[0].Worker != "w1" || b.Attempts[0].Status != protocol.StatusLost {
		t.Fatalf("attempts = %+v, want a lost attempt on w1 first", b.Attempts)
	}
	if logText := buildLog(id); !strings.Contains(logText, "attempt 1") || !strings.Contains(logText, "attempt 2") {
		t.Errorf("log should keep both attempts: %q", logText)
	}
}
