package impl

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	autoscalingdef "github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
	"github.com/lazyscale/lazyscale/comp/status/def"
)

// The /ui page: what autoscaling recommends and does, DPA by DPA, grouped by namespace. It is
// rendered on the server from what the running stack already holds (def.AutoscalersReport)
// and the /status document: it lists nothing, watches nothing, and while the gate is closed
// it reads nothing but the agent's own state. The charts are inline SVG drawn here, so the
// page needs no script and works offline.

//go:embed ui.html
var uiFiles embed.FS

// staleAfter is when a recommendation counts as stale on the page: the age the
// LazyscaleRecommendationStale alert fires at.
const staleAfter = time.Hour

// chartsUpTo is how many DPAs a page draws charts for: a page of every DPA of a large cluster
// stays light (a DPA's charts are about 10 KB), and a namespace's page draws its own.
const chartsUpTo = 50

// maxActions is how many horizontal actions a DPA's card lists, newest first.
const maxActions = 5

var uiTemplate = template.Must(template.New("ui.html").Funcs(template.FuncMap{
	"when": fmtWhen, "cputotal": fmtCPUTotal, "memtotal": fmtMemTotal,
}).ParseFS(uiFiles, "ui.html"))

// uiPage is what the template renders.
type uiPage struct {
	Now       time.Time
	Doc       def.Document
	Namespace string // the ?namespace= filter, "" for all
	// Report is the stack's; Running false while dormant.
	Report     autoscalingdef.Report
	HasStack   bool // the binary has the autoscaling stack
	Namespaces []uiNamespace
	// Summary is a row per namespace, then the total (Name "").
	Summary  []uiSummaryRow
	Timeline string
	// NoCharts: more than chartsUpTo DPAs on the page, so no charts; a namespace's page has them.
	NoCharts bool
}

type uiSummaryRow struct {
	Name string
	N    int // DPAs
	T    uiTotals
}

type uiNamespace struct {
	Name        string
	Totals      uiTotals
	Autoscalers []uiAutoscaler
}

// uiTotals add up requests over pods: what they request today, and what they would with the
// recommendations applied (a container without one counts at its current value).
type uiTotals struct {
	Pods                int
	CurCPUMilli, RecCPU int64 // millicores
	CurMemBytes, RecMem int64 // bytes
	PodsKnown           bool
}

func (t *uiTotals) add(o uiTotals) {
	t.Pods += o.Pods
	t.CurCPUMilli += o.CurCPUMilli
	t.RecCPU += o.RecCPU
	t.CurMemBytes += o.CurMemBytes
	t.RecMem += o.RecMem
	t.PodsKnown = t.PodsKnown || o.PodsKnown
}

// CPUChange and MemChange are the difference the recommendations would make.
func (t uiTotals) CPUChange() uiChange { return change(t.CurCPUMilli, t.RecCPU, fmtCPUTotal) }
func (t uiTotals) MemChange() uiChange { return change(t.CurMemBytes, t.RecMem, fmtMemTotal) }

type uiAutoscaler struct {
	Key, Namespace, Name string
	Target               string
	Mode                 string // Apply or Preview
	Paused               bool
	Strategy             string
	Vertical, Horizontal *uiRecommendation
	Containers           []uiContainerRow
	Replicas             uiReplicas
	Conditions           []uiCondition
	Actions              []uiAction
	Totals               uiTotals
	Charts               []template.HTML
}

type uiRecommendation struct {
	Source  string
	Why     string // what the source is, in words
	Version string
	At      time.Time
	Stale   bool
}

// sourceInWords says where a recommendation of each source comes from.
func sourceInWords(s v1alpha2.DatadogPodAutoscalerValueSource, vertical bool) string {
	switch s {
	case v1alpha2.DatadogPodAutoscalerManualValueSource:
		if vertical {
			return "set by hand: the " + v1alpha2.ForceResourcesAnnotation + " annotation"
		}
		return "set by hand: the " + v1alpha2.ForceReplicasAnnotation + " annotation"
	case v1alpha2.DatadogPodAutoscalerAutoscalingValueSource:
		return "from the external recommender the " + v1alpha2.CustomRecommenderAnnotation + " annotation names (lazyscale's protocol)"
	case v1alpha2.DatadogPodAutoscalerLocalValueSource:
		return "computed by lazyscale from the pods' usage (metrics.k8s.io) against the objectives"
	case v1alpha2.DatadogPodAutoscalerExternalValueSource:
		return "from the external recommender the " + v1alpha2.CustomRecommenderAnnotation + " annotation names (the Datadog protocol)"
	}
	return ""
}

