// Package mock provides a leader election that always leads, for unit tests of components
// that write only as leader.
package mock

import (
	"context"

	"github.com/lazyscale/lazyscale/comp/leaderelection/def"
)

// AlwaysLeader leads from the start and for as long as the caller's context lives, like a
// replica with leader election disabled.
type AlwaysLeader struct{}

var _ def.Component = AlwaysLeader{}

// IsLeader implements def.Component.
func (AlwaysLeader) IsLeader() bool { return true }

// WaitForLeadership implements def.Component.
func (AlwaysLeader) WaitForLeadership(ctx context.Context) (context.Context, bool) {
	if ctx.Err() != nil {
		return nil, false
	}
	return ctx, true
}

// Status implements def.Component.
func (AlwaysLeader) Status() def.Status { return def.Status{Leader: true} }
