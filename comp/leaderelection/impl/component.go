// Package impl implements leader election on a coordination.k8s.io Lease with client-go's
// leaderelection package.
package impl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/leaderelection/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// Requires is what leader election needs.
type Requires struct {
	Config     configdef.Component
	Logger     *zap.Logger
	Kube       kubernetes.Interface
	Registerer prometheus.Registerer
}

// Provides is what leader election gives.
type Provides struct {
	Comp    def.Component
	Start   func(context.Context) error
	Stop    func(context.Context) error
	Section statusdef.Section
}

// term is one leadership term: its context ends when the term does.
type term struct {
	ctx   context.Context
	since time.Time
}

type component struct {
	cfg      configdef.LeaderElectionConfig
	log      *zap.Logger
	kube     kubernetes.Interface
	identity string
	isLeader prometheus.Gauge
	gained   prometheus.Counter
	routines lifecycle.Routines

	// life ends when the component stops; with election disabled it is the only term.
	life    context.Context
	endLife context.CancelFunc
	mu      sync.Mutex
	current *term         // nil while not leading
	changed chan struct{} // closed and replaced on every transition
	holder  string
	terms   int // terms begun
	ended   int // terms whose end was logged
	elector *leaderelection.LeaderElector
	// leaseErr is the last Lease request's error ("" once one succeeds); leaseErrKind what it
	// says without the request (errorKind), which decides whether it is logged again.
	leaseErr, leaseErrKind string
	// The election is campaigned for while someone waits for leadership or leads (there is
	// something to write) and the component runs. demand counts the WaitForLeadership calls
	// whose context is alive; when it falls to zero the campaign ends and the Lease is
	// released, and the next demand starts a new campaign once the last one has returned.
	demand               int
	running, campaigning bool
	endCampaign          context.CancelFunc
	campaignDone         chan struct{}
	// stopRun ends the elector's current Run: called when the Lease shows another holder (or
	// none) while this replica leads, so that it stops writing at once instead of after the
	// renew deadline.
	stopRun context.CancelFunc
}

var _ def.Component = (*component)(nil)

// NewComponent builds leader election. Nothing talks to the apiserver before Start.
func NewComponent(reqs Requires) (Provides, error) {
	cfg := reqs.Config.Get().LeaderElection
	c := &component{
		cfg: cfg, log: reqs.Logger.Named("leaderelection"), kube: reqs.Kube, changed: make(chan struct{}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lazyscale_leader_election_is_leader",
			Help: "1 while this replica holds the leader Lease (always 1 with leader election disabled), else 0.",
		}),
		gained: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lazyscale_leader_election_leadership_acquired_total",
			Help: "How many times this replica became leader.",
		}),
	}
	for _, m := range []prometheus.Collector{c.isLeader, c.gained} {
		if err := reqs.Registerer.Register(m); err != nil {
			return Provides{}, fmt.Errorf("register leader election metrics: %w", err)
		}
	}
	c.life, c.endLife = context.WithCancel(context.Background())
	c.identity = cfg.Identity
	if c.identity == "" {
		c.identity = defaultIdentity()
	}
	if !cfg.Enabled {
		c.current = &term{ctx: c.life, since: time.Now()}
		c.isLeader.Set(1)
	}
	section := statusdef.Section{Name: "leader", Fill: func(d *statusdef.Document) { st := c.Status(); d.Leader = &st }}
	return Provides{Comp: c, Start: c.start, Stop: c.stop, Section: section}, nil
}

// defaultIdentity is the pod name (or host name) plus a random suffix, so that two processes
// on one host, or a restarted pod that kept its name, never share an identity.
func defaultIdentity() string {
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return name + "_" + hex.EncodeToString(b[:])
}

func (c *component) start(context.Context) error {
	if !c.cfg.Enabled {
		c.log.Info("leader election disabled; this replica writes")
		return nil
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.cfg.Namespace, Name: c.cfg.LeaseName},
		Client:     c.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.identity},
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            &observedLock{Interface: lock, observe: c.observeLease},
		LeaseDuration:   c.cfg.LeaseDuration,
		RenewDeadline:   c.cfg.RenewDeadline,
		RetryPeriod:     c.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            c.cfg.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: c.onStartedLeading,
			OnStoppedLeading: c.onStoppedLeading,
			OnNewLeader:      c.onNewLeader,
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	c.mu.Lock()
	c.elector, c.running = elector, true
	c.campaignLocked()
	c.mu.Unlock()
	return nil
}

// campaignLocked starts standing for election once it is both wanted and possible. A
// replica with nothing to write never touches the Lease.
func (c *component) campaignLocked() {
	if c.demand == 0 || !c.running || c.campaigning {
		return
	}
	c.campaigning = true
	c.log.Info("standing for leader election", zap.String("identity", c.identity),
		zap.String("lease", c.cfg.Namespace+"/"+c.cfg.LeaseName))
	elector, prev := c.elector, c.campaignDone
	campaign, end := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.endCampaign, c.campaignDone = end, done
	c.routines.Go(func(ctx context.Context) {
		defer close(done)
		defer context.AfterFunc(ctx, end)()
		if prev != nil {
			// One elector runs at a time: the last campaign is releasing the Lease.
			select {
			case <-prev:
			case <-campaign.Done():
				return
			}
		}
		// Run returns when the lease is lost (or the campaign ends); then this replica
		// stands for election again, as a follower with its caches warm.
		for campaign.Err() == nil {
			run, stop := context.WithCancel(campaign)
			c.mu.Lock()
			c.stopRun = stop
			c.mu.Unlock()
			elector.Run(run)
			stop()
		}
	})
}

