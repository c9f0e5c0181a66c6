package impl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/comp/admission/def"
	"github.com/lazyscale/lazyscale/comp/core/telemetry"
)

// maxBody caps a review. The apiserver's own request limit is 3 MiB; 4 MiB leaves room for the
// envelope and old objects without letting a client exhaust memory.
const maxBody = 4 << 20

// envelope is the part of an AdmissionReview the server reads itself: enough to validate it and
// echo the request UID, without decoding the object it carries.
type envelope struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID types.UID `json:"uid"`
	} `json:"request"`
}

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	handshakes prometheus.Counter
}

// outcomes are the outcome label values; each webhook's counters are resolved once so the hot
// path does no label hashing. The result label says success or error, as on every counter.
var outcomes = map[string]string{
	"patched": telemetry.ResultSuccess, "unchanged": telemetry.ResultSuccess, "skipped": telemetry.ResultSuccess,
	"error": telemetry.ResultError, "bad_request": telemetry.ResultError,
}

// webhookMetrics are one webhook's resolved series.
type webhookMetrics struct {
	results  map[string]prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) forWebhook(name string) *webhookMetrics {
	wm := &webhookMetrics{results: map[string]prometheus.Counter{}, duration: m.duration.WithLabelValues(name)}
	for o, r := range outcomes {
		wm.results[o] = m.requests.WithLabelValues(name, o, r)
	}
	return wm
}

func (wm *webhookMetrics) count(outcome string) {
	c, ok := wm.results[outcome]
	if !ok {
		c = wm.results["error"]
	}
	c.Inc()
}

// durationBuckets go from 100 µs to the webhook's timeout (the apiserver gives up there, so
// slower answers are all failures to it).
func durationBuckets(timeout time.Duration) []float64 {
	b := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30}
	limit := timeout.Seconds()
	for i, v := range b {
		if v >= limit {
			return append(b[:i:i], limit)
		}
	}
	return b
}

func newMetrics(reg prometheus.Registerer, timeout time.Duration) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_admission_webhook_requests_total",
			Help: "Admission reviews answered, by webhook, outcome (patched, unchanged, skipped, error, bad_request) and result (success, error).",
		}, []string{"webhook", "outcome", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lazyscale_admission_webhook_duration_seconds",
			Help:    "Time to answer an admission review, by webhook; the last bucket is the webhook's timeout.",
			Buckets: durationBuckets(timeout),
		}, []string{"webhook"}),
	}
	m.handshakes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lazyscale_admission_tls_handshakes_total",
		Help: "TLS handshakes served by the admission server.",
	})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.handshakes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// reviewHandler turns HTTP into Webhook.Handle calls. Every failure that is the client's gets a
// 4xx with a one-line reason; a review that parses always gets an AdmissionReview back, so the
// apiserver never has to apply its failure policy because of lazyscale.
type reviewHandler struct {
	webhook def.Webhook
	log     *zap.Logger
	metrics *webhookMetrics
}

// bodyPool recycles request buffers: reviews are a few KB and arrive for every pod created.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (h *reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { h.metrics.duration.Observe(time.Since(start).Seconds()) }()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, "admission reviews are POSTed")
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		h.fail(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
		h.fail(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if buf.Len() > maxBody {
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("review larger than %d bytes", maxBody))
		return
	}
	body := buf.Bytes()
	env, err := readEnvelope(body)
	if err != nil {
		h.fail(w, http.StatusBadRequest, "malformed AdmissionReview: "+err.Error())
		return
	}
	if env.APIVersion != "admission.k8s.io/v1" || env.Kind != "AdmissionReview" {
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("want an admission.k8s.io/v1 AdmissionReview, got %s %s", env.APIVersion, env.Kind))
		return
	}
	if env.Request == nil || env.Request.UID == "" {
		h.fail(w, http.StatusBadRequest, "AdmissionReview has no request.uid")
		return
	}

	resp := h.handle(r.Context(), env.Request.UID, body)
	h.metrics.count(resp.Outcome)
	w.Header()["Content-Type"] = jsonContentType
	if out, ok := plainAllowed(env.Request.UID, resp); ok {
		_, _ = w.Write(out)
		return
	}
	out, err := json.Marshal(reviewResponse(env.Request.UID, resp))
	if err != nil {
		h.log.Error("encode admission response", zap.Error(err))
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(out)
}

var jsonContentType = []string{"application/json"}

func isJSON(contentType string) bool {
	if contentType == "application/json" {
		return true
	}
	ct, _, err := mime.ParseMediaType(contentType)
	return err == nil && ct == "application/json"
}

// plainAllowed encodes the most common answer, "allowed, nothing else", without reflection.
// UIDs are UUIDs; anything needing JSON escaping takes the general path.
func plainAllowed(uid types.UID, r def.Response) ([]byte, bool) {
	if !r.Allowed || r.Patch != nil || r.Warnings != nil || r.Result != nil {
		return nil, false
	}
	for _, c := range []byte(uid) {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return nil, false
		}
	}
	const head = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"`
	const tail = `","allowed":true}}`
	out := make([]byte, 0, len(head)+len(uid)+len(tail))
	out = append(append(append(out, head...), uid...), tail...)
	return out, true
}

// fail answers a request that is not a usable review.
func (h *reviewHandler) fail(w http.ResponseWriter, code int, msg string) {
	h.metrics.count("bad_request")
	h.log.Debug("rejected admission request", zap.Int("code", code), zap.String("reason", msg))
	http.Error(w, msg, code)
}

// handle calls the webhook and turns a panic into "allowed, no patch": a bug in a patcher must
// never cost a pod creation.
func (h *reviewHandler) handle(ctx context.Context, uid types.UID, body []byte) (resp def.Response) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("webhook panicked; pod admitted unchanged", zap.String("webhook", h.webhook.Name()),
				zap.String("uid", string(uid)), zap.Any("panic", p))
			resp = def.Response{Allowed: true, Outcome: "error", Warnings: []string{"lazyscale: internal error, pod admitted unchanged"}}
		}
	}()
	resp = h.webhook.Handle(ctx, uid, body)
	if resp.Outcome == "" {
		resp.Outcome = "unchanged"
	}
	return resp
}

func reviewResponse(uid types.UID, r def.Response) *admissionv1.AdmissionReview {
	out := &admissionv1.AdmissionReview{Response: &admissionv1.AdmissionResponse{
		UID: uid, Allowed: r.Allowed, Warnings: r.Warnings, Result: r.Result,
	}}
	out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	if len(r.Patch) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		out.Response.Patch, out.Response.PatchType = r.Patch, &pt
	}
	return out
}