// uiContainerRow is one resource of one container: current against recommended.
type uiContainerRow struct {
	Container, Resource string // "requests.cpu"
	First               bool   // the container's first row
	Current             string // "" when unknown
	CurrentMilli        int64
	CurrentKnown        bool
	Mixed               string // "3 of 5 pods" when the pods differ
	Recommended         string
	RecommendedMilli    int64
	RecommendedKnown    bool
	Change              uiChange
}

type uiChange struct {
	Known     bool
	Abs, Pct  string
	Direction string // up, down or same
}

type uiReplicas struct {
	Current, Desired, Min, Max string
}

type uiCondition struct {
	Type, Words, Reason, Message string
	Good                         bool
	Since                        time.Time
}

type uiAction struct {
	At   time.Time
	What string
}

// ui serves GET /ui.
func (s *server) ui(w http.ResponseWriter, r *http.Request) {
	page := uiPage{Now: time.Now(), Namespace: r.URL.Query().Get("namespace"), HasStack: s.autoscalers != nil}
	page.Doc = s.document()
	if s.autoscalers != nil {
		page.Report = s.autoscalers()
		page.Timeline = span(page.Report.Timeline)
		page.build()
	}
	var buf bytes.Buffer
	if err := uiTemplate.Execute(&buf, &page); err != nil {
		s.log.Error("render /ui", zap.Error(err))
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page loads nothing from elsewhere: its style and charts are inline.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	_, _ = w.Write(buf.Bytes())
}

// build turns the report into namespaces of cards.
func (p *uiPage) build() {
	shown := 0
	for _, a := range p.Report.Autoscalers {
		if p.Namespace == "" || a.DPA.Namespace == p.Namespace {
			shown++
		}
	}
	p.NoCharts = shown > chartsUpTo && p.Namespace == ""
	for _, a := range p.Report.Autoscalers {
		if p.Namespace != "" && a.DPA.Namespace != p.Namespace {
			continue
		}
		if p.NoCharts {
			a.Timeline = nil
		}
		card := p.card(a)
		if n := len(p.Namespaces); n == 0 || p.Namespaces[n-1].Name != card.Namespace {
			p.Namespaces = append(p.Namespaces, uiNamespace{Name: card.Namespace})
		}
		ns := &p.Namespaces[len(p.Namespaces)-1]
		ns.Autoscalers = append(ns.Autoscalers, card)
		ns.Totals.add(card.Totals)
	}
	total := uiSummaryRow{}
	for _, ns := range p.Namespaces {
		p.Summary = append(p.Summary, uiSummaryRow{Name: ns.Name, N: len(ns.Autoscalers), T: ns.Totals})
		total.N += len(ns.Autoscalers)
		total.T.add(ns.Totals)
	}
	p.Summary = append(p.Summary, total)
}

func (p *uiPage) card(a autoscalingdef.AutoscalerReport) uiAutoscaler {
	dpa := a.DPA
	c := uiAutoscaler{
		Key: dpa.Namespace + "/" + dpa.Name, Namespace: dpa.Namespace, Name: dpa.Name,
		Target: dpa.Spec.TargetRef.Kind + "/" + dpa.Spec.TargetRef.Name,
		Mode:   string(v1alpha2.DatadogPodAutoscalerApplyModeApply), Paused: dpaview.IsPaused(dpa), Strategy: "Auto",
	}
	if dpaview.IsPreview(dpa) {
		c.Mode = string(v1alpha2.DatadogPodAutoscalerApplyModePreview)
	}
	if ap := dpa.Spec.ApplyPolicy; ap != nil && ap.Update != nil && ap.Update.Strategy != "" {
		c.Strategy = string(ap.Update.Strategy)
	}
	st := dpa.Status
	var desired []v1alpha2.DatadogPodAutoscalerContainerResources
	if v := st.Vertical; v != nil && v.Target != nil {
		c.Vertical = &uiRecommendation{Source: string(v.Target.Source), Why: sourceInWords(v.Target.Source, true), Version: v.Target.Version, At: v.Target.GeneratedAt.Time,
			Stale: !v.Target.GeneratedAt.IsZero() && p.Now.Sub(v.Target.GeneratedAt.Time) > staleAfter}
		desired = v.Target.DesiredResources
	}
	if h := st.Horizontal; h != nil && h.Target != nil {
		c.Horizontal = &uiRecommendation{Source: string(h.Target.Source), Why: sourceInWords(h.Target.Source, false), At: h.Target.GeneratedAt.Time,
			Stale: !h.Target.GeneratedAt.IsZero() && p.Now.Sub(h.Target.GeneratedAt.Time) > staleAfter}
	}
	c.Containers, c.Totals = containerRows(a.Pods, desired, p.Report.Leader)

	c.Replicas = uiReplicas{Current: "—", Desired: "—", Min: "—", Max: "—"}
	if st.CurrentReplicas != nil {
		c.Replicas.Current = fmt.Sprint(*st.CurrentReplicas)
	}
	if h := st.Horizontal; h != nil && h.Target != nil {
		c.Replicas.Desired = fmt.Sprint(h.Target.DesiredReplicas)
	}
	if k := dpa.Spec.Constraints; k != nil {
		if k.MinReplicas != nil {
			c.Replicas.Min = fmt.Sprint(*k.MinReplicas)
		}
		if k.MaxReplicas != nil {
			c.Replicas.Max = fmt.Sprint(*k.MaxReplicas)
		}
	}
	for _, cond := range st.Conditions {
		c.Conditions = append(c.Conditions, conditionInWords(cond))
	}
	if v := st.Vertical; v != nil && v.LastAction != nil {
		c.Actions = append(c.Actions, uiAction{At: v.LastAction.Time.Time, What: verticalAction(v.LastAction)})
	}
	if h := st.Horizontal; h != nil {
		for _, act := range h.LastActions {
			what := fmt.Sprintf("scaled from %d to %d replicas", act.FromReplicas, act.ToReplicas)
			if act.RecommendedReplicas != nil && *act.RecommendedReplicas != act.ToReplicas {
				what += fmt.Sprintf(" (%d recommended)", *act.RecommendedReplicas)
			}
			if act.LimitedReason != nil && *act.LimitedReason != "" {
				what += ": " + *act.LimitedReason
			}
			c.Actions = append(c.Actions, uiAction{At: act.Time.Time, What: what})
		}
	}
	slices.SortStableFunc(c.Actions, func(x, y uiAction) int { return y.At.Compare(x.At) })
	if len(c.Actions) > maxActions {
		c.Actions = c.Actions[:maxActions]
	}
	if len(a.Timeline) > 0 {
		c.Charts = timelineCharts(a.Timeline, p.Now, p.Report.Timeline)
	}
	return c
}

func verticalAction(a *v1alpha2.DatadogPodAutoscalerVerticalAction) string {
	switch a.Type {
	case v1alpha2.VerticalActionRolloutTriggered:
		return "rolled the workload out with recommendation " + a.Version
	case v1alpha2.VerticalActionResizeTriggered:
		return "resized the pods in place to recommendation " + a.Version
	case v1alpha2.VerticalActionResizeCompleted:
		return "every pod runs recommendation " + a.Version + " (resized in place)"
	}
	return a.Type + " " + a.Version
}

// resourceKinds are the rows of a container: requests then limits, CPU then memory.
var resourceKinds = []struct {
	label  string
	limits bool
	name   corev1.ResourceName
}{
	{"requests.cpu", false, corev1.ResourceCPU},
	{"requests.memory", false, corev1.ResourceMemory},
	{"limits.cpu", true, corev1.ResourceCPU},
	{"limits.memory", true, corev1.ResourceMemory},
}

// containerRows compares, per container and resource, what the pods run (the value most of
// them carry) with the recommendation, and adds up the pods' requests today and with the
// recommendation.
func containerRows(pods []autoscalingdef.PodState, desired []v1alpha2.DatadogPodAutoscalerContainerResources, podsKnown bool) ([]uiContainerRow, uiTotals) {
	rec := map[string]v1alpha2.DatadogPodAutoscalerContainerResources{}
	var names []string
	for _, d := range desired {
		rec[d.Name] = d
		names = append(names, d.Name)
	}
	// values[container][resource] counts the pods by value (in thousandths).
	values := map[string]map[string]map[int64]int{}
	totals := uiTotals{Pods: len(pods), PodsKnown: podsKnown}
	for _, pod := range pods {
		for _, ctr := range pod.Containers {
			if values[ctr.Name] == nil {
				values[ctr.Name] = map[string]map[int64]int{}
				if _, ok := rec[ctr.Name]; !ok {
					names = append(names, ctr.Name)
				}
			}
			for _, k := range resourceKinds {
				list := ctr.Requests
				if k.limits {
					list = ctr.Limits
				}
				if q, ok := list[k.name]; ok {
					if values[ctr.Name][k.label] == nil {
						values[ctr.Name][k.label] = map[int64]int{}
					}
					values[ctr.Name][k.label][q.MilliValue()]++
				}
			}
			// Totals: the pod's requests today, and with the recommendation.
			cur, recd := ctr.Requests, rec[ctr.Name].Requests
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				now, ok := cur[r]
				var nowV int64
				if ok {
					nowV = now.MilliValue()
				}
				after := nowV
				if q, ok := recd[r]; ok {
					after = q.MilliValue()
				}
				if r == corev1.ResourceCPU {
					totals.CurCPUMilli += nowV
					totals.RecCPU += after
				} else {
					totals.CurMemBytes += nowV / 1000
					totals.RecMem += after / 1000
				}
			}
		}
	}
	var rows []uiContainerRow
	for _, name := range names {
		first := true
		for _, k := range resourceKinds {
			row := uiContainerRow{Container: name, Resource: k.label}
			if byValue := values[name][k.label]; len(byValue) > 0 {
				v, n := mostCommon(byValue)
				row.CurrentKnown, row.CurrentMilli, row.Current = true, v, fmtQuantity(k.name, v)
				if n < len(pods) {
					row.Mixed = fmt.Sprintf("%d of %d pods", n, len(pods))
				}
			}
			list := rec[name].Requests
			if k.limits {
				list = rec[name].Limits
			}
			if q, ok := list[k.name]; ok {
				row.RecommendedKnown, row.RecommendedMilli, row.Recommended = true, q.MilliValue(), fmtQuantity(k.name, q.MilliValue())
			}
			if !row.CurrentKnown && !row.RecommendedKnown {
				continue
			}
			if row.CurrentKnown && row.RecommendedKnown {
				row.Change = change(row.CurrentMilli, row.RecommendedMilli, func(v int64) string { return fmtQuantity(k.name, v) })
			}
			row.First = first
			first = false
			rows = append(rows, row)
		}
	}
	return rows, totals
}