// release ends one demand; the last one ends the campaign, which releases the Lease
// (ReleaseOnCancel) if this replica holds it.
func (c *component) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.demand--
	if c.demand > 0 || !c.campaigning {
		return
	}
	c.campaigning = false
	c.endCampaign()
	c.log.Info("nothing left to write; no longer standing for leader election (the Lease is released if held)",
		zap.String("identity", c.identity))
}

// stop releases the lease (ReleaseOnCancel) and ends every term.
func (c *component) stop(ctx context.Context) error {
	err := c.routines.Stop(ctx)
	c.endLife()
	return err
}

// onStartedLeading runs in its own goroutine when this replica acquires the lease; ctx ends with the
// term.
func (c *component) onStartedLeading(ctx context.Context) {
	t := &term{ctx: ctx, since: time.Now()}
	c.mu.Lock()
	c.current = t
	c.terms++
	c.broadcastLocked()
	c.mu.Unlock()
	// The term is over the moment its context ends, before the elector calls onStoppedLeading.
	context.AfterFunc(ctx, func() {
		c.mu.Lock()
		if c.current == t {
			c.current = nil
			c.broadcastLocked()
		}
		c.mu.Unlock()
	})
	c.isLeader.Set(1)
	c.gained.Inc()
	c.log.Info("became leader", zap.String("identity", c.identity))
}

// onStoppedLeading is called whenever the elector's Run returns, whether or not it led; the term's
// context has ended by then.
func (c *component) onStoppedLeading() {
	c.mu.Lock()
	led := c.terms > c.ended
	c.ended = c.terms
	c.mu.Unlock()
	c.isLeader.Set(0)
	if led {
		c.log.Info("leadership ended", zap.String("identity", c.identity))
	}
}

func (c *component) onNewLeader(identity string) {
	c.mu.Lock()
	c.holder = identity
	c.mu.Unlock()
	if identity != c.identity {
		c.log.Info("leader observed", zap.String("leader", identity))
	}
}

// observeLease follows the elector's Lease requests. While this replica leads, a Lease held
// by another replica (taken over by hand, or by a replica that saw it expire) or gone (deleted
// by hand) ends the leadership at once: client-go alone would go on leading, and writing, until
// its renew deadline. Errors are logged once, with what to check; a success after errors too.
func (c *component) observeLease(op string, rec *resourcelock.LeaderElectionRecord, err error) {
	if errors.Is(err, context.Canceled) {
		return // the campaign is ending (shutdown, or nothing left to write): not the Lease's fault
	}
	lost := ""
	switch {
	case op == "get" && apierrors.IsNotFound(err):
		lost = "the Lease was deleted"
		err = nil // not a campaign error: the elector creates it
	case op == "get" && err == nil && rec != nil && rec.HolderIdentity != c.identity:
		lost = "the Lease is held by " + rec.HolderIdentity
	case apierrors.IsConflict(err):
		err = nil // the Lease changed since it was read: the next Get says how
	}
	msg, kind := "", ""
	if err != nil {
		msg, kind = err.Error(), errorKind(err)
	}
	c.mu.Lock()
	prev := c.leaseErrKind
	c.leaseErr, c.leaseErrKind = msg, kind
	leading := c.current != nil && c.current.ctx.Err() == nil
	stopRun := c.stopRun
	c.mu.Unlock()
	if lost != "" && leading && stopRun != nil {
		c.log.Warn("lost the Lease while leading: this replica stops writing now and stands for election again",
			zap.String("lease", c.cfg.Namespace+"/"+c.cfg.LeaseName), zap.String("why", lost))
		stopRun()
	}
	switch {
	case kind != "" && kind != prev:
		c.log.Warn("leader election cannot use its Lease; this replica writes nothing until it can (check that the namespace exists and the RBAC allows leases)",
			zap.String("lease", c.cfg.Namespace+"/"+c.cfg.LeaseName), zap.Error(err))
	case kind == "" && prev != "":
		c.log.Info("leader election reaches its Lease again", zap.String("lease", c.cfg.Namespace+"/"+c.cfg.LeaseName))
	}
}

// errorKind is what an error says without the request it failed: "connection refused" for a
// GET and for an UPDATE of the Lease alike, so that an apiserver away is logged once, not once
// per request.
func errorKind(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	if s, ok := err.(apierrors.APIStatus); ok {
		return string(s.Status().Reason) + ": " + s.Status().Message
	}
	return err.Error()
}

func (c *component) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *component) IsLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current != nil && c.current.ctx.Err() == nil
}

func (c *component) WaitForLeadership(ctx context.Context) (context.Context, bool) {
	if ctx.Err() != nil {
		return nil, false // asks for nothing: no campaign started only to stop
	}
	if c.cfg.Enabled {
		c.mu.Lock()
		c.demand++
		c.campaignLocked()
		c.mu.Unlock()
		context.AfterFunc(ctx, c.release) // runs at once for a done ctx
	}
	for {
		c.mu.Lock()
		t, changed := c.current, c.changed
		c.mu.Unlock()
		if t != nil && t.ctx.Err() == nil && ctx.Err() == nil {
			leading, cancel := context.WithCancel(t.ctx)
			stop := context.AfterFunc(ctx, cancel)
			context.AfterFunc(leading, func() { stop() })
			return leading, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (c *component) Status() def.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := def.Status{Enabled: c.cfg.Enabled, Identity: c.identity, Holder: c.holder, Transitions: c.terms}
	if c.cfg.Enabled {
		s.Lease = c.cfg.Namespace + "/" + c.cfg.LeaseName
		s.Campaigning = c.campaigning
		s.LeaseError = c.leaseErr
	}
	if c.current != nil && c.current.ctx.Err() == nil {
		s.Leader, s.LeadingSince = true, c.current.since
	}
	return s
}
