package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// The report renders results.json into the marked parts of docs/benchmarks.md, so the tables
// there are always what a run measured:
//
//	go run ./test/bench -render docs/benchmarks.md -in docs/bench/results.json
//
// Each part sits between "<!-- bench:NAME:begin -->" and "<!-- bench:NAME:end -->".

// renderDoc replaces the generated parts of the markdown file doc with tables from reports,
// and from deployments (a -workloads deployments run) compared with reports.
func renderDoc(doc string, reports, deployments, modest []Report, scope *ScopeReport, conditions *ConditionsReport, takeover *TakeoverReport) error {
	b, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	parts := map[string]string{"sizes": renderSizes(reports) + renderPerPod(reports), "watchlist": renderWatchList(reports),
		"deployments": renderDeployments(deployments, reports), "modest": renderModest(modest), "scope": renderScope(scope),
		"conditions": renderConditions(conditions), "takeover": renderTakeover(takeover)}
	for name, body := range parts {
		begin, end := "<!-- bench:"+name+":begin -->", "<!-- bench:"+name+":end -->"
		i, j := bytes.Index(b, []byte(begin)), bytes.Index(b, []byte(end))
		if i < 0 || j < i {
			return fmt.Errorf("%s: markers %s ... %s not found", doc, begin, end)
		}
		b = append(append(append([]byte{}, b[:i+len(begin)]...), "\n"+body...), b[j:]...)
	}
	return os.WriteFile(doc, b, 0o644)
}

// renderDeployments compares the agent on pods made by real Deployments with the same number
// of pods created directly.
func renderDeployments(deployments, direct []Report) string {
	var w strings.Builder
	if len(deployments) == 0 {
		return "\nNot measured yet: `make bench-deployments`.\n"
	}
	w.WriteString("\n| pods | made by | pods Running after | mode | Go heap (alloc) | RSS | peak RSS | DPA → synced | DPA → patcher installed | pod create p50 |\n")
	w.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, d := range deployments {
		rows := []Report{d}
		for _, r := range direct {
			if r.Pods == d.Pods {
				rows = append(rows, r)
			}
		}
		for _, r := range rows {
			made, running := "the bench (direct)", "–"
			if r.Workloads == "deployments" {
				made, running = "200 Deployments on kwok nodes", fmt.Sprintf("%.1f s", r.PodsRunningMs/1000)
			}
			m := byMode(r)
			for _, mode := range []string{"dormant", "active"} {
				x := m[mode]
				if x == nil {
					continue
				}
				ms := func(v float64) string {
					if v <= 0 {
						return "–"
					}
					return fmt.Sprintf("%.0f ms", v)
				}
				create := "–"
				if x.PodCreate != nil {
					create = fmt.Sprintf("%.2f ms", x.PodCreate.P50Ms)
				}
				fmt.Fprintf(&w, "| %s | %s | %s | %s | %.2f MiB | %.1f MiB | %.1f MiB | %s | %s | %s |\n", thousands(r.Pods), made, running, mode,
					x.HeapAllocBytes/mib, x.RSSBytes/mib, x.PeakRSSBytes/mib, ms(x.ActivationMillis), ms(x.PatcherMillis), create)
			}
		}
	}
	return w.String()
}

