package web

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// benchPage serves path from a farm of about 4,300 builders with 100k builds
// of history and reports the page's size (plain and gzipped) and the median and 99th percentile
// server time, the figures docs/benchmarks.md records.
func benchPage(b *testing.B, path string) {
	src := largeFarm(100_000)
	h := New(testOptions(src, nil))
	var times []time.Duration
	var body []byte
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		times = append(times, time.Since(start))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, rec.Code)
		}
		body = rec.Body.Bytes()
	}
	// Most browsers get the page compressed when a proxy or the master gzips
	// it; report that size too.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	slices.Sort(times)
	b.ReportMetric(float64(len(body)), "bytes/page")
	b.ReportMetric(float64(gz.Len()), "gzip-bytes/page")
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}

func BenchmarkGridPage(b *testing.B) { benchPage(b, "/") }
func BenchmarkGridPageFiltered(b *testing.B) {
	benchPage(b, "/?distro=debian&status=failure&component=1")
}
