package impl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	autoscalingdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	autoscalingimpl "github.com/lazyscale/lazyscale/comp/admission/autoscaling/impl"
	"github.com/lazyscale/lazyscale/comp/admission/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
)

const validReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",
"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
"namespace":"shop","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p",
"labels":{"pod-template-hash":"abc"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-abc","uid":"1","controller":true}]},
"spec":{"containers":[{"name":"app","image":"app:1"}]}}}}`

// panicky is a webhook whose handler panics: the server must still admit the pod.
type panicky struct{}

func (panicky) Name() string                                           { return "panicky" }
func (panicky) Path() string                                           { return "/panicky" }
func (panicky) Registration() def.Registration                         { return def.Registration{} }
func (panicky) Handle(context.Context, types.UID, []byte) def.Response { panic("bug") }

// closedGate is enough of a gate for the webhook's constructor.
type closedGate struct{ gatedef.Component }

func (closedGate) Opened() <-chan struct{} { return make(chan struct{}) }

func newHandler(t testing.TB, w def.Webhook) http.Handler {
	m, err := newMetrics(prometheus.NewRegistry(), 5*time.Second)
	require.NoError(t, err)
	return &reviewHandler{webhook: w, log: zap.NewNop(), metrics: m.forWebhook(w.Name())}
}

func autoscalingWebhook(t testing.TB, patch bool) def.Webhook {
	p, err := autoscalingimpl.NewComponent(autoscalingimpl.Requires{Logger: zap.NewNop(), Gate: closedGate{}})
	require.NoError(t, err)
	if patch {
		p.Comp.SetPatcher(autoscalingdef.PodPatcherFunc(func(pod *corev1.Pod) (bool, error) {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations["autoscaling.datadoghq.com/autoscaler-id"] = "shop/web"
			return true, nil
		}))
	}
	return p.Webhook
}

func do(h http.Handler, method, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/autoscaling", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestBadRequests(t *testing.T) {
	h := newHandler(t, autoscalingWebhook(t, true))
	tests := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		code        int
		msg         string
	}{
		{"GET", http.MethodGet, "application/json", nil, http.StatusMethodNotAllowed, "POST"},
		{"text body", http.MethodPost, "text/plain", []byte(validReview), http.StatusUnsupportedMediaType, "application/json"},
		{"no content type", http.MethodPost, "", []byte(validReview), http.StatusUnsupportedMediaType, "application/json"},
		{"too large", http.MethodPost, "application/json", bytes.Repeat([]byte(" "), maxBody+1), http.StatusRequestEntityTooLarge, "larger than"},
		{"garbage", http.MethodPost, "application/json", []byte("\x00\xffgarbage"), http.StatusBadRequest, "malformed AdmissionReview"},
		{"truncated", http.MethodPost, "application/json", []byte(validReview[:len(validReview)/2]), http.StatusBadRequest, "malformed AdmissionReview"},
		{"wrong kind", http.MethodPost, "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`), http.StatusBadRequest, "admission.k8s.io/v1 AdmissionReview"},
		{"no request", http.MethodPost, "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest, "request.uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(h, tt.method, tt.contentType, tt.body)
			assert.Equal(t, tt.code, rec.Code)
			assert.Contains(t, rec.Body.String(), tt.msg)
		})
	}
}

func decodeReview(t *testing.T, rec *httptest.ResponseRecorder) *admissionv1.AdmissionResponse {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.NotNil(t, out.Response)
	assert.Equal(t, "admission.k8s.io/v1", out.APIVersion)
	assert.Equal(t, "AdmissionReview", out.Kind)
	return out.Response
}

func TestValidReviews(t *testing.T) {
	t.Run("gate closed: allowed, no patch, UID echoed", func(t *testing.T) {
		resp := decodeReview(t, do(newHandler(t, autoscalingWebhook(t, false)), http.MethodPost, "application/json", []byte(validReview)))
		assert.True(t, resp.Allowed)
		assert.Equal(t, types.UID("u-1"), resp.UID)
		assert.Nil(t, resp.Patch)
	})
	t.Run("patching", func(t *testing.T) {
		resp := decodeReview(t, do(newHandler(t, autoscalingWebhook(t, true)), http.MethodPost, "application/json; charset=utf-8", []byte(validReview)))
		assert.True(t, resp.Allowed)
		require.NotNil(t, resp.PatchType)
		assert.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
		assert.Contains(t, string(resp.Patch), "autoscaler-id")
	})
	t.Run("undecodable pod: allowed with a warning", func(t *testing.T) {
		body := strings.Replace(validReview, `"containers":[{"name":"app","image":"app:1"}]`, `"containers":"nope"`, 1)
		require.NotEqual(t, validReview, body)
		resp := decodeReview(t, do(newHandler(t, autoscalingWebhook(t, true)), http.MethodPost, "application/json", []byte(body)))
		assert.True(t, resp.Allowed)
		assert.Nil(t, resp.Patch)
		require.NotEmpty(t, resp.Warnings)
	})
	t.Run("a panicking webhook still admits", func(t *testing.T) {
		resp := decodeReview(t, do(newHandler(t, panicky{}), http.MethodPost, "application/json", []byte(validReview)))
		assert.True(t, resp.Allowed)
		assert.NotEmpty(t, resp.Warnings)
	})
}

