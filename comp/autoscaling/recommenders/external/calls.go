package external

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// calls runs the HTTP calls to external recommenders outside the reconcile workers, so that a
// recommender that hangs or is slow delays only its own DPAs:
//
//   - at most one call per DPA is in flight; a request that changes meanwhile is sent when the
//     call returns (only the newest one);
//   - at most maxTotal calls are in flight together and maxPerEndpoint to one endpoint; a call
//     over a bound waits in a FIFO queue and is started by the goroutine of a call that ends;
//   - the reconcile that starts a call waits for it up to wait; an answer within it is
//     returned as if the call were synchronous. Otherwise, and for every other ask while the
//     call runs or waits its turn, ask returns a *def.Pending carrying the last answer, and the
//     subscribers are told the DPA once its answer is in;
//   - an endpoint found slow (a call outlasted wait) is not waited for again until one of its
//     calls answers within wait: a hanging recommender costs the workers one wait, not one per
//     DPA that uses it.
//
// Every call runs under the source's context (cancelled by close) and the HTTP client's
// timeout, so close returns as soon as the calls in flight notice the cancellation.
type calls struct {
	maxTotal, maxPerEndpoint int
	wait                     time.Duration
	do                       func(ctx context.Context, j job) (*def.Recommendation, error)
	now                      func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	total       int
	perEndpoint map[string]int
	states      map[string]*dpaCalls // by namespace/name
	queue       []string             // DPAs whose next call waits for a slot, oldest first
	slow        map[string]time.Time // endpoints (slots) found slow, and when
	subscribers map[int]func(namespace, name string)
	nextSub     int
	sweptAt     time.Time
}

// job is one request to send.
type job struct {
	endpoint, protocol string
	slot               string // the endpoint's scheme and host: what maxPerEndpoint counts
	body               []byte
}

// dpaCalls is one DPA's calls.
type dpaCalls struct {
	running  *run
	next     *job // the newest request not sent yet (queued, or changed while one runs)
	queued   bool
	queuedAt time.Time
	// last is the outcome of the last call; fresh until ask returns it or the subscribers
	// are told about it.
	last     outcome
	fresh    bool
	lastGood *def.Recommendation
	askedAt  time.Time
}

type run struct {
	job     job
	started time.Time
	done    chan struct{}
	cancel  context.CancelFunc
	awaited bool // the reconcile that started it is waiting: it takes the answer itself
}

type outcome struct {
	rec  *def.Recommendation
	err  error
	body []byte
}

// idleForget is how long the state of a DPA nobody asks about is kept (a DPA deleted while
// this replica did not lead is never forgotten explicitly).
const idleForget = 30 * time.Minute

