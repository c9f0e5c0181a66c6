package impl

import (
	"context"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// observedLock reports every Lease request the elector makes and its outcome: what the Lease
// held (a Get), or what this replica wrote (a Create or Update). The component logs a
// campaign that cannot work (no namespace, no RBAC, no apiserver) once and shows it on
// /status, and ends its leadership at once when the Lease says it is no longer the holder.
type observedLock struct {
	resourcelock.Interface
	observe func(op string, rec *resourcelock.LeaderElectionRecord, err error)
}

func (l *observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	l.observe("get", rec, err)
	return rec, raw, err
}

func (l *observedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	l.observe("create", &ler, err)
	return err
}

func (l *observedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, ler)
	l.observe("update", &ler, err)
	return err
}
