package impl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	autoscalingdef "github.com/lazyscale/lazyscale/comp/autoscaling/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	"github.com/lazyscale/lazyscale/comp/status/def"
)

func uiGet(t *testing.T, s *server, query string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ui(rec, httptest.NewRequest(http.MethodGet, "/ui"+query, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
	return rec.Body.String()
}

func TestUIDormant(t *testing.T) {
	calls := 0
	s := &server{log: zap.NewNop(), version: "v1.2.3",
		sections: []def.Section{{Name: "gate", Fill: func(d *def.Document) {
			d.Gate = &gatedef.Status{WorkloadAutoscaling: true}
		}}},
		autoscalers: func() autoscalingdef.Report { calls++; return autoscalingdef.Report{} },
	}
	body := uiGet(t, s, "")
	assert.Contains(t, body, `id="dormant"`)
	assert.Contains(t, body, "closed: dormant until the first DPA")
	assert.NotContains(t, body, `id="summary"`)
	assert.Equal(t, 1, calls)
}

func podState(name string, cpu, mem string) autoscalingdef.PodState {
	return autoscalingdef.PodState{Name: name, Ready: true, Containers: []autoscalingdef.ContainerResources{
		{Name: "app", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}},
		{Name: "sidecar", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}},
	}}
}

func TestUIShowsWhatWouldChange(t *testing.T) {
	now := time.Now()
	two := int32(2)
	web := &v1alpha2.DatadogPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: v1alpha2.DatadogPodAutoscalerSpec{
			TargetRef:   v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
			ApplyPolicy: &v1alpha2.DatadogPodAutoscalerApplyPolicy{Mode: v1alpha2.DatadogPodAutoscalerApplyModePreview},
			Constraints: &v1alpha2.DatadogPodAutoscalerConstraints{MinReplicas: &two},
		},
		Status: v1alpha2.DatadogPodAutoscalerStatus{
			CurrentReplicas: &two,
			Vertical: &v1alpha2.DatadogPodAutoscalerVerticalStatus{Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
				Source: v1alpha2.DatadogPodAutoscalerManualValueSource, Version: "abc123", GeneratedAt: metav1.NewTime(now.Add(-2 * time.Hour)),
				DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "app",
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("400m"), corev1.ResourceMemory: resource.MustParse("96Mi")}}},
			}},
			Conditions: []v1alpha2.DatadogPodAutoscalerCondition{
				{Type: v1alpha2.ConditionActive, Status: metav1.ConditionTrue},
				{Type: v1alpha2.ConditionError, Status: metav1.ConditionTrue, Reason: "Bad", Message: `<script>alert(1)</script>`},
			},
		},
	}
	s := &server{log: zap.NewNop(), version: "v", autoscalers: func() autoscalingdef.Report {
		return autoscalingdef.Report{Running: true, Leader: true, Timeline: 6 * time.Hour, Autoscalers: []autoscalingdef.AutoscalerReport{{
			DPA: web, Pods: []autoscalingdef.PodState{podState("a", "100m", "128Mi"), podState("b", "100m", "128Mi")},
			Timeline: []autoscalingdef.TimelinePoint{
				{At: now.Add(-time.Hour), CurrentReplicas: 2, DesiredReplicas: -1, CPUMilli: -1, MemoryBytes: -1},
				{At: now.Add(-time.Minute), CurrentReplicas: 3, DesiredReplicas: 4, CPUMilli: 450, MemoryBytes: 96 << 20},
			},
		}}}
	}}
	body := uiGet(t, s, "")
	assert.Contains(t, body, `data-dpa="shop/web" data-mode="Preview"`)
	assert.Contains(t, body, `data-container="app" data-resource="requests.cpu" data-current="100m" data-recommended="400m"`)
	assert.Contains(t, body, "&#43;300m (&#43;300%)")
	assert.Contains(t, body, "−32Mi (−25%)")
	// The sidecar has no recommendation: it counts at its request in both totals.
	// CPU: 2×(100m+50m)=300m today, 2×(400m+50m)=900m recommended.
	assert.Contains(t, body, `data-namespace="shop" data-pods="2" data-cur-cpu-milli="300" data-rec-cpu-milli="900" data-cur-mem-bytes="268435456" data-rec-mem-bytes="201326592"`)
	assert.Contains(t, body, `id="total" data-pods="2" data-cur-cpu-milli="300"`)
	assert.Contains(t, body, "stale")
	assert.Contains(t, body, `data-replicas="min">2<`)
	assert.Contains(t, body, `data-replicas="max">—<`)
	assert.Contains(t, body, "Manual recommendation abc123")
	assert.Contains(t, body, "&lt;script&gt;", "a condition's message is escaped")
	assert.NotContains(t, body, "<script>")
	assert.Equal(t, 3, strings.Count(body, `<svg class="chart"`))
	assert.Contains(t, body, `aria-label="Replicas"`)

	// A namespace filter that matches nothing.
	assert.Contains(t, uiGet(t, s, "?namespace=other"), `id="empty"`)
}

