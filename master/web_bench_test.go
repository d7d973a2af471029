package master_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// percentile returns the p-th percentile (0–100) of sorted durations, in ms.
func percentile(sorted []time.Duration, p int) float64 {
	i := min(len(sorted)*p/100, len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}

// BenchmarkWebRealMaster serves the grid page and the API's build list from
// a real master holding configs/farm-large.yaml and 100,000 builds of
// history, the figures docs/benchmarks.md records under "Web page".
func BenchmarkWebRealMaster(b *testing.B) {
	const history = 100_000
	h := startLargeHistory(b, history)
	m, mx := h.m, h.mx
	// The fill's garbage is the setup's, not the server's: collect it
	// before timing.
	runtime.GC()

	// Server time: the mux into a recorder, so the figure is the master's
	// own (state lookup and rendering), not the network's.
	b.Run("grid", func(b *testing.B) {
		var times []time.Duration
		size := 0
		for b.Loop() {
			rec := httptest.NewRecorder()
			start := time.Now()
			m.Mux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			times = append(times, time.Since(start))
			if rec.Code != http.StatusOK {
				b.Fatalf("GET /: HTTP %d", rec.Code)
			}
			size = rec.Body.Len()
		}
		slices.Sort(times)
		b.ReportMetric(float64(size), "bytes/page")
		b.ReportMetric(percentile(times, 50), "p50-ms")
		b.ReportMetric(percentile(times, 99), "p99-ms")
		fmt.Printf("grid page from real state: %d builders, %d builds: %d bytes, p50 %.2f ms, p99 %.2f ms over %d views (goal p50 < 50 ms, < 1.5 MB)\n",
			len(mx.Builders), history, size, percentile(times, 50), percentile(times, 99), len(times))
	})

	// Latency as clients see it on loopback: 50 clients, each with its own
	// connection, sending a bounded number of requests.
	b.Run("api-builds-50-clients", func(b *testing.B) {
		const clients, perClient = 50, 200
		url := "http://" + m.HTTPAddr() + "/api/v1/builds?limit=100"
		tr := &http.Transport{MaxIdleConnsPerHost: clients}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.ReportMetric(float64(len(body)), "bytes/response")
		for b.Loop() {
			times := make([][]time.Duration, clients)
			var wg sync.WaitGroup
			start := time.Now()
			for c := range clients {
				wg.Go(func() {
					for range perClient {
						t0 := time.Now()
						resp, err := client.Get(url)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Errorf("HTTP %d", resp.StatusCode)
							return
						}
						times[c] = append(times[c], time.Since(t0))
					}
				})
			}
			wg.Wait()
			wall := time.Since(start)
			all := slices.Sorted(slices.Values(slices.Concat(times...)))
			b.ReportMetric(percentile(all, 50), "p50-ms")
			b.ReportMetric(percentile(all, 99), "p99-ms")
			b.ReportMetric(float64(len(all))/wall.Seconds(), "req/s")
			fmt.Printf("GET /api/v1/builds?limit=100 (%d bytes), %d clients × %d requests, %d builds: p50 %.2f ms, p99 %.2f ms, %.0f req/s (goal p99 < 20 ms)\n",
				len(body), clients, perClient, history, percentile(all, 50), percentile(all, 99), float64(len(all))/wall.Seconds())
		}
	})
}