// mostCommon is the value most pods carry (the smallest on a tie) and how many carry it.
func mostCommon(byValue map[int64]int) (int64, int) {
	var best int64
	n := -1
	for v, c := range byValue {
		if c > n || (c == n && v < best) {
			best, n = v, c
		}
	}
	return best, n
}

// change is after−before, in the unit fmtAbs renders, and in percent of before.
func change(before, after int64, fmtAbs func(int64) string) uiChange {
	ch := uiChange{Known: true, Direction: "same"}
	d := after - before
	switch {
	case d > 0:
		ch.Direction, ch.Abs = "up", "+"+fmtAbs(d)
	case d < 0:
		ch.Direction, ch.Abs = "down", "−"+fmtAbs(-d)
	default:
		ch.Abs = "0"
	}
	if before > 0 {
		pct := float64(d) / float64(before) * 100
		switch {
		case d == 0:
			ch.Pct = "0%"
		case math.Abs(pct) < 1:
			ch.Pct = fmt.Sprintf("%+.1f%%", pct)
		default:
			ch.Pct = fmt.Sprintf("%+.0f%%", pct)
		}
		ch.Pct = strings.Replace(ch.Pct, "-", "−", 1)
	}
	return ch
}

// fmtQuantity renders thousandths of a resource as the API writes it: 250m, 1500m, 256Mi.
func fmtQuantity(r corev1.ResourceName, milli int64) string {
	if r == corev1.ResourceCPU {
		return fmtCPU(milli)
	}
	if milli%1000 != 0 {
		return resource.NewMilliQuantity(milli, resource.BinarySI).String()
	}
	return fmtMem(milli / 1000)
}