// FuzzReviewHandler: no body may crash the server or produce an invalid answer. Seeds are in
// testdata/fuzz/FuzzReviewHandler; run longer with go test -fuzz=FuzzReviewHandler.
func FuzzReviewHandler(f *testing.F) {
	f.Add([]byte(validReview))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":null}}`))
	h := newHandler(f, autoscalingWebhook(f, true))
	f.Fuzz(func(t *testing.T, body []byte) {
		// The envelope scanner agrees with encoding/json on what the apiserver sends.
		if got, err := readEnvelope(body); err == nil {
			var want envelope
			if json.Unmarshal(body, &want) == nil && exactKeys(body) {
				if got.APIVersion != want.APIVersion || got.Kind != want.Kind || (got.Request == nil) != (want.Request == nil) ||
					(got.Request != nil && got.Request.UID != want.Request.UID) {
					t.Fatalf("scanner %+v, encoding/json %+v", got, want)
				}
			}
		}
		rec := do(h, http.MethodPost, "application/json", body)
		switch rec.Code {
		case http.StatusOK:
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil || !out.Response.Allowed {
				t.Fatalf("200 without an allowing review: %s", rec.Body.String())
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
	})
}

// BenchmarkReviewHandler is the whole HTTP handler (envelope parse, webhook, response
// encoding) without the network: gate closed against patching.
func BenchmarkReviewHandler(b *testing.B) {
	body := []byte(validReview)
	for _, bc := range []struct {
		name  string
		patch bool
	}{{"gate-closed", false}, {"patching", true}} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(b, autoscalingWebhook(b, bc.patch))
			// One request and writer, reset per iteration: what is measured is the handler,
			// not httptest's allocations (net/http's server has its own, the same either way).
			req := httptest.NewRequest(http.MethodPost, "/autoscaling", nil)
			req.Header.Set("Content-Type", "application/json")
			reader := bytes.NewReader(body)
			rw := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				reader.Reset(body)
				req.Body = io.NopCloser(reader)
				rw.code = 0
				h.ServeHTTP(rw, req)
				if rw.code != 0 && rw.code != http.StatusOK {
					b.Fatal(rw.code)
				}
			}
		})
	}
}

type discardWriter struct {
	header http.Header
	code   int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

// exactKeys is true when the body holds each key exactly once, spelled exactly, in valid
// UTF-8 without \u escapes: what the apiserver sends. Elsewhere encoding/json differs on
// purpose (case-insensitive keys, merging duplicates, replacing invalid UTF-8).
func exactKeys(body []byte) bool {
	s := string(body)
	if !utf8.Valid(body) || strings.Contains(s, `\u`) {
		return false
	}
	for _, k := range []string{"apiVersion", "kind", "request", "uid"} {
		if strings.Count(strings.ToLower(s), strings.ToLower(`"`+k+`"`)) != 1 || strings.Count(s, `"`+k+`"`) != 1 {
			return false
		}
	}
	return true
}

func TestReadEnvelope(t *testing.T) {
	tests := []struct {
		name string
		body string
		uid  types.UID
		ok   bool
	}{
		{"valid", validReview, "u-1", true},
		{"keys in any order, request first", `{"request":{"object":{"a":[1,{"b":"}"}]},"uid":"x"},"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}`, "x", true},
		{"escaped uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a\"b"}}`, `a"b`, true},
		{"null request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`, "", true},
		{"request not an object", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[1]}`, "", false},
		{"uid not a string", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}`, "", false},
		{"array", `[1,2]`, "", false},
		{"truncated", validReview[:40], "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := readEnvelope([]byte(tt.body))
			if !tt.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			if tt.uid != "" {
				require.NotNil(t, env.Request)
				assert.Equal(t, tt.uid, env.Request.UID)
			}
		})
	}
}

func TestDurationBucketsEndAtTheTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		last    float64
	}{{time.Second, 1}, {5 * time.Second, 5}, {7 * time.Second, 7}, {30 * time.Second, 30}} {
		b := durationBuckets(tc.timeout)
		assert.Equal(t, tc.last, b[len(b)-1], "timeout %s", tc.timeout)
		assert.True(t, slices.IsSorted(b))
		assert.Equal(t, 0.0001, b[0])
	}
}
