// Package kubemetrics gives client-go's request metrics and workqueue metrics a home in
// lazyscale's registry. client-go takes one provider of each per process, set once; so the
// series here are process-wide, and Register adds the same collectors to each registry that
// asks (an agent has one; tests build many). A host that set its own client-go or workqueue
// provider first keeps it, and these series stay at their initial values.
package kubemetrics

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/metrics"
	"k8s.io/client-go/util/workqueue"
)

// Series names.
const (
	MetricRequestDuration     = "lazyscale_kube_client_request_duration_seconds"
	MetricRequests            = "lazyscale_kube_client_requests_total"
	MetricRateLimiterDuration = "lazyscale_kube_client_rate_limiter_duration_seconds"
	MetricRequestRetries      = "lazyscale_kube_client_request_retries_total"
	MetricQueueDepth          = "lazyscale_workqueue_depth"
	MetricQueueAdds           = "lazyscale_workqueue_adds_total"
	MetricQueueLatency        = "lazyscale_workqueue_queue_duration_seconds"
	MetricQueueWorkDuration   = "lazyscale_workqueue_work_duration_seconds"
	MetricQueueUnfinished     = "lazyscale_workqueue_unfinished_work_seconds"
	MetricQueueLongest        = "lazyscale_workqueue_longest_running_processor_seconds"
	MetricQueueRetries        = "lazyscale_workqueue_retries_total"
)

// From a cached answer to a slow list; from an item picked at once to one waiting out a backoff.
var (
	requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	queueBuckets   = []float64{0.0001, 0.001, 0.01, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
)

var (
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricRequestDuration, Help: "Kubernetes API request latency, by verb.", Buckets: requestBuckets,
	}, []string{"verb"})
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests, Help: "Kubernetes API requests, by HTTP method and status code (<error> when no answer came).",
	}, []string{"method", "code"})
	rateLimiterDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricRateLimiterDuration, Help: "Time Kubernetes API requests waited on the client's rate limiter (kubernetes.qps), by verb.",
		Buckets: requestBuckets,
	}, []string{"verb"})
	requestRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequestRetries, Help: "Kubernetes API requests retried by the client, by HTTP method and status code.",
	}, []string{"method", "code"})

	queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricQueueDepth, Help: "Items waiting in each workqueue (datadogpodautoscalers, clusterprofiles).",
	}, []string{"name"})
	queueAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricQueueAdds, Help: "Items added to each workqueue.",
	}, []string{"name"})
	queueLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricQueueLatency, Help: "Time an item waits in a workqueue before a worker takes it.", Buckets: queueBuckets,
	}, []string{"name"})
	queueWork = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricQueueWorkDuration, Help: "Time a worker spends on one item of a workqueue.", Buckets: queueBuckets,
	}, []string{"name"})
	queueUnfinished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricQueueUnfinished, Help: "Seconds of work in progress not yet observed by work_duration, per workqueue: a large value with few items means stuck workers.",
	}, []string{"name"})
	queueLongest = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricQueueLongest, Help: "How long the longest-running worker of each workqueue has been at its item.",
	}, []string{"name"})
	queueRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricQueueRetries, Help: "Items put back in each workqueue with a rate-limited delay (failed reconciles).",
	}, []string{"name"})

	collectors = []prometheus.Collector{requestDuration, requests, rateLimiterDuration, requestRetries,
		queueDepth, queueAdds, queueLatency, queueWork, queueUnfinished, queueLongest, queueRetries}

	install sync.Once
)

// Known queue names: their series exist from the start.
var queueNames = []string{"datadogpodautoscalers", "clusterprofiles"}

// Register sets the process's client-go and workqueue metrics providers (once per process) and
// adds their collectors to reg. Call it before the first client or queue is built: client-go
// reads the providers when it builds them.
func Register(reg prometheus.Registerer) error {
	install.Do(func() {
		metrics.Register(metrics.RegisterOpts{
			RequestLatency:     latency{requestDuration},
			RateLimiterLatency: latency{rateLimiterDuration},
			RequestResult:      result{requests},
			RequestRetry:       retry{requestRetries},
		})
		workqueue.SetProvider(queueProvider{})
		for _, n := range queueNames {
			queueDepth.WithLabelValues(n)
			queueAdds.WithLabelValues(n)
			queueLatency.WithLabelValues(n)
			queueWork.WithLabelValues(n)
			queueUnfinished.WithLabelValues(n)
			queueLongest.WithLabelValues(n)
			queueRetries.WithLabelValues(n)
		}
	})
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

type latency struct{ v *prometheus.HistogramVec }

func (l latency) Observe(_ context.Context, verb string, _ url.URL, d time.Duration) {
	l.v.WithLabelValues(verb).Observe(d.Seconds())
}

type result struct{ v *prometheus.CounterVec }

func (r result) Increment(_ context.Context, code, method, _ string) {
	r.v.WithLabelValues(method, code).Inc()
}

type retry struct{ v *prometheus.CounterVec }

func (r retry) IncrementRetry(_ context.Context, code, method, _ string) {
	r.v.WithLabelValues(method, code).Inc()
}

// queueProvider hands each queue its series. A queue replaces the last one of its name (the
// DPA controller builds one per leadership term, and a term's queue is shut down with whatever
// it held): its depth and work in progress start again from 0.
type queueProvider struct{}

func (queueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	g := queueDepth.WithLabelValues(name)
	g.Set(0)
	return g
}

func (queueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return queueAdds.WithLabelValues(name)
}

func (queueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return queueLatency.WithLabelValues(name)
}

func (queueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return queueWork.WithLabelValues(name)
}

func (queueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	g := queueUnfinished.WithLabelValues(name)
	g.Set(0)
	return g
}

func (queueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	g := queueLongest.WithLabelValues(name)
	g.Set(0)
	return g
}

func (queueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return queueRetries.WithLabelValues(name)
}
