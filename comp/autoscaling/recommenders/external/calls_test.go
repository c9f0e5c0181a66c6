package external

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// recorder is a recommender whose answers the test releases: each request blocks until the
// test sends on release (or the client hangs up), then answers with replicas = its number.
type recorder struct {
	srv     *httptest.Server
	release chan struct{}
	mu      sync.Mutex
	seen    []RecommendationRequest
	n       atomic.Int32
	arrived chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{release: make(chan struct{}), arrived: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body RecommendationRequest
		_ = json.NewDecoder(req.Body).Decode(&body)
		r.mu.Lock()
		r.seen = append(r.seen, body)
		r.mu.Unlock()
		n := r.n.Add(1)
		r.arrived <- struct{}{}
		select {
		case <-r.release:
			_, _ = io.WriteString(w, `{"replicas": `+string(rune('0'+n))+`}`)
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []RecommendationRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RecommendationRequest(nil), r.seen...)
}

func (r *recorder) waitArrivals(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d requests reached the recommender", n)
		}
	}
}

func dpaRequest(endpoint, name string, current int32) def.Request {
	req := request(endpoint)
	req.Autoscaler.Name = name
	req.CurrentReplicas = current
	return req
}

func newSource(t *testing.T, cfg configdef.ExternalRecommenderConfig) *Source {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.AllowedEndpoints = loopback
	s, err := New(cfg)
	require.NoError(t, err)
	return s
}

// A slow recommender: the reconcile that asks waits answer_wait, gets a Pending, and the
// subscriber is told the DPA once the answer is in; the next ask takes that answer without
// a second request. Asks while the call runs do not send another.
func TestSlowRecommenderAnswersLater(t *testing.T) {
	rec := newRecorder(t)
	s := newSource(t, configdef.ExternalRecommenderConfig{AnswerWait: 50 * time.Millisecond})
	defer s.Close()
	told := make(chan string, 10)
	defer s.Subscribe(func(ns, name string) { told <- ns + "/" + name })()

	_, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "web", 3))
	p, ok := asPending(err)
	require.True(t, ok, "a Pending, got %v", err)
	assert.Nil(t, p.Last, "no answer yet")
	assert.Equal(t, rec.srv.URL, p.Endpoint)
	rec.waitArrivals(t, 1)
	for range 5 { // reconciles while the call runs: no new request
		_, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "web", 3))
		_, ok := asPending(err)
		require.True(t, ok)
	}
	rec.release <- struct{}{}
	select {
	case key := <-told:
		assert.Equal(t, "shop/web", key)
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber was not told")
	}
	r, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "web", 3))
	require.NoError(t, err)
	assert.Equal(t, int32(1), *r.Replicas)
	assert.Len(t, rec.requests(), 1, "one request for one input")

	// The next ask (the controller's resync) sends a new request; while it runs, the last
	// answer stands in.
	_, err = s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "web", 3))
	p, ok = asPending(err)
	require.True(t, ok)
	require.NotNil(t, p.Last)
	assert.Equal(t, int32(1), *p.Last.Replicas)
	rec.waitArrivals(t, 1)
	rec.release <- struct{}{}
	<-told
}

// A request that changes while a call runs is sent when the call returns: one call per DPA
// in flight, and only the newest input queued.
func TestOneCallPerDPA(t *testing.T) {
	rec := newRecorder(t)
	s := newSource(t, configdef.ExternalRecommenderConfig{})
	defer s.Close()
	told := make(chan string, 10)
	defer s.Subscribe(func(ns, name string) { told <- ns + "/" + name })()

	for current := int32(1); current <= 4; current++ {
		_, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "web", current))
		_, ok := asPending(err)
		require.True(t, ok)
	}
	rec.waitArrivals(t, 1)
	rec.release <- struct{}{} // the first call ends; the newest input (4) is sent next
	rec.waitArrivals(t, 1)
	rec.release <- struct{}{}
	<-told
	<-told
	got := rec.requests()
	require.Len(t, got, 2)
	assert.Equal(t, int32(1), got[0].CurrentReplicas)
	assert.Equal(t, int32(4), got[1].CurrentReplicas, "the intermediate inputs are skipped")
	r, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "web", 4))
	require.NoError(t, err)
	assert.Equal(t, int32(2), *r.Replicas)
}

