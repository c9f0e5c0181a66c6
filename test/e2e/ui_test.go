package e2e

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// chromiumPath is the headless browser the page is tested in: $CHROMIUM, or Debian's chromium
// package, which `make test` installs (hack/chromium.sh).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium to test the page in: run `bash hack/chromium.sh` (make test does), or set CHROMIUM")
	return ""
}

// browse runs headless Chromium on url with args (--dump-dom, --screenshot=…) and returns what
// it printed.
func browse(t *testing.T, browser, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--no-default-browser-check", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, browser, append(all, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	return stdout.Bytes()
}

// page is the DOM the browser built.
type page struct{ root *html.Node }

func parsePage(t *testing.T, dom []byte) page {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(dom))
	require.NoError(t, err)
	return page{root}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// all returns the elements under n that have every attribute of want (a value "" matches any).
func all(n *html.Node, want map[string]string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			match := true
			for k, v := range want {
				got, ok := attr(n, k)
				if !ok || (v != "" && got != v) {
					match = false
					break
				}
			}
			if match {
				out = append(out, n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func one(t *testing.T, n *html.Node, want map[string]string) *html.Node {
	t.Helper()
	got := all(n, want)
	require.Len(t, got, 1, "elements with %v", want)
	return got[0]
}

// uiDeployment creates Deployment ns/name of replicas pods whose app container requests cpu
// and memory, and waits for them to run.
func uiDeployment(t *testing.T, e *testenv.Env, ns, name string, replicas int32, cpu, memory string) {
	t.Helper()
	d := testenv.Deployment(ns, name, nil)
	d.Spec.Replicas = testenv.Ptr(replicas)
	d.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memory)},
	}
	_, err := e.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(e.RunningPods(ns, name)) == int(replicas) }, testenv.WaitFor, 200*time.Millisecond)
}

func getDPA(t *testing.T, e *testenv.Env, ns, name string) *v1alpha2.DatadogPodAutoscaler {
	t.Helper()
	u, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	var dpa v1alpha2.DatadogPodAutoscaler
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &dpa))
	return &dpa
}

