package worker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

// BenchmarkTrivialBuild measures a worker's own overhead per build, one at a
// time: job request, fresh workspace, one `true` step with its events and
// log, and the acked result, over loopback NATS with the per-worker
// permissions. Reports dispatch latency (job sent → step-running event at
// the master) percentiles.
func BenchmarkTrivialBuild(b *testing.B) {
	s := startServer(b, "w1")
	m := newTestMaster(b, s)
	startWorker(b, s, Config{Name: "w1", Logger: kilntest.QuietLogger()})
	m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })

	dispatch := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		sent := time.Now()
		if ack := m.sendJob("w1", protocol.Job{V: 1, Build: id, Steps: []protocol.Step{{Type: "shell", Command: []string{"true"}}}}); !ack.OK {
			b.Fatal(ack.Error)
		}
		var started time.Time
		m.waitFor("step start", 10*time.Second, func() bool {
			for _, e := range m.events {
				if e.Build == id {
					started = e.Started
					return true
				}
			}
			return false
		})
		dispatch = append(dispatch, started.Sub(sent))
		m.result(id, 10*time.Second)
	}
	b.StopTimer()
	slices.Sort(dispatch)
	b.ReportMetric(float64(dispatch[len(dispatch)/2].Microseconds())/1000, "dispatch-p50-ms")
	b.ReportMetric(float64(dispatch[len(dispatch)*99/100].Microseconds())/1000, "dispatch-p99-ms")
}