func newCalls(maxTotal, maxPerEndpoint int, wait time.Duration, do func(context.Context, job) (*def.Recommendation, error)) *calls {
	if maxTotal < 1 {
		maxTotal = 64
	}
	if maxPerEndpoint < 1 {
		maxPerEndpoint = 4
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &calls{maxTotal: maxTotal, maxPerEndpoint: maxPerEndpoint, wait: wait, do: do, now: time.Now,
		ctx: ctx, cancel: cancel, perEndpoint: map[string]int{}, slow: map[string]time.Time{}, states: map[string]*dpaCalls{}, subscribers: map[int]func(string, string){}}
}

// ask returns the answer to j for the DPA key, or a *def.Pending while it is on its way.
func (c *calls) ask(ctx context.Context, key string, j job) (*def.Recommendation, error) {
	c.mu.Lock()
	now := c.now()
	c.sweepLocked(now)
	st := c.states[key]
	if st == nil {
		st = &dpaCalls{}
		c.states[key] = st
	}
	st.askedAt = now
	if st.fresh && bytes.Equal(st.last.body, j.body) {
		st.fresh = false
		o := st.last
		c.mu.Unlock()
		return o.rec, o.err
	}
	if st.running != nil || st.queued {
		if cur := c.latestLocked(st); !bytes.Equal(cur.body, j.body) || cur.endpoint != j.endpoint {
			st.next = &j
		}
		p := c.pendingLocked(st)
		c.mu.Unlock()
		return nil, p
	}
	st.next = &j
	_, slow := c.slow[j.slot]
	if !c.startLocked(key, st) || c.wait <= 0 || slow {
		p := c.pendingLocked(st)
		c.mu.Unlock()
		return nil, p
	}
	r := st.running
	r.awaited = true
	c.mu.Unlock()

	timer := time.NewTimer(c.wait)
	defer timer.Stop()
	select {
	case <-r.done:
	case <-timer.C:
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.awaited = false // from now on, the subscribers are told
	if !isClosed(r.done) {
		c.slow[j.slot] = c.now()
	}
	if c.states[key] != st {
		return nil, &def.Pending{Endpoint: j.endpoint, Since: r.started} // forgotten meanwhile
	}
	if st.fresh && bytes.Equal(st.last.body, j.body) {
		st.fresh = false
		return st.last.rec, st.last.err
	}
	return nil, c.pendingLocked(st)
}

// latestLocked is the newest request of a DPA with a call running or queued.
func (c *calls) latestLocked(st *dpaCalls) job {
	if st.next != nil {
		return *st.next
	}
	return st.running.job
}

func (c *calls) pendingLocked(st *dpaCalls) *def.Pending {
	p := &def.Pending{Last: st.lastGood}
	switch {
	case st.running != nil:
		p.Endpoint, p.Since = st.running.job.endpoint, st.running.started
	case st.next != nil:
		p.Endpoint, p.Since = st.next.endpoint, st.queuedAt
	}
	return p
}

// startLocked starts st.next, or queues it when a bound is reached. It reports whether the
// call started.
func (c *calls) startLocked(key string, st *dpaCalls) bool {
	j := st.next
	if c.ctx.Err() != nil {
		return false // closed: nothing starts any more
	}
	if c.total >= c.maxTotal || c.perEndpoint[j.slot] >= c.maxPerEndpoint {
		if !st.queued {
			st.queued, st.queuedAt = true, c.now()
			c.queue = append(c.queue, key)
		}
		return false
	}
	st.next, st.queued = nil, false
	c.total++
	c.perEndpoint[j.slot]++
	ctx, cancel := context.WithCancel(c.ctx) // the HTTP client's own timeout bounds the call
	r := &run{job: *j, started: c.now(), done: make(chan struct{}), cancel: cancel}
	st.running = r
	c.wg.Go(func() {
		rec, err := c.do(ctx, r.job)
		cancel()
		c.finish(key, st, r, outcome{rec: rec, err: err, body: r.job.body})
	})
	return true
}

// finish records a call's outcome, starts what waits for its slot, and tells the subscribers
// unless the reconcile that started the call takes the answer itself.
func (c *calls) finish(key string, st *dpaCalls, r *run, o outcome) {
	c.mu.Lock()
	c.total--
	if c.perEndpoint[r.job.slot]--; c.perEndpoint[r.job.slot] <= 0 {
		delete(c.perEndpoint, r.job.slot)
	}
	if c.now().Sub(r.started) <= c.wait {
		delete(c.slow, r.job.slot) // answered in time: worth waiting for again
	}
	tell := false
	if c.states[key] == st && c.ctx.Err() == nil {
		st.running = nil
		st.last, st.fresh = o, true
		if o.err == nil && o.rec != nil {
			st.lastGood = o.rec
		}
		tell = !r.awaited
		if st.next != nil && !st.queued {
			c.startLocked(key, st)
		}
	}
	close(r.done)
	c.drainLocked()
	var subs []func(string, string)
	if tell {
		for _, f := range c.subscribers {
			subs = append(subs, f)
		}
	}
	c.mu.Unlock()
	ns, name, _ := strings.Cut(key, "/")
	for _, f := range subs {
		f(ns, name)
	}
}

// drainLocked starts the queued calls the bounds now allow, oldest first. A queued call whose
// endpoint is full does not hold back the ones behind it.
func (c *calls) drainLocked() {
	if c.ctx.Err() != nil {
		c.queue = nil
		return
	}
	kept := c.queue[:0]
	for _, key := range c.queue {
		st := c.states[key]
		if st == nil || !st.queued || st.next == nil {
			continue // forgotten
		}
		if st.running != nil || !c.startLocked(key, st) {
			kept = append(kept, key)
		}
	}
	clear(c.queue[len(kept):])
	c.queue = kept
}

// forget drops a DPA's state and cancels its call.
func (c *calls) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.states[key]; st != nil {
		if st.running != nil {
			st.running.cancel()
		}
		if st.queued {
			st.queued = false
			c.queue = slices.DeleteFunc(c.queue, func(k string) bool { return k == key })
		}
		delete(c.states, key)
	}
}

// sweepLocked forgets, at most once a minute, the DPAs nobody asked about for idleForget.
func (c *calls) sweepLocked(now time.Time) {
	if now.Sub(c.sweptAt) < time.Minute {
		return
	}
	c.sweptAt = now
	for key, st := range c.states {
		if st.running == nil && !st.queued && now.Sub(st.askedAt) > idleForget {
			delete(c.states, key)
		}
	}
	for slot, at := range c.slow {
		if now.Sub(at) > idleForget {
			delete(c.slow, slot)
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (c *calls) subscribe(f func(namespace, name string)) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextSub
	c.nextSub++
	c.subscribers[id] = f
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.subscribers, id)
	}
}

// sizes is what the calls hold, under one lock (def.Sizer).
func (c *calls) sizes() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]int{"external.dpas": len(c.states), "external.running": c.total, "external.queued": len(c.queue), "external.slow_endpoints": len(c.slow)}
}

// size is how many DPAs have state, and how many calls run and wait.
func (c *calls) size() (dpas, running, queued int) {
	s := c.sizes()
	return s["external.dpas"], s["external.running"], s["external.queued"]
}

// close cancels every call and waits for their goroutines.
func (c *calls) close() {
	c.cancel()
	c.wg.Wait()
}
