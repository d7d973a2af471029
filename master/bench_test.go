package master_test

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

// Buildbot 3.7 on this machine kind, same workload (issue 3).
const (
	buildbotWall      = 278 * time.Second
	buildbotPerSecond = 3.6
	buildbotFirst     = 9400 * time.Millisecond
)

// benchFarm is a farm of n builders on one target: a root component whose
// change rebuilds its n-1 direct dependents, each one `true` step (nothing
// is checked out: git names a directory that is not a repository).
func benchFarm(dir string, n, workers, slots int) string {
	var sb strings.Builder
	sb.WriteString("master:\n  heartbeat_timeout: 30s\ntargets:\n  - {distro: debian, versions: [bookworm], arches: [amd64], kind: nfpm, format: apt,\n     steps: [{name: true, type: shell, command: [\"true\"]}]}\ncomponents:\n")
	fmt.Fprintf(&sb, "  - {name: root, git: %s, rebuild: direct}\n", dir)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&sb, "  - {name: c%04d, git: %s, depends: [root]}\n", i, dir)
	}
	sb.WriteString("workers:\n")
	for i := range workers {
		fmt.Fprintf(&sb, "  - {name: bw%d, credentials: bw.token, slots: %d}\n", i, slots)
	}
	sb.WriteString("repos:\n  channels: [{name: dev, key: demo}]\n")
	return sb.String()
}

type pipelineFigures struct {
	builds               int
	wall, first          time.Duration
	perSecond            float64
	p50, p99, maxLatency time.Duration
	// The latency split: master (ready → assigned) and worker (assigned → step started).
	masterP50, workerP50 time.Duration
	// Per build on the worker: the step itself, and its end → result.
	stepP50, wrapP50 time.Duration
}

// BenchmarkPipeline1000 runs 1,000 trivial builds on 4 in-process workers
// over loopback, with 1 and with 8 slots per worker, and prints the figures
// docs/benchmarks.md records.
func BenchmarkPipeline1000(b *testing.B) {
	for _, slots := range []int{1, 8} {
		b.Run(fmt.Sprintf("slots=%d", slots), func(b *testing.B) { benchPipeline(b, 1000, 4, slots) })
	}
}