// A recommender that hangs holds at most max_in_flight_per_endpoint calls; the other DPAs on
// it wait their turn without holding the caller, a DPA on another endpoint is answered at
// once, and the queued calls start as the hanging ones end.
func TestHangingEndpointIsBounded(t *testing.T) {
	hanging := newRecorder(t)
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"replicas": 7}`)
	}))
	defer healthy.Close()
	s := newSource(t, configdef.ExternalRecommenderConfig{MaxInFlightPerEndpoint: 2, MaxInFlight: 10, AnswerWait: 20 * time.Millisecond})
	defer s.Close()
	told := make(chan string, 20)
	defer s.Subscribe(func(ns, name string) { told <- name })()

	// The first two DPAs start calls; their reconciles wait answer_wait, then get a Pending.
	for _, name := range []string{"a", "b"} {
		_, err := s.Recommend(context.Background(), dpaRequest(hanging.srv.URL, name, 1))
		_, ok := asPending(err)
		require.True(t, ok)
	}
	hanging.waitArrivals(t, 2)
	for _, name := range []string{"c", "d", "e"} { // over the bound: queued, answered at once
		_, err := s.Recommend(context.Background(), dpaRequest(hanging.srv.URL, name, 1))
		p, ok := asPending(err)
		require.True(t, ok)
		assert.False(t, p.Since.IsZero())
	}
	dpas, running, queued := s.calls.size()
	assert.Equal(t, [3]int{5, 2, 3}, [3]int{dpas, running, queued})
	assert.Len(t, hanging.requests(), 2, "no more than the bound reach the hanging endpoint")

	r, err := s.Recommend(context.Background(), dpaRequest(healthy.URL, "other", 1))
	require.NoError(t, err, "another endpoint is not held back")
	assert.Equal(t, int32(7), *r.Replicas)

	for i := range 5 { // each answer frees a slot for the next queued call
		hanging.release <- struct{}{}
		if i < 3 {
			hanging.waitArrivals(t, 1)
		}
	}
	names := map[string]bool{}
	for range 5 {
		names[<-told] = true
	}
	assert.Equal(t, map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": true}, names)
	_, running, queued = s.calls.size()
	assert.Equal(t, [2]int{0, 0}, [2]int{running, queued})
}

// Forget cancels a DPA's call and drops its state; Close cancels the rest and returns once
// their goroutines are gone (goleak).
func TestForgetAndClose(t *testing.T) {
	rec := newRecorder(t)
	s := newSource(t, configdef.ExternalRecommenderConfig{MaxInFlightPerEndpoint: 1})
	told := make(chan string, 10)
	defer s.Subscribe(func(ns, name string) { told <- name })()
	for _, name := range []string{"a", "b", "c"} {
		_, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, name, 1))
		_, ok := asPending(err)
		require.True(t, ok)
	}
	rec.waitArrivals(t, 1)
	s.Forget("shop", "a") // cancels a's call: b starts
	rec.waitArrivals(t, 1)
	s.Forget("shop", "c") // queued: dropped
	dpas, running, queued := s.calls.size()
	assert.Equal(t, [3]int{1, 1, 0}, [3]int{dpas, running, queued})
	s.Close()
	select {
	case name := <-told:
		t.Fatalf("told about %s after Forget/Close", name)
	default:
	}
	_, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "d", 1))
	_, ok := asPending(err)
	assert.True(t, ok, "a closed source starts nothing")
	assert.Len(t, rec.requests(), 2)
}

// Garbage is an answer too: an error, returned to the reconcile that waited for it.
func TestGarbageAnswerIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "\x00\x01 not json")
	}))
	defer srv.Close()
	s := newSource(t, configdef.ExternalRecommenderConfig{AnswerWait: time.Minute})
	defer s.Close()
	told := make(chan string, 1)
	defer s.Subscribe(func(ns, name string) { told <- name })()
	_, err := s.Recommend(context.Background(), dpaRequest(srv.URL, "web", 1))
	require.ErrorContains(t, err, "answer is not a recommendation")
	_, ok := asPending(err)
	assert.False(t, ok)
	assert.Empty(t, told, "the waiting reconcile took the answer: nobody else is told")
	assert.False(t, s.Applies(&v1alpha2.DatadogPodAutoscaler{}))
}

func asPending(err error) (*def.Pending, bool) { return errors.AsType[*def.Pending](err) }

// loopback allows the tests' recommenders (httptest servers on 127.0.0.1).
var loopback = []string{"127.0.0.0/8"}

// TestMain fails the package when a call's goroutine outlives its source's Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// An endpoint found slow is not waited for again: the next DPA on it gets a Pending at once,
// until one of its calls answers within answer_wait.
func TestSlowEndpointIsNotWaitedForTwice(t *testing.T) {
	rec := newRecorder(t)
	s := newSource(t, configdef.ExternalRecommenderConfig{AnswerWait: 30 * time.Millisecond})
	defer s.Close()
	_, err := s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "a", 1))
	_, ok := asPending(err)
	require.True(t, ok)
	s.calls.mu.Lock()
	_, slow := s.calls.slow["http://"+rec.srv.Listener.Addr().String()]
	s.calls.mu.Unlock()
	assert.True(t, slow, "the endpoint is marked slow")

	s.calls.mu.Lock()
	s.calls.wait = time.Hour // a wait now would hang the test
	s.calls.mu.Unlock()
	_, err = s.Recommend(context.Background(), dpaRequest(rec.srv.URL, "b", 1))
	_, ok = asPending(err)
	require.True(t, ok, "not waited for")
	rec.waitArrivals(t, 2)
	rec.release <- struct{}{}
	rec.release <- struct{}{}
}