func fmtCPU(milli int64) string { return resource.NewMilliQuantity(milli, resource.DecimalSI).String() }
func fmtMem(bytes int64) string { return resource.NewQuantity(bytes, resource.BinarySI).String() }

// fmtCPUTotal and fmtMemTotal render sums for people: 12.5 cores, 3.2 GiB.
func fmtCPUTotal(milli int64) string {
	if milli < 1000 {
		return fmt.Sprintf("%dm", milli)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", float64(milli)/1000), "0"), ".") + " cores"
}

func fmtMemTotal(b int64) string {
	const ki, mi, gi = 1 << 10, 1 << 20, 1 << 30
	switch {
	case b >= gi:
		return fmt.Sprintf("%.2f GiB", float64(b)/gi)
	case b >= mi:
		return fmt.Sprintf("%.1f MiB", float64(b)/mi)
	case b >= ki:
		return fmt.Sprintf("%.1f KiB", float64(b)/ki)
	}
	return fmt.Sprintf("%d B", b)
}

// fmtWhen renders a time and how long ago it was.
func fmtWhen(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC") + " (" + ago(now.Sub(t)) + ")"
}

func ago(d time.Duration) string {
	if d < 0 {
		return "in " + span(-d)
	}
	return span(d) + " ago"
}

// span renders a duration to the minute: 42s, 5m, 6h00m, 3d.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// conditionInWords says what a condition means to someone who has not read the API.
func conditionInWords(c v1alpha2.DatadogPodAutoscalerCondition) uiCondition {
	yes := c.Status == "True"
	words := map[string][2]string{ // [when True, when False]
		v1alpha2.ConditionActive:                    {"Active: lazyscale acts on this DPA", "Not active: lazyscale does not act on this DPA"},
		v1alpha2.ConditionError:                     {"In error", "No error"},
		v1alpha2.ConditionVerticalAbleToRecommend:   {"Has a resource recommendation", "Has no resource recommendation"},
		v1alpha2.ConditionVerticalAbleToApply:       {"Can apply the resource recommendation", "Cannot apply the resource recommendation"},
		v1alpha2.ConditionVerticalScalingLimited:    {"The resource recommendation is limited by the constraints", "The resource recommendation is within the constraints"},
		v1alpha2.ConditionHorizontalAbleToRecommend: {"Has a replica recommendation", "Has no replica recommendation"},
		v1alpha2.ConditionHorizontalAbleToScale:     {"Can scale the replicas", "Cannot scale the replicas"},
		v1alpha2.ConditionHorizontalScalingLimited:  {"Scaling is limited by the bounds or the rules", "Scaling is not limited"},
		v1alpha2.ConditionNotActedOn:                {"Some fields of the spec are not acted on", "Every field of the spec is acted on"},
	}
	out := uiCondition{Type: c.Type, Reason: c.Reason, Message: c.Message, Since: c.LastTransitionTime.Time}
	w, ok := words[c.Type]
	switch {
	case ok && yes:
		out.Words = w[0]
	case ok:
		out.Words = w[1]
	default:
		out.Words = c.Type + " is " + string(c.Status)
	}
	// Good is how the page colours it: an error, a limit or a field not acted on is bad when
	// True; any other condition when False.
	bad := c.Type == v1alpha2.ConditionError || c.Type == v1alpha2.ConditionVerticalScalingLimited ||
		c.Type == v1alpha2.ConditionHorizontalScalingLimited || c.Type == v1alpha2.ConditionNotActedOn
	out.Good = yes != bad
	return out
}

// series is one line of a chart.
type series struct {
	name   string
	class  string
	values []float64 // NaN: unknown
}

// timelineCharts draws a DPA's replicas and recommended requests over the window.
func timelineCharts(points []autoscalingdef.TimelinePoint, now time.Time, window time.Duration) []template.HTML {
	times := make([]time.Time, len(points))
	cur, des, cpu, mem := make([]float64, len(points)), make([]float64, len(points)), make([]float64, len(points)), make([]float64, len(points))
	known := func(v int64) float64 {
		if v < 0 {
			return math.NaN()
		}
		return float64(v)
	}
	for i, p := range points {
		times[i] = p.At
		cur[i], des[i] = known(int64(p.CurrentReplicas)), known(int64(p.DesiredReplicas))
		cpu[i], mem[i] = known(p.CPUMilli), known(p.MemoryBytes)
	}
	from := now.Add(-window)
	return []template.HTML{
		svgChart("Replicas", times, from, now, func(v float64) string { return fmt.Sprintf("%.0f", v) },
			series{"current", "s1", cur}, series{"recommended", "s2", des}),
		svgChart("Recommended CPU per pod", times, from, now, func(v float64) string { return fmtCPU(int64(v)) },
			series{"cpu", "s3", cpu}),
		svgChart("Recommended memory per pod", times, from, now, func(v float64) string { return fmtMemTotal(int64(v)) },
			series{"memory", "s4", mem}),
	}
}

// svgChart draws lines over time as inline SVG, gaps where a value is unknown.
func svgChart(title string, times []time.Time, from, to time.Time, label func(float64) string, lines ...series) template.HTML {
	const w, h, left, right, top, bottom = 320.0, 120.0, 58.0, 8.0, 20.0, 18.0
	lo, hi := math.Inf(1), math.Inf(-1)
	drawn := 0
	for _, s := range lines {
		for _, v := range s.values {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
				drawn++
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`, w, h, w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="13" class="title">%s</text>`, left, template.HTMLEscapeString(title))
	if drawn == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="axis">no value yet</text></svg>`, left, h/2)
		return template.HTML(b.String()) //nolint:gosec // built from escaped text and numbers
	}
	if lo == hi {
		lo, hi = lo*0.9, hi*1.1
		if hi == 0 {
			hi = 1
		}
	}
	lo = math.Min(lo, 0)
	secs := to.Sub(from).Seconds()
	if secs <= 0 {
		secs = 1
	}
	x := func(t time.Time) float64 {
		return left + (w-left-right)*math.Max(0, math.Min(1, t.Sub(from).Seconds()/secs))
	}
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-(v-lo)/(hi-lo)) }
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" class="grid"/>`, left, y(hi), w-right, y(hi))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" class="grid"/>`, left, y(lo), w-right, y(lo))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="axis" text-anchor="end">%s</text>`, left-4, y(hi)+4, template.HTMLEscapeString(label(hi)))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="axis" text-anchor="end">%s</text>`, left-4, y(lo)+4, template.HTMLEscapeString(label(lo)))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="axis">%s</text>`, left, h-4, "−"+span(to.Sub(from)))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="axis" text-anchor="end">now</text>`, w-right, h-4)
	for i, s := range lines {
		var path strings.Builder
		pen := false
		for j, v := range s.values {
			if math.IsNaN(v) {
				pen = false
				continue
			}
			op := "L"
			if !pen {
				op = "M"
			}
			// A step line: the value holds until the next point.
			if pen {
				fmt.Fprintf(&path, "L%.1f %.1f", x(times[j]), y(s.values[j-1]))
			}
			fmt.Fprintf(&path, "%s%.1f %.1f", op, x(times[j]), y(v))
			pen = true
		}
		fmt.Fprintf(&b, `<path d="%s" class="line %s"/>`, path.String(), s.class)
		// A dot on the newest value: a single point is then visible too.
		for j := len(s.values) - 1; j >= 0; j-- {
			if !math.IsNaN(s.values[j]) {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" class="%s"/>`, x(times[j]), y(s.values[j]), s.class)
				break
			}
		}
		if len(lines) > 1 {
			fmt.Fprintf(&b, `<text x="%.0f" y="13" class="legend %s" text-anchor="end">%s</text>`, w-right-float64(len(lines)-1-i)*80, s.class, template.HTMLEscapeString(s.name))
		}
	}
	b.WriteString("</svg>")
	return template.HTML(b.String()) //nolint:gosec // built from escaped text and numbers
}