func readReports(path string) ([]Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Sizes []Report `json:"sizes"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc.Sizes, nil
}

func byMode(r Report) map[string]*Result {
	out := map[string]*Result{}
	for i := range r.Results {
		out[r.Results[i].Mode] = &r.Results[i]
	}
	return out
}

const mib = 1 << 20

func thousands(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// modeRows are the modes of the per-size table, in order, with their label.
var modeRows = []struct{ mode, label string }{
	{"disabled", "disabled"},
	{"dormant", "dormant"},
	{"webhook-skip", "dormant, webhook registered (always)"},
	{"active", "active (watch_list)"},
	{"active-list", "active-list"},
	{"active-scoped", "active, scoped (defaults: the DPA's namespace only)"},
	{"eager", "eager"},
	{"reference", "**reference informer**"},
}

func renderSizes(reports []Report) string {
	var w strings.Builder
	for _, r := range reports {
		m := byMode(r)
		fmt.Fprintf(&w, "\n### %s pods\n\n", thousands(r.Pods))
		fmt.Fprintf(&w, "Run %s. Plain paginated LIST of all pods: %.0f ms. Control plane once the pods exist: etcd %s MiB RSS, kube-apiserver %s MiB RSS.\n\n",
			r.Date, r.PlainListMs, thousands(int(math.Round(r.EtcdRSSBytes/mib))), thousands(int(math.Round(r.APIServerRSSBytes/mib))))
		w.WriteString("| mode | Go heap (alloc) | Go heap (in use) | RSS | peak RSS | pod LIST | pod WATCH | pods held | sync time |\n")
		w.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, row := range modeRows {
			x := m[row.mode]
			if x == nil {
				continue
			}
			sync := "–"
			if x.ActivationMillis > 0 {
				sync = fmt.Sprintf("%.0f ms", x.ActivationMillis)
			}
			fmt.Fprintf(&w, "| %s | %.2f MiB | %.2f MiB | %.1f MiB | %.1f MiB | %d | %d | %s | %s |\n", row.label,
				x.HeapAllocBytes/mib, x.HeapInuseBytes/mib, x.RSSBytes/mib, x.PeakRSSBytes/mib, x.PodLists, x.PodWatches, thousands(x.EntitiesInStore), sync)
		}
		w.WriteString("\nTargets at this size:\n\n| target | measured | |\n|---|---|---|\n")
		dis, dor, act, ref, skip := m["disabled"], m["dormant"], m["active"], m["reference"], m["webhook-skip"]
		if dis != nil && dor != nil {
			d := (dor.HeapAllocBytes - dis.HeapAllocBytes) / mib
			fmt.Fprintf(&w, "| dormant − disabled heap < 1 MiB; 0 pod LIST/WATCH | %+.2f MiB; %d/%d | %s |\n", d, dor.PodLists, dor.PodWatches,
				metOrMissed(d < 1 && dor.PodLists == 0 && dor.PodWatches == 0))
			if dor.PodCreate != nil {
				fmt.Fprintf(&w, "| dormant: 0 webhook calls while pods are created | %d calls for %d pods created | %s |\n", dor.WebhookCalls, dor.PodCreate.Count, metOrMissed(dor.WebhookCalls == 0))
			}
		}
		if act != nil && dor != nil && ref != nil && dis != nil && act.EntitiesInStore > 0 && ref.EntitiesInStore > 0 {
			// The agent's per-pod cost over its dormant self; the reference (a separate
			// process without lazyscale) over the disabled agent.
			a := (act.HeapAllocBytes - dor.HeapAllocBytes) / float64(act.EntitiesInStore)
			f := (ref.HeapAllocBytes - dis.HeapAllocBytes) / float64(ref.EntitiesInStore)
			fmt.Fprintf(&w, "| active heap per pod ≤ 1/10 of the reference's | %s B vs %s B = 1/%.1f | %s |\n", thousands(int(math.Round(a))), thousands(int(math.Round(f))), f/a, metOrMissed(f/a >= 10))
		}
		if act != nil {
			fmt.Fprintf(&w, "| initial-sync peak RSS ≤ 1.5 × steady RSS (active) | %.1f / %.1f MiB = %.2f | %s |\n",
				act.PeakRSSBytes/mib, act.RSSBytes/mib, act.PeakRSSBytes/act.RSSBytes, metOrMissed(act.PeakRSSBytes/act.RSSBytes <= 1.5))
			if r.PlainListMs > 0 && act.ActivationMillis > 0 {
				ratio := act.ActivationMillis / r.PlainListMs
				fmt.Fprintf(&w, "| DPA → synced ≤ 1.5 × a plain paginated LIST | %.0f / %.0f ms = %.2f | %s |\n", act.ActivationMillis, r.PlainListMs, ratio, metOrMissed(ratio <= 1.5))
			}
			if act.PatcherMillis > 0 {
				fmt.Fprintf(&w, "| (no target) DPA → `webhook.patcher_installed` | %.0f ms (polled every 10 ms) | – |\n", act.PatcherMillis)
			}
		}
		if dis != nil && dis.PodCreate != nil {
			base := dis.PodCreate.P50Ms
			for _, c := range []struct {
				x     *Result
				label string
			}{{skip, "pod create, webhook called (gate closed) ≤ 1.3 × none, p50"}, {act, "pod create, webhook patching ≤ 1.3 × none, p50"}} {
				if c.x == nil || c.x.PodCreate == nil {
					continue
				}
				ratio := c.x.PodCreate.P50Ms / base
				fmt.Fprintf(&w, "| %s | %.2f / %.2f ms = %.2f | %s |\n", c.label, c.x.PodCreate.P50Ms, base, ratio, metOrMissed(ratio <= 1.3))
			}
		}
	}
	return w.String()
}

// renderPerPod gives the active agent's heap per pod held as the slope between the smallest
// and the largest size: what one more pod costs, without the active stack's fixed cost that
// the per-size figures spread over the pods.
func renderPerPod(reports []Report) string {
	var first, last, dormant *Result
	for _, r := range reports {
		m := byMode(r)
		if a := m["active"]; a != nil && a.EntitiesInStore > 0 {
			if first == nil {
				first, dormant = a, m["dormant"]
			}
			last = a
		}
	}
	if first == nil || last == first || last.EntitiesInStore == first.EntitiesInStore {
		return ""
	}
	slope := (last.HeapAllocBytes - first.HeapAllocBytes) / float64(last.EntitiesInStore-first.EntitiesInStore)
	out := fmt.Sprintf("\n**Active heap per pod held**, the slope between %s and %s pods held: **%s B** (target ≤ 600 B: %s).",
		thousands(first.EntitiesInStore), thousands(last.EntitiesInStore), thousands(int(math.Round(slope))), metOrMissed(slope <= 600))
	if dormant != nil {
		fixed := first.HeapAllocBytes - dormant.HeapAllocBytes - slope*float64(first.EntitiesInStore)
		out += fmt.Sprintf(" The rest of active − dormant is the active stack's fixed cost, about %.1f MiB whatever the cluster's size.", fixed/mib)
	}
	return out + "\n"
}

// renderModest renders the run on modest pods (-pod-shape modest).
func renderModest(reports []Report) string {
	if len(reports) == 0 {
		return "\nNot measured yet: `make bench` runs it.\n"
	}
	return renderSizes(reports) + renderPerPod(reports)
}

func renderWatchList(reports []Report) string {
	var w strings.Builder
	w.WriteString("\n| |")
	for _, r := range reports {
		fmt.Fprintf(&w, " %s pods |", thousands(r.Pods))
	}
	w.WriteString("\n|---|" + strings.Repeat("---|", len(reports)) + "\n")
	for _, row := range []struct{ mode, label string }{
		{"active", "streaming (watch_list=true): requests / peak RSS / DPA → synced"},
		{"active-list", "paginated LIST (500 per page): requests / peak RSS / DPA → synced"},
	} {
		fmt.Fprintf(&w, "| %s |", row.label)
		for _, r := range reports {
			x := byMode(r)[row.mode]
			if x == nil {
				w.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&w, " %d / %.1f MiB / %.0f ms |", x.PodLists+x.PodWatches, x.PeakRSSBytes/mib, x.ActivationMillis)
		}
		w.WriteString("\n")
	}
	return w.String()
}
