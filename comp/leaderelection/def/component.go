// Package def defines leader election: which lazyscale replica may write to the cluster.
//
// Every replica watches, collects and serves the webhook, so that each one patches pods the
// same way. Only the leader writes: DPA status, rollouts, events, the webhook configuration
// and the certificate Secret. Writers do their work under the context WaitForLeadership
// returns and stop when it is cancelled, which is also how a replica that lost its lease
// stops writing before another one starts.
package def

import (
	"context"
	"time"
)

// Component tells a replica whether it leads. All methods are safe for concurrent use.
type Component interface {
	// IsLeader reports whether this replica holds the lease now. It is always true when
	// leader election is disabled (a single replica writes). It does not start a campaign.
	IsLeader() bool
	// WaitForLeadership stands for election if this replica does not yet, blocks until it
	// leads, then returns a context that is cancelled when the leadership ends (lost,
	// released, or the component stopped) or ctx is done. The call asks for leadership until
	// ctx ends: the campaign lasts while any caller's ctx is alive, and when the last one ends
	// the campaign stops and the Lease is released (nothing is left to write). ok is false when ctx is done first. With leader election disabled it returns at
	// once with a context that ends with ctx or the component.
	WaitForLeadership(ctx context.Context) (leading context.Context, ok bool)
	// Status returns a snapshot.
	Status() Status
}

// Status is a snapshot of the election, as /status shows it under "leader".
type Status struct {
	// Enabled is false when leader_election.enabled is false: this replica always leads.
	Enabled bool `json:"enabled"`
	// Leader is whether this replica leads now.
	Leader bool `json:"leader"`
	// Identity is this replica's holder identity in the Lease.
	Identity string `json:"identity,omitempty"`
	// Holder is the identity the Lease names, as last observed (empty before the first read).
	Holder string `json:"holder,omitempty"`
	// Campaigning is whether this replica stands for election. It starts with the first
	// WaitForLeadership, that is once there is something to write, and stops when nothing is
	// left: a dormant replica whose certificate is already in its Secret never touches the
	// Lease, and one whose gate has closed gives it up.
	Campaigning bool `json:"campaigning"`
	// LeaseError is the last Lease request's error while campaigning ("" when the last one
	// succeeded): a missing namespace or RBAC shows here.
	LeaseError string `json:"lease_error,omitempty"`
	// Lease is namespace/name of the coordination.k8s.io Lease.
	Lease string `json:"lease,omitempty"`
	// LeadingSince is when this replica last became leader.
	LeadingSince time.Time `json:"leading_since,omitzero"`
	// Transitions counts how often this replica became leader.
	Transitions int `json:"transitions"`
}

// WhileLeading runs fn under each leadership term of c until ctx is done: it waits for
// leadership, calls fn with the term's context, and when fn returns (it should return soon
// after that context ends) waits for the next term. It blocks; run it in a goroutine.
func WhileLeading(ctx context.Context, c Component, fn func(leading context.Context)) {
	for {
		leading, ok := c.WaitForLeadership(ctx)
		if !ok {
			return
		}
		fn(leading)
		<-leading.Done() // fn may return early; never run two terms' work at once
	}
}
