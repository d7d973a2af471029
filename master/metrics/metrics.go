// Package metrics holds the master's Prometheus metrics. The master calls the
// small recording API on Metrics; Handler serves them at /metrics.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one master's set of collectors, on a registry of its own so that
// tests and several masters in one process do not collide.
type Metrics struct {
	reg      *prometheus.Registry
	finished *prometheus.CounterVec
	queue    prometheus.Gauge
	dispatch prometheus.Histogram
	workers  prometheus.Gauge
	publish  prometheus.Histogram
}

// New makes the collectors and registers them with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln",
			Name:      "builds_finished_total",
			Help:      "Builds that reached a final status, by that status.",
		}, []string{"result"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kiln",
			Name:      "queue_length",
			Help:      "Build requests waiting for their dependencies or a worker.",
		}),
		// Dispatch waits range from milliseconds on an idle farm to hours
		// when every slot is busy, hence the wide exponential buckets.
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kiln",
			Name:      "dispatch_latency_seconds",
			Help:      "Time from a build request becoming ready to its build starting on a worker.",
			Buckets:   prometheus.ExponentialBuckets(0.01, 4, 12),
		}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kiln",
			Name:      "workers_connected",
			Help:      "Workers currently connected to the master.",
		}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kiln",
			Name:      "publish_duration_seconds",
			Help:      "Time to publish one repository: indexes, signatures and the atomic switch.",
			Buckets:   prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
	}
	m.reg.MustRegister(m.finished, m.queue, m.dispatch, m.workers, m.publish,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// BuildFinished counts one build that ended with result ("success",
// "failure", ...).
func (m *Metrics) BuildFinished(result string) { m.finished.WithLabelValues(result).Inc() }

// SetQueueLength records how many build requests wait.
func (m *Metrics) SetQueueLength(n int) { m.queue.Set(float64(n)) }

// ObserveDispatch records one ready → started wait.
func (m *Metrics) ObserveDispatch(d time.Duration) { m.dispatch.Observe(d.Seconds()) }

// SetWorkers records how many workers are connected.
func (m *Metrics) SetWorkers(n int) { m.workers.Set(float64(n)) }

// ObservePublish records one repository publication's duration.
func (m *Metrics) ObservePublish(d time.Duration) { m.publish.Observe(d.Seconds()) }

// Registry exposes the registry for packages that add collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
