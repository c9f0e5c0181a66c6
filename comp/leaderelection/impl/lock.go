package impl

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// observedLock reports the outcome of every Lease request the elector makes, so that a
// campaign that cannot work (no namespace, no RBAC, no apiserver) is visible on /status and
// logged once, not only as client-go's repeated log line. A Lease that does not exist yet is
// not an error: the elector creates it.
type observedLock struct {
	resourcelock.Interface
	observe func(err error)
}

func (l *observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err == nil || !apierrors.IsNotFound(err) {
		l.observe(err)
	}
	return rec, raw, err
}

func (l *observedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	l.observe(err)
	return err
}

func (l *observedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, ler)
	l.observe(err)
	return err
}