func TestUIFollower(t *testing.T) {
	dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x"},
		Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "x"}}}
	s := &server{log: zap.NewNop(), autoscalers: func() autoscalingdef.Report {
		return autoscalingdef.Report{Running: true, Autoscalers: []autoscalingdef.AutoscalerReport{{DPA: dpa}}}
	}}
	body := uiGet(t, s, "")
	assert.Contains(t, body, `id="follower"`)
	assert.Contains(t, body, "on the leader")
	assert.Contains(t, body, `data-mode="Apply"`)
}

func TestUIChartsOnANamespacePageWhenMany(t *testing.T) {
	var as []autoscalingdef.AutoscalerReport
	for i := range chartsUpTo + 1 {
		ns := "a"
		if i == 0 {
			ns = "b"
		}
		as = append(as, autoscalingdef.AutoscalerReport{
			DPA: &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("d%03d", i)},
				Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "x"}}},
			Timeline: []autoscalingdef.TimelinePoint{{At: time.Now(), CurrentReplicas: 1, DesiredReplicas: 1, CPUMilli: 1, MemoryBytes: 1}},
		})
	}
	s := &server{log: zap.NewNop(), autoscalers: func() autoscalingdef.Report {
		return autoscalingdef.Report{Running: true, Leader: true, Timeline: time.Hour, Autoscalers: as}
	}}
	all := uiGet(t, s, "")
	assert.Zero(t, strings.Count(all, `<svg class="chart"`))
	assert.Contains(t, all, `href="?namespace=a"`)
	assert.Equal(t, 3, strings.Count(uiGet(t, s, "?namespace=b"), `<svg class="chart"`))
}

func TestChangeAndFormats(t *testing.T) {
	assert.Equal(t, uiChange{Known: true, Direction: "same", Abs: "0", Pct: "0%"}, change(100, 100, fmtCPU))
	assert.Equal(t, uiChange{Known: true, Direction: "up", Abs: "+100m"}, change(0, 100, fmtCPU))
	assert.Equal(t, "+0.5%", change(1000, 1005, fmtCPU).Pct)
	assert.Equal(t, "1.5 cores", fmtCPUTotal(1500))
	assert.Equal(t, "2 cores", fmtCPUTotal(2000))
	assert.Equal(t, "1.50 GiB", fmtMemTotal(3<<29))
	assert.Equal(t, "6h00m", span(6*time.Hour))
}

// BenchmarkUIPage renders the page of n DPAs of 10 pods each, with full timelines: what a
// request of /ui costs the agent (go test -bench UIPage -benchmem ./comp/status/impl).
func BenchmarkUIPage(b *testing.B) {
	for _, n := range []int{chartsUpTo, 1000} {
		b.Run(fmt.Sprintf("dpas=%d", n), func(b *testing.B) {
			now := time.Now()
			var tl []autoscalingdef.TimelinePoint
			for i := range 180 {
				tl = append(tl, autoscalingdef.TimelinePoint{At: now.Add(-time.Duration(180-i) * 2 * time.Minute), CurrentReplicas: 10, DesiredReplicas: 10, CPUMilli: 400, MemoryBytes: 96 << 20})
			}
			var pods []autoscalingdef.PodState
			for i := range 10 {
				pods = append(pods, podState(fmt.Sprint(i), "100m", "128Mi"))
			}
			var as []autoscalingdef.AutoscalerReport
			for i := range n {
				dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%02d", i%40), Name: fmt.Sprintf("d%04d", i)},
					Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "x"}},
					Status: v1alpha2.DatadogPodAutoscalerStatus{Vertical: &v1alpha2.DatadogPodAutoscalerVerticalStatus{Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
						Source: v1alpha2.DatadogPodAutoscalerLocalValueSource, Version: "v1", GeneratedAt: metav1.NewTime(now),
						DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "app",
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("400m"), corev1.ResourceMemory: resource.MustParse("96Mi")}}},
					}}}}
				as = append(as, autoscalingdef.AutoscalerReport{DPA: dpa, Pods: pods, Timeline: tl})
			}
			s := &server{log: zap.NewNop(), autoscalers: func() autoscalingdef.Report {
				return autoscalingdef.Report{Running: true, Leader: true, Timeline: 6 * time.Hour, Autoscalers: as}
			}}
			req := httptest.NewRequest(http.MethodGet, "/ui", nil)
			var size int
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.ui(rec, req)
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size)/1024, "KiB/page")
		})
	}
}
