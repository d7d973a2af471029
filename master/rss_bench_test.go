package master_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// largeFarm copies configs/farm-large.yaml with its worker credentials
// pointed at files in dir.
func largeFarm(b *testing.B, dir string) string {
	_, file, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "configs", "farm-large.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(src), "/etc/kiln/workers/", dir+"/")
	cfg = strings.Replace(cfg, "data_dir: /var/lib/kiln", "data_dir: "+filepath.Join(dir, "data"), 1)
	p := filepath.Join(dir, "farm-large.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	c, _, err := builders.LoadMatrix(p)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range c.Workers {
		if err := os.WriteFile(filepath.Join(dir, w.Name+".secret"), []byte("token-"+w.Name), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// largeHistory is a running in-process master on configs/farm-large.yaml
// whose state holds a filled build history.
type largeHistory struct {
	cfg  string
	mx   *builders.Matrix
	m    *master.Master
	fill time.Duration // how long recording the history through raft took
	// stop shuts the master down; it is also registered as a cleanup, and
	// later calls return at once, so a benchmark may stop the master early
	// to reopen its data dir.
	stop func()
}

// startLargeHistory starts a master on a copy of configs/farm-large.yaml and
// records n completed builds through raft.
func startLargeHistory(b *testing.B, n int) largeHistory {
	cfg := largeFarm(b, b.TempDir())
	_, mx, err := builders.LoadMatrix(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m, err := master.New(master.Options{ConfigPath: cfg, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	_, stop := runMaster(b, m)
	stop = sync.OnceFunc(stop)
	b.Cleanup(stop)
	start := time.Now()
	fillHistory(b, m, mx, n)
	return largeHistory{cfg: cfg, mx: mx, m: m, fill: time.Since(start), stop: stop}
}

// fillHistory records n completed builds spread over the matrix's builders,
// each with two steps, a property and an artifact, through raft as the
// master would.
func fillHistory(b *testing.B, m *master.Master, mx *builders.Matrix, n int) {
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
			b.Fatal(err)
		}
		var cmds []state.Command
		now := time.Now()
		for i, id := range out.Builds {
			cmds = append(cmds, state.Command{Assign: &state.AssignCmd{Build: id, Worker: fmt.Sprintf("deb%02d", i%8+1), Time: now}})
		}
		if _, err := m.Node().Apply(ctx, cmds...); err != nil {
			b.Fatal(err)
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
			b.Fatal(err)
		}
	}
}

// BenchmarkMasterRSS fills a master's state with 100,000 completed builds of
// configs/farm-large.yaml, then starts a real `kiln master` process on that
// data dir and reports its start time and resident memory.
func BenchmarkMasterRSS(b *testing.B) {
	if kilnBinErr != nil {
		b.Fatalf("kiln binary: %v", kilnBinErr)
	}
	const history = 100_000
	for range b.N {
		h := startLargeHistory(b, history)
		if err := h.m.Node().Snapshot(); err != nil {
			b.Fatal(err)
		}
		h.stop()
		cfg, mx, fill := h.cfg, h.mx, h.fill

		httpAddr := freeAddr(b)
		start := time.Now()
		cmd := exec.Command(kilnBin, "master", "--config", cfg, "--http", httpAddr, "--nats", "127.0.0.1:0")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		total := waitHistory(b, "http://"+httpAddr, history)
		startup := time.Since(start)
		rss := vmRSS(b, cmd.Process.Pid)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		b.ReportMetric(rss/1024, "rss-MB")
		b.ReportMetric(startup.Seconds(), "start-s")
		fmt.Printf("master RSS: farm-large.yaml (%d builders) + %d builds in history: RSS %.0f MB (goal < 300 MB), start to API answering %.2fs (Buildbot 3.7: 82 s with 4,300 builders), history filled through raft in %.1fs\n",
			len(mx.Builders), total, rss/1024, startup.Seconds(), fill.Seconds())
	}
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHistory(b *testing.B, base string, want int) int {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/builds?limit=1")
		if err == nil {
			var list api.BuildList
			err = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			if err == nil && list.Total >= want {
				return list.Total
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("restarted master did not show %d builds", want)
	return 0
}

// vmRSS reads a process's resident set size in KiB.
func vmRSS(b *testing.B, pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
