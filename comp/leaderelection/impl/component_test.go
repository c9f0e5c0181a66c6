package impl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/leaderelection/def"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type staticConfig configdef.Config

func (c staticConfig) Get() configdef.Config { return configdef.Config(c) }

func newTestComponent(t *testing.T, enabled bool) (Provides, *fake.Clientset) {
	t.Helper()
	cfg := configdef.Defaults()
	cfg.LeaderElection.Enabled = enabled
	cfg.LeaderElection.Identity = "replica-1"
	cfg.LeaderElection.LeaseDuration, cfg.LeaderElection.RenewDeadline, cfg.LeaderElection.RetryPeriod = 3*time.Second, 2*time.Second, 200*time.Millisecond
	kube := fake.NewClientset()
	p, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zap.NewNop(), Kube: kube, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	return p, kube
}

func TestDisabledAlwaysLeads(t *testing.T) {
	p, kube := newTestComponent(t, false)
	require.NoError(t, p.Start(context.Background()))
	assert.True(t, p.Comp.IsLeader())
	ctx, cancel := context.WithCancel(context.Background())
	leading, ok := p.Comp.WaitForLeadership(ctx)
	require.True(t, ok)
	cancel()
	<-leading.Done() // the term ends with the caller's context
	assert.Empty(t, kube.Actions(), "no Lease without an election")
	require.NoError(t, p.Stop(context.Background()))
}

// Nothing touches the Lease until someone waits for leadership; then the replica campaigns,
// leads, and its term ends when the component stops (the lease is released).
func TestCampaignsOnDemandAndReleasesOnStop(t *testing.T) {
	p, kube := newTestComponent(t, true)
	require.NoError(t, p.Start(context.Background()))
	assert.False(t, p.Comp.IsLeader())
	assert.False(t, p.Comp.Status().Campaigning)
	assert.Empty(t, kube.Actions(), "no campaign before anyone needs to write")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leading, ok := p.Comp.WaitForLeadership(ctx)
	require.True(t, ok)
	assert.True(t, p.Comp.IsLeader())
	st := p.Comp.Status()
	assert.True(t, st.Campaigning)
	assert.True(t, st.Leader)
	assert.Equal(t, "replica-1", st.Identity)
	assert.Equal(t, "lazyscale/lazyscale-leader", st.Lease)
	assert.Equal(t, 1, st.Transitions)

	require.NoError(t, p.Stop(context.Background()))
	select {
	case <-leading.Done():
	case <-ctx.Done():
		t.Fatal("term did not end with the component")
	}
	assert.False(t, p.Comp.IsLeader())
	lease, err := kube.CoordinationV1().Leases("lazyscale").Get(context.Background(), "lazyscale-leader", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, *lease.Spec.HolderIdentity, "released on stop")
}

func TestWaitForLeadershipReturnsOnCancel(t *testing.T) {
	p, _ := newTestComponent(t, true)
	// Not started: the campaign cannot begin, so the wait ends with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, ok := p.Comp.WaitForLeadership(ctx)
	assert.False(t, ok)
	require.NoError(t, p.Stop(context.Background()))
}

func TestWhileLeadingRunsOncePerTerm(t *testing.T) {
	p, _ := newTestComponent(t, false)
	require.NoError(t, p.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	runs := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		def.WhileLeading(ctx, p.Comp, func(context.Context) { runs <- struct{}{} })
	}()
	<-runs
	cancel()
	<-done
	assert.Empty(t, runs, "one term, one run")
	require.NoError(t, p.Stop(context.Background()))
}

