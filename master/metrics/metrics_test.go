package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches the handler's output and parses it as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

func TestScrape(t *testing.T) {
	m := New()
	m.BuildFinished("success")
	m.BuildFinished("success")
	m.BuildFinished("failure")
	m.SetQueueLength(17)
	m.SetWorkers(3)
	m.ObserveDispatch(250 * time.Millisecond)
	m.ObserveDispatch(2 * time.Second)
	m.ObservePublish(1500 * time.Millisecond)

	fams := scrape(t, m.Handler())
	counter := func(result string) float64 {
		for _, mt := range fams["kiln_builds_finished_total"].GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return mt.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	gauge := func(name string) float64 { return fams[name].GetMetric()[0].GetGauge().GetValue() }
	hist := func(name string) *dto.Histogram { return fams[name].GetMetric()[0].GetHistogram() }

	checks := []struct {
		name      string
		got, want float64
	}{
		{"success builds", counter("success"), 2},
		{"failed builds", counter("failure"), 1},
		{"queue length", gauge("kiln_queue_length"), 17},
		{"workers", gauge("kiln_workers_connected"), 3},
		{"dispatch count", float64(hist("kiln_dispatch_latency_seconds").GetSampleCount()), 2},
		{"dispatch sum", hist("kiln_dispatch_latency_seconds").GetSampleSum(), 2.25},
		{"publish count", float64(hist("kiln_publish_duration_seconds").GetSampleCount()), 1},
		{"publish sum", hist("kiln_publish_duration_seconds").GetSampleSum(), 1.5},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("runtime metrics missing from the scrape")
	}

	// Setting a gauge replaces its value rather than adding to it.
	m.SetQueueLength(0)
	if got := scrape(t, m.Handler())["kiln_queue_length"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("queue length after reset = %v, want 0", got)
	}
}

// Two masters in one process (as in tests of the master) must not share or
// clash over collectors.
func TestIndependentRegistries(t *testing.T) {
	a, b := New(), New()
	a.SetWorkers(5)
	if got := scrape(t, b.Handler())["kiln_workers_connected"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("second registry sees the first one's workers: %v", got)
	}
}
