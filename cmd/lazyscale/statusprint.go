package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
)

// printStatus renders a /status document for a person.
func printDocument(d statusdef.Document, w io.Writer, addr string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "agent\t%s (version %s)\n", addr, d.Version)
	if g := d.Gate; g != nil {
		switch {
		case !g.WorkloadAutoscaling:
			fmt.Fprintf(tw, "autoscaling gate\tdisabled (autoscaling.workload.enabled=false)\n")
		case g.Open:
			trigger := ""
			if g.Trigger != nil {
				trigger = g.Trigger.Kind + " " + g.Trigger.Name
				if g.Trigger.Namespace != "" {
					trigger = g.Trigger.Kind + " " + g.Trigger.Namespace + "/" + g.Trigger.Name
				}
			}
			line := fmt.Sprintf("open (term %d) since %s (%s ago), opened by %s", g.Term,
				g.OpenedAt.Format(time.RFC3339), time.Since(g.OpenedAt).Round(time.Second), trigger)
			switch {
			case !g.ClosesAt.IsZero():
				line += fmt.Sprintf("; no trigger left, closes at %s (in %s) unless one comes back",
					g.ClosesAt.Format(time.RFC3339), time.Until(g.ClosesAt).Round(time.Second))
			case g.IdleGrace == "0s":
				line += "; never closes (idle_grace 0)"
			case g.IdleGrace != "":
				line += "; closes " + g.IdleGrace + " after the last trigger goes"
			}
			fmt.Fprintf(tw, "autoscaling gate\t%s\n", line)
		case g.Closing:
			fmt.Fprintf(tw, "autoscaling gate\tclosing (term %d): the stack is stopping\n", g.Term)
		case g.Term > 0:
			fmt.Fprintf(tw, "autoscaling gate\tclosed since %s after term %d: dormant until the next DatadogPodAutoscaler or profile label\n",
				g.ClosedAt.Format(time.RFC3339), g.Term)
		default:
			fmt.Fprintf(tw, "autoscaling gate\tclosed: dormant until the first DatadogPodAutoscaler or profile label\n")
		}
	}
	if p := d.PodCollection; p != nil {
		line := fmt.Sprintf("%s (mode %s), %d pods", p.State, p.Mode, p.Pods)
		if p.SyncedIn != "" {
			line += ", initial sync took " + p.SyncedIn
		}
		if sc := p.Scope; sc != nil {
			switch {
			case !sc.Scoped:
				line += "; the whole cluster"
			case sc.ClusterWide:
				line += fmt.Sprintf("; one cluster-wide watch for %d namespaces with a DPA (above %d)", sc.Namespaces, sc.ClusterWideAbove)
			default:
				line += fmt.Sprintf("; %d namespaces with a DPA watched (%d synced)", sc.Namespaces, sc.NamespacesSynced)
			}
		}
		fmt.Fprintf(tw, "pod collection\t%s\n", line)
	}
	if wh := d.Webhook; wh != nil {
		switch {
		case !wh.Enabled:
			fmt.Fprintf(tw, "webhook\tnot serving\n")
		default:
			reg := "not registered"
			if wh.Registered["autoscaling"] {
				reg = "registered"
			}
			patcher := "no patcher (pods admitted unchanged, not decoded)"
			if wh.PatcherInstalled {
				patcher = "patcher installed"
			}
			line := fmt.Sprintf("autoscaling %s (register=%s), %s", reg, wh.Register, patcher)
			if sc := wh.Scope; sc != nil {
				if sc.ClusterWide {
					line += ", every namespace"
				} else {
					line += fmt.Sprintf(", %d namespaces with an active DPA (%d covered)", len(sc.Namespaces), sc.Covered)
					if sc.MatchesWorkloads {
						line += fmt.Sprintf(", only the pods of their %d targets", sc.Workloads)
					}
				}
			}
			if wh.Certificate != nil {
				line += ", certificate expires in " + wh.Certificate.ExpiresIn
			}
			fmt.Fprintf(tw, "webhook\t%s\n", line)
		}
	}
	if a := d.Autoscaling; a != nil {
		line := string(a.State)
		switch a.State {
		case "waiting_for_gate":
			line = "dormant: starts when the gate opens"
		case "waiting_for_caches":
			line = "waiting for the DPA cache to sync"
		case "running":
			line = "running"
			if a.Leader != nil && *a.Leader {
				line += " (controllers active on this replica)"
			} else if a.Leader != nil {
				line += " (follower: patching pods, controllers on the leader)"
			}
		}
		if d.Autoscalers != nil {
			line += fmt.Sprintf(", %d DatadogPodAutoscalers", *d.Autoscalers)
		}
		fmt.Fprintf(tw, "autoscaling stack\t%s\n", line)
		if p := a.Profiles; p.State != "" {
			switch p.State {
			case "waiting_for_profile":
				fmt.Fprintf(tw, "cluster profiles\tno profile yet: no workload watched\n")
			case "running":
				fmt.Fprintf(tw, "cluster profiles\tapplied by this replica, %d workloads watched (metadata)\n", p.WorkloadsWatched)
			default:
				fmt.Fprintf(tw, "cluster profiles\tnot applied by this replica (gate closed, or the leader applies them)\n")
			}
		}
	}
	if l := d.Leader; l != nil {
		switch {
		case !l.Enabled:
			fmt.Fprintf(tw, "leader\tleader election disabled: this replica writes\n")
		case l.Leader:
			fmt.Fprintf(tw, "leader\tthis replica (%s) leads, lease %s\n", l.Identity, l.Lease)
		case !l.Campaigning:
			fmt.Fprintf(tw, "leader\tnot standing for election: nothing to write yet (lease %s)\n", l.Lease)
		default:
			holder := l.Holder
			if holder == "" {
				holder = "unknown"
			}
			fmt.Fprintf(tw, "leader\tfollower (%s); leader is %s, lease %s\n", l.Identity, holder, l.Lease)
		}
		if l.LeaseError != "" {
			fmt.Fprintf(tw, "\tcannot use the lease: %s\n", l.LeaseError)
		}
	}
	return tw.Flush()
}