// A campaign that cannot create its Lease (here: the namespace is missing) says so on the
// status, and clears it once the Lease works.
func TestLeaseErrorIsVisible(t *testing.T) {
	p, kube := newTestComponent(t, true)
	var failing atomic.Bool
	failing.Store(true)
	kube.PrependReactor("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "lazyscale")
		}
		return false, nil, nil
	})
	require.NoError(t, p.Start(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waited := make(chan bool, 1)
	go func() { _, ok := p.Comp.WaitForLeadership(ctx); waited <- ok }()
	require.Eventually(t, func() bool { return p.Comp.Status().LeaseError != "" }, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, p.Comp.Status().LeaseError, `namespaces "lazyscale" not found`)
	assert.False(t, p.Comp.IsLeader())

	failing.Store(false)
	require.True(t, <-waited, "leads once the Lease can be created")
	assert.Empty(t, p.Comp.Status().LeaseError)
	require.NoError(t, p.Stop(context.Background()))
}

// The campaign lasts while someone asks: when the last caller's context ends, the leader
// releases the Lease; a caller whose context has already ended asks for nothing; the next
// caller campaigns again.
func TestReleasesTheLeaseWhenNoOneAsks(t *testing.T) {
	p, kube := newTestComponent(t, true)
	require.NoError(t, p.Start(context.Background()))
	defer func() { require.NoError(t, p.Stop(context.Background())) }()
	holder := func() string {
		l, err := kube.CoordinationV1().Leases("lazyscale").Get(context.Background(), "lazyscale-leader", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, firstDone := context.WithCancel(ctx)
	leading, ok := p.Comp.WaitForLeadership(first)
	require.True(t, ok)
	assert.Equal(t, "replica-1", holder())

	firstDone()
	<-leading.Done()
	require.Eventually(t, func() bool { return !p.Comp.Status().Campaigning && holder() == "" }, 10*time.Second, 10*time.Millisecond,
		"the Lease was not released once nobody asked")

	actions := len(kube.Actions())
	_, ok = p.Comp.WaitForLeadership(first) // already done
	assert.False(t, ok)
	assert.False(t, p.Comp.Status().Campaigning, "a done context asks for nothing")
	assert.Len(t, kube.Actions(), actions, "no Lease request for it")

	_, ok = p.Comp.WaitForLeadership(ctx)
	require.True(t, ok, "a new demand campaigns again")
	assert.Equal(t, 2, p.Comp.Status().Transitions)
}

// A Lease request cut short because the campaign ends (shutdown, nothing left to write) is
// not a Lease problem: it is neither shown nor logged as one.
func TestCanceledLeaseRequestIsNotAnError(t *testing.T) {
	c := &component{log: zap.NewNop()}
	c.observeLease("get", nil, fmt.Errorf("get lease: %w", context.Canceled))
	assert.Empty(t, c.leaseErr)
	c.observeLease("get", nil, errors.New(`leases.coordination.k8s.io is forbidden`))
	assert.Equal(t, `leases.coordination.k8s.io is forbidden`, c.leaseErr)
	c.observeLease("get", nil, apierrors.NewNotFound(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "lazyscale-leader"))
	assert.Empty(t, c.leaseErr, "a missing Lease is created, not an error")
	c.observeLease("update", nil, apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "lazyscale-leader", errors.New("modified")))
	assert.Empty(t, c.leaseErr, "a conflict is read again, not an error")
}

// An apiserver away fails the GET and the UPDATE of the Lease alike: one kind, logged once.
func TestLeaseErrorKind(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	get := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/apis/coordination.k8s.io/v1/namespaces/lazyscale/leases/x", Err: refused}
	put := &url.Error{Op: "Put", URL: "https://127.0.0.1:6443/apis/coordination.k8s.io/v1/namespaces/lazyscale/leases/x", Err: refused}
	assert.Equal(t, errorKind(get), errorKind(put))
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "x", errors.New("no RBAC"))
	assert.NotEqual(t, errorKind(get), errorKind(forbidden))

	core, logs := observer.New(zapcore.WarnLevel)
	c := &component{log: zap.New(core)}
	for range 5 {
		c.observeLease("get", nil, get)
		c.observeLease("update", nil, put)
	}
	assert.Equal(t, 1, logs.Len(), "logged once while the apiserver is away")
	assert.Equal(t, put.Error(), c.leaseErr, "/status shows the last error")
}