func benchPipeline(b *testing.B, n, workers, slots int) {
	var figs pipelineFigures
	for range b.N {
		figs = runPipeline(b, n, workers, slots)
	}
	b.ReportMetric(figs.wall.Seconds(), "wall-s")
	b.ReportMetric(figs.perSecond, "builds/s")
	b.ReportMetric(float64(figs.first.Microseconds())/1000, "first-ms")
	b.ReportMetric(float64(figs.p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(figs.p99.Microseconds())/1000, "p99-ms")
	fmt.Printf("pipeline: %d builds, %d workers × %d slots: wall %.2fs (Buildbot 3.7: %s, %.0f× faster), %.0f builds/s (Buildbot %.1f, %.0f×), first build started %.1fms after the change (Buildbot %s, %.0f×), dispatch ready→step started p50 %.2fms p99 %.2fms max %.2fms (p50 split: master ready→assigned %.2fms, worker assigned→step started %.2fms); per build p50: steps %.2fms, last step end→result %.2fms\n",
		figs.builds, workers, slots, figs.wall.Seconds(), buildbotWall, buildbotWall.Seconds()/figs.wall.Seconds(),
		figs.perSecond, buildbotPerSecond, figs.perSecond/buildbotPerSecond,
		float64(figs.first.Microseconds())/1000, buildbotFirst, buildbotFirst.Seconds()/figs.first.Seconds(),
		float64(figs.p50.Microseconds())/1000, float64(figs.p99.Microseconds())/1000, float64(figs.maxLatency.Microseconds())/1000,
		float64(figs.masterP50.Microseconds())/1000, float64(figs.workerP50.Microseconds())/1000,
		float64(figs.stepP50.Microseconds())/1000, float64(figs.wrapP50.Microseconds())/1000)
}

func runPipeline(b *testing.B, n, workers, slots int) pipelineFigures {
	b.StopTimer()
	dir := b.TempDir()
	fm := farmtest.StartMaster(b, farmtest.Dir(dir), farmtest.Config(benchFarm(dir, n, workers, slots)), farmtest.File("bw.token", "bench-token"),
		farmtest.MasterLogger(kilntest.QuietLogger()))
	// Each iteration's farm goes before the next one starts: workers
	// first, as the test's cleanup would.
	defer fm.Stop()
	m := fm.Master
	for i := range workers {
		w := farmtest.StartWorker(b, fm.NATSURL, fmt.Sprintf("bw%d", i), "bench-token", farmtest.Slots(slots),
			farmtest.Heartbeat(time.Second), farmtest.WorkerLogger(kilntest.QuietLogger()))
		defer func() {
			if err := w.Stop(); err != nil {
				b.Error(err)
			}
		}()
	}
	kilntest.WaitFor(b, 10*time.Second, fmt.Sprintf("%d workers to connect", workers), func() bool {
		connected := 0
		for _, w := range m.API().Workers() {
			if w.Connected {
				connected++
			}
		}
		return connected == workers
	})

	ctx := context.Background()
	b.StartTimer()
	res, err := m.API().Force(ctx, api.ForceRequest{Component: "root"})
	if err != nil {
		b.Fatal(err)
	}
	for {
		_, open := m.API().Builds(api.BuildFilter{Buildset: res.Buildset, Status: protocol.StatusPending, Limit: 1})
		_, running := m.API().Builds(api.BuildFilter{Buildset: res.Buildset, Status: protocol.StatusRunning, Limit: 1})
		if open+running == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	builds, _ := m.API().Builds(api.BuildFilter{Buildset: res.Buildset})
	change, err := m.API().Change(res.Change)
	if err != nil {
		b.Fatal(err)
	}
	return figures(b, change, builds, slots)
}

// figures derives the benchmark's measures from the recorded timestamps. A
// build is dispatchable when its dependencies have ended and one of its
// worker's slots is free; dispatch latency runs from then to its first step
// starting. Slots are replayed per worker in assignment order.
func figures(b *testing.B, change *api.Change, builds []*api.Build, slots int) pipelineFigures {
	var f pipelineFigures
	f.builds = len(builds)
	ended := map[string]time.Time{}
	var last time.Time
	f.first = time.Duration(1<<63 - 1)
	for _, bd := range builds {
		if bd.Status != protocol.StatusSuccess {
			b.Fatalf("build %d %s: %s %s", bd.ID, bd.Builder, bd.Status, bd.Summary)
		}
		ended[bd.Builder] = bd.Ended
		if bd.Ended.After(last) {
			last = bd.Ended
		}
		if d := stepStart(bd).Sub(change.Created); d < f.first {
			f.first = d
		}
	}
	f.wall = last.Sub(change.Created)
	f.perSecond = float64(len(builds)) / f.wall.Seconds()

	byWorker := map[string][]*api.Build{}
	for _, bd := range builds {
		byWorker[bd.Worker] = append(byWorker[bd.Worker], bd)
	}
	var lat, mlat, wlat []time.Duration
	for _, list := range byWorker {
		slices.SortFunc(list, func(x, y *api.Build) int {
			return x.Attempts[len(x.Attempts)-1].Assigned.Compare(y.Attempts[len(y.Attempts)-1].Assigned)
		})
		free := &timeHeap{}
		for range slots {
			heap.Push(free, change.Created)
		}
		for _, bd := range list {
			ready := heap.Pop(free).(time.Time)
			for _, d := range bd.Deps {
				if e := ended[d]; e.After(ready) {
					ready = e
				}
			}
			assigned := bd.Attempts[len(bd.Attempts)-1].Assigned
			lat = append(lat, stepStart(bd).Sub(ready))
			mlat = append(mlat, assigned.Sub(ready))
			wlat = append(wlat, stepStart(bd).Sub(assigned))
			heap.Push(free, bd.Ended)
		}
	}
	slices.Sort(lat)
	slices.Sort(mlat)
	slices.Sort(wlat)
	f.masterP50, f.workerP50 = mlat[len(mlat)/2], wlat[len(wlat)/2]
	var run, wrap []time.Duration
	for _, bd := range builds {
		if len(bd.Steps) == 0 {
			continue
		}
		last := bd.Steps[len(bd.Steps)-1]
		run = append(run, last.Ended.Sub(bd.Steps[0].Started))
		wrap = append(wrap, bd.Ended.Sub(last.Ended))
	}
	slices.Sort(run)
	slices.Sort(wrap)
	f.stepP50, f.wrapP50 = run[len(run)/2], wrap[len(wrap)/2]
	f.p50, f.p99, f.maxLatency = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	return f
}

func stepStart(b *api.Build) time.Time {
	if len(b.Steps) > 0 && !b.Steps[0].Started.IsZero() {
		return b.Steps[0].Started
	}
	return b.Started
}

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
