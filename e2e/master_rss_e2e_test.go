//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master/api"
)

// BenchmarkMasterRSS fills a master's state with 100,000 completed builds of
// configs/farm-large.yaml (in process, through raft), then starts a real
// `kiln master` process on that data dir and reports its start time and
// resident memory: what a master process costs, so the process is the
// point. make bench runs it with the kiln binary it builds; by hand:
//
//	make build && KILN_BIN=$PWD/bin/kiln go test -tags e2e -run '^$' -bench MasterRSS -benchtime 1x -timeout 30m ./e2e
//
// (without KILN_BIN the benchmark builds kiln itself).
func BenchmarkMasterRSS(b *testing.B) {
	kiln := kilnBinary(b)
	const history = 100_000
	for range b.N {
		dir := b.TempDir()
		cfg, mx := farmtest.LargeFarm(b, dir)
		filler := farmtest.StartMaster(b, farmtest.ConfigFile(cfg), farmtest.DataDir(filepath.Join(dir, "data")),
			farmtest.MasterLogger(kilntest.QuietLogger()))
		start := time.Now()
		farmtest.FillHistory(b, filler.Master, mx, history)
		fill := time.Since(start)
		if err := filler.Master.Node().Snapshot(); err != nil {
			b.Fatal(err)
		}
		filler.Stop()

		// The process finds the data dir in the config, as in production.
		httpAddr := freeAddr(b)
		start = time.Now()
		cmd := exec.Command(kiln, "master", "--config", cfg, "--http", httpAddr, "--nats", "127.0.0.1:0")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
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

// waitHistory waits until the master at base lists want builds and returns
// how many it lists.
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
