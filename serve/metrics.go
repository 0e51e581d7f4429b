package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jmedseg/jmedseg/infer"
)

// metrics are a Server's Prometheus metrics, in a registry of its own (so
// that two servers in one process do not collide).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	batches   *prometheus.HistogramVec
	inference *prometheus.HistogramVec
	queued    *prometheus.GaugeVec
	admitted  prometheus.Gauge
}

// modelMetrics are one model's batch metrics.
type modelMetrics struct {
	batches   prometheus.Observer
	inference prometheus.Observer
	queued    prometheus.Gauge
}

func newMetrics(maxBatch int) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jmedseg_http_requests_total", Help: "HTTP requests answered, by route, model and status code.",
	}, []string{"route", "model", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jmedseg_http_request_duration_seconds", Help: "Time from a request's arrival to its answer, by route and model.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
	}, []string{"route", "model"})
	m.batches = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jmedseg_batch_size", Help: "Images run through a model at once (a NIfTI volume counts as 1).",
		Buckets: prometheus.LinearBuckets(1, 1, maxBatch),
	}, []string{"model"})
	m.inference = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jmedseg_batch_duration_seconds", Help: "Time a model takes for one batch.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"model"})
	m.queued = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jmedseg_queue_length", Help: "Requests waiting for a model's batch worker.",
	}, []string{"model"})
	m.admitted = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jmedseg_requests_admitted", Help: "Prediction requests under way (reading, decoding, waiting or running); past --queue more are answered 503.",
	})
	m.reg.MustRegister(m.requests, m.latency, m.batches, m.inference, m.queued, m.admitted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) forModel(name string) *modelMetrics {
	return &modelMetrics{batches: m.batches.WithLabelValues(name), inference: m.inference.WithLabelValues(name),
		queued: m.queued.WithLabelValues(name)}
}

// watchEngine reports p's jit builds as jmedseg_jit_builds{model=name}.
func (m *metrics) watchEngine(name string, p *infer.Predictor) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jmedseg_jit_builds", Help: "Modules the jit engine has built (one per batch shape; 0 with the eager engine).",
		ConstLabels: prometheus.Labels{"model": name},
	}, func() float64 { return float64(p.JITBuilds()) }))
}

// observe records one answered request.
func (m *metrics) observe(route, model string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, model, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route, model).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