func getUI(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/ui")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The /ui page in a real browser against the real local cluster (controllers, scheduler, a
// kwok node). Dormant, it says so and the agent lists and watches nothing for it. With a
// Preview and an Apply DPA in two namespaces, the numbers it shows are the DPAs' status and the
// pods' requests as the apiserver has them, and the summary adds them up. It saves a screenshot
// (docs/ui.png comes from `make ui-screenshot`).
func TestUIInABrowser(t *testing.T) {
	browser := chromiumPath(t)
	bin := buildBinary(t)
	e := testenv.NewEnvWith(t, controlplane.Options{InstallCRDs: true, Nodes: 1, MetricsServer: true})
	shop, blog := e.Namespace("shop", nil), e.Namespace("blog", nil)
	uiDeployment(t, e, shop, "web", 2, "200m", "256Mi")
	uiDeployment(t, e, shop, "cart", 2, "100m", "128Mi")
	uiDeployment(t, e, blog, "api", 1, "500m", "1Gi")
	// Usage against the DPAs' 70 % CPU objective: web runs hot (125 %: the local recommender
	// wants 4 replicas, which Preview only shows); cart and api run at 60 % or less, before and
	// after cart's new request, so nothing scales while the test reads.
	e.SetUsage(shop, "web", "250m", "200Mi")
	e.SetUsage(shop, "cart", "60m", "100Mi")
	e.SetUsage(blog, "api", "300m", "700Mi")

	_, addr, logs := oneAgent(t, bin, e, "agent-a")
	require.Eventually(t, func() bool { _, err := getStatus(addr); return err == nil }, testenv.WaitFor, 100*time.Millisecond, "no status port; logs:\n%s", logs)

	// Dormant: the page says so, and reading it lists and watches nothing.
	from := time.Now()
	dormant := parsePage(t, browse(t, browser, "http://"+addr+"/ui", "--dump-dom"))
	assert.Contains(t, text(one(t, dormant.root, map[string]string{"id": "dormant"})), "lists nothing and watches nothing")
	assert.Contains(t, text(one(t, dormant.root, map[string]string{"data-agent": "gate"})), "closed: dormant")
	assert.Empty(t, e.LazyscaleRequests("pods"), "the dormant agent read pods")
	for _, r := range e.LazyscaleRequests("", "list", "watch") {
		assert.True(t, r.RequestReceivedTimestamp.Before(&metav1.MicroTime{Time: from}), "a %s of %s while the page was read", r.Verb, r.ObjectRef.Resource)
	}

	// A Preview DPA and an Apply one in shop, a Preview one in blog.
	dpa := func(ns, name string, mode v1alpha2.DatadogPodAutoscalerApplyMode, force string) {
		u := testenv.DPA(ns, name, name)
		u.SetAnnotations(map[string]string{v1alpha2.ForceResourcesAnnotation: force})
		obj := u.Object["spec"].(map[string]any)
		obj["applyPolicy"] = map[string]any{"mode": string(mode), "update": map[string]any{"strategy": "TriggerRollout"}}
		_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	dpa(shop, "web", v1alpha2.DatadogPodAutoscalerApplyModePreview, `[{"name": "app", "requests": {"cpu": "300m", "memory": "192Mi"}}]`)
	dpa(shop, "cart", v1alpha2.DatadogPodAutoscalerApplyModeApply, `[{"name": "app", "requests": {"cpu": "150m", "memory": "128Mi"}}]`)
	dpa(blog, "api", v1alpha2.DatadogPodAutoscalerApplyModePreview, `[{"name": "app", "requests": {"cpu": "250m", "memory": "768Mi"}}]`)

	// The Apply DPA rolls cart out: its pods run the recommendation.
	require.Eventually(t, func() bool {
		pods := e.RunningPods(shop, "cart")
		return len(pods) == 2 && !slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Spec.Containers[0].Resources.Requests.Cpu().String() != "150m" })
	}, testenv.WaitFor, 200*time.Millisecond, "cart never ran the recommendation; logs:\n%s", logs)
	// Every DPA has a replica recommendation from the pods' usage.
	for _, key := range [][2]string{{shop, "web"}, {shop, "cart"}, {blog, "api"}} {
		require.Eventually(t, func() bool {
			h := getDPA(t, e, key[0], key[1]).Status.Horizontal
			return h != nil && h.Target != nil
		}, 2*testenv.WaitFor, 500*time.Millisecond, "%s/%s: no replica recommendation; logs:\n%s", key[0], key[1], logs)
	}
	// The page has caught up when it shows cart's pods at the recommendation and a point of
	// each DPA's chart.
	require.Eventually(t, func() bool {
		body, err := getUI(addr)
		return err == nil && strings.Count(body, `aria-label="Replicas"`) == 3 &&
			strings.Contains(body, `data-namespace="`+shop+`" data-pods="4"`) &&
			strings.Contains(body, `data-container="app" data-resource="requests.cpu" data-current="150m" data-recommended="150m"`)
	}, testenv.WaitFor, 250*time.Millisecond, "the page never showed cart rolled out")

	dom := browse(t, browser, "http://"+addr+"/ui", "--dump-dom")
	p := parsePage(t, dom)

	// DPAs grouped by namespace, in order.
	var order []string
	for _, s := range all(p.root, map[string]string{"data-dpa": ""}) {
		k, _ := attr(s, "data-dpa")
		order = append(order, k)
	}
	assert.Equal(t, []string{blog + "/api", shop + "/cart", shop + "/web"}, order)

	type totals struct{ cur, rec, curMem, recMem int64 }
	byNamespace := map[string]*totals{}
	for _, key := range order {
		ns, name, _ := strings.Cut(key, "/")
		d := getDPA(t, e, ns, name)
		card := one(t, p.root, map[string]string{"data-dpa": key})
		mode, _ := attr(card, "data-mode")
		assert.Equal(t, string(d.Spec.ApplyPolicy.Mode), mode, key)
		require.NotNil(t, d.Status.Vertical, key)
		require.NotNil(t, d.Status.Vertical.Target, key)
		rec := d.Status.Vertical.Target.DesiredResources[0].Requests
		pods := e.RunningPods(ns, name)
		require.NotEmpty(t, pods)
		running := pods[0].Spec.Containers[0].Resources.Requests

		// Per container: current from the pods, recommended from the status.
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			row := one(t, card, map[string]string{"data-container": "app", "data-resource": "requests." + string(r)})
			cur, _ := attr(row, "data-current")
			want, shown := running[r], resource.MustParse(cur)
			assert.Zero(t, shown.Cmp(want), "%s %s: the page shows %s, the pods run %s", key, r, cur, want.String())
			recd, _ := attr(row, "data-recommended")
			want, shown = rec[r], resource.MustParse(recd)
			assert.Zero(t, shown.Cmp(want), "%s %s: the page recommends %s, the status %s", key, r, recd, want.String())
		}
		assert.Contains(t, text(one(t, card, map[string]string{"data-field": "vertical-source"})), "Manual recommendation "+d.Status.Vertical.Target.Version)
		require.NotNil(t, d.Status.CurrentReplicas)
		assert.Equal(t, strconv.Itoa(int(*d.Status.CurrentReplicas)), text(one(t, card, map[string]string{"data-replicas": "current"})), key)
		assert.Equal(t, strconv.Itoa(int(d.Status.Horizontal.Target.DesiredReplicas)), text(one(t, card, map[string]string{"data-replicas": "desired"})), key)
		assert.Contains(t, text(one(t, card, map[string]string{"data-field": "horizontal-source"})), "Local recommendation (computed by lazyscale from the pods' usage")
		active := one(t, card, map[string]string{"data-condition": v1alpha2.ConditionActive})
		good, _ := attr(active, "data-good")
		assert.Equal(t, "true", good, "%s: %s", key, text(active))
		assert.Len(t, all(card, map[string]string{"role": "img"}), 3, "%s: the leader draws its three charts", key)
		if mode == "Apply" {
			actions := all(card, map[string]string{"data-action": ""})
			require.NotEmpty(t, actions, key)
			assert.Contains(t, text(actions[0]), "rolled the workload out with recommendation "+d.Status.Vertical.Target.Version)
		}

		tot := byNamespace[ns]
		if tot == nil {
			tot = &totals{}
			byNamespace[ns] = tot
		}
		for _, pod := range pods {
			c := pod.Spec.Containers[0].Resources.Requests
			tot.cur += c.Cpu().MilliValue()
			tot.curMem += c.Memory().Value()
			tot.rec += rec.Cpu().MilliValue()
			tot.recMem += rec.Memory().Value()
		}
	}
	// The summary adds up the pods' requests today and with the recommendations.
	for ns, tot := range byNamespace {
		row := one(t, p.root, map[string]string{"data-namespace": ns})
		for k, want := range map[string]int64{"data-cur-cpu-milli": tot.cur, "data-rec-cpu-milli": tot.rec, "data-cur-mem-bytes": tot.curMem, "data-rec-mem-bytes": tot.recMem} {
			got, _ := attr(row, k)
			assert.Equal(t, strconv.FormatInt(want, 10), got, "%s %s", ns, k)
		}
	}
	// web runs hot: 4 replicas recommended, 2 running, in Preview.
	assert.Equal(t, "4", text(one(t, one(t, p.root, map[string]string{"data-dpa": shop + "/web"}), map[string]string{"data-replicas": "desired"})))
	// web: 2 pods × (300m − 200m) more CPU, blog/api: 250m − 500m less.
	assert.Contains(t, text(one(t, p.root, map[string]string{"data-namespace": shop})), "+200m")
	assert.Contains(t, text(one(t, p.root, map[string]string{"data-namespace": blog})), "−250m (−50%)")
	assert.Contains(t, text(one(t, p.root, map[string]string{"data-agent": "leader"})), "this replica (agent-a)")
	assert.Contains(t, text(one(t, p.root, map[string]string{"data-agent": "webhook"})), "patches new pods")

	// The screenshot the README shows.
	out := os.Getenv("UI_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "ui.png")
	}
	browse(t, browser, "http://"+addr+"/ui", "--screenshot="+out, "--window-size=1280,2000")
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, "the screenshot is a PNG")
	assert.Equal(t, 1280, img.Bounds().Dx())
}
