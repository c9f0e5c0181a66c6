package external

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

func TestGuardList(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "*.*.svc", "a*.svc", "http://x.svc", "x.svc:8080", ".svc", "svc.", "user@x.svc"} {
		_, err := newGuard([]string{bad})
		assert.Error(t, err, bad)
	}
	g, err := newGuard([]string{" *.svc ", "Recommender.Example.com", "10.1.0.0/16", "192.0.2.7", "2001:db8::/32", ""})
	require.NoError(t, err)
	assert.True(t, g.nameAllowed("reco.team.svc"))
	assert.True(t, g.nameAllowed("RECO.team.SVC."), "names compare without case and final dot")
	assert.False(t, g.nameAllowed("svc"), "*.svc needs a label before .svc")
	assert.False(t, g.nameAllowed("reco.team.svc.evil.com"))
	assert.True(t, g.nameAllowed("recommender.example.com"))
	assert.False(t, g.nameAllowed("x.recommender.example.com"), "an exact name is not a suffix")
	assert.True(t, g.netAllowed(netip.MustParseAddr("10.1.200.3")))
	assert.True(t, g.netAllowed(netip.MustParseAddr("192.0.2.7")))
	assert.False(t, g.netAllowed(netip.MustParseAddr("192.0.2.8")))
	assert.True(t, g.netAllowed(netip.MustParseAddr("2001:db8::1")))
}

// check refuses, before any connection, what the list cannot allow, and says why.
func TestGuardCheck(t *testing.T) {
	def, err := newGuard(DefaultAllowedEndpoints)
	require.NoError(t, err)
	open, err := newGuard([]string{"*", "0.0.0.0/0", "::/0"})
	require.NoError(t, err)
	for _, tt := range []struct {
		guard    *guard
		endpoint string
		refused  string // "" if allowed
	}{
		{def, "http://reco.team.svc:8080/recommend", ""},
		{def, "https://reco.team.svc.cluster.local/recommend", ""},
		{def, "http://evil.example.com/", "host evil.example.com is not in autoscaling.workload.external_recommender.allowed_endpoints (*.svc,*.svc.cluster.local)"},
		{def, "http://10.0.0.1/", "address 10.0.0.1 is not in"},
		{def, "http://kubernetes.default/", "host kubernetes.default is not in"},
		{def, "http://user:secret@reco.team.svc/", "credentials in the URL"},
		// Whatever the list says.
		{open, "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
		{open, "http://[fe80::1]/", "link-local"},
		{open, "http://[fd00:ec2::254]/", "a cloud metadata address"},
		{open, "http://100.100.100.200/", "a cloud metadata address"},
		{open, "http://[::ffff:169.254.169.254]/", "link-local"},
		{open, "http://0.0.0.0:5080/metrics", "the unspecified address"},
		{open, "http://224.0.0.1/", "multicast"},
		{open, "http://10.0.0.1/", ""},
		{open, "http://127.0.0.1:5080/", ""}, // a listed network holds it
	} {
		err := tt.guard.check(tt.endpoint)
		if tt.refused == "" {
			assert.NoError(t, err, tt.endpoint)
			continue
		}
		var refused *RefusedError
		if assert.ErrorAs(t, err, &refused, tt.endpoint) {
			assert.Contains(t, refused.Error(), tt.refused, tt.endpoint)
			assert.NotContains(t, refused.Error(), "secret", "the credentials stay out of the message")
		}
	}
}

// The addresses a name resolves to are checked when it is dialled: a *.svc name that resolves
// to a metadata or loopback address (an ExternalName Service can do that) is refused, and the
// address dialled is the one checked.
func TestGuardDial(t *testing.T) {
	var accepted atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var acceptor sync.WaitGroup
	defer func() { l.Close(); acceptor.Wait() }()
	acceptor.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())

	resolves := map[string][]string{
		"metadata.team.svc": {"169.254.169.254"},
		"local.team.svc":    {"127.0.0.1"},
		"mixed.team.svc":    {"10.0.0.9", "169.254.169.254"},
		"lab.example.com":   {"127.0.0.1"},
	}
	dialWith := func(list []string, host string) error {
		g, err := newGuard(list)
		require.NoError(t, err)
		g.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
			var out []netip.Addr
			for _, a := range resolves[host] {
				out = append(out, netip.MustParseAddr(a))
			}
			if len(out) == 0 {
				return nil, errors.New("no such host")
			}
			return out, nil
		}
		conn, err := g.dial(&net.Dialer{Timeout: time.Second})(context.Background(), "tcp", net.JoinHostPort(host, port))
		if conn != nil {
			conn.Close()
		}
		return err
	}
	var refused *RefusedError
	require.ErrorAs(t, dialWith(DefaultAllowedEndpoints, "metadata.team.svc"), &refused)
	assert.Contains(t, refused.Reason, "metadata.team.svc resolves to 169.254.169.254, a link-local address")
	require.ErrorAs(t, dialWith(DefaultAllowedEndpoints, "local.team.svc"), &refused)
	assert.Contains(t, refused.Reason, "loopback")
	require.ErrorAs(t, dialWith(DefaultAllowedEndpoints, "mixed.team.svc"), &refused, "one forbidden address refuses the name")
	require.ErrorAs(t, dialWith(DefaultAllowedEndpoints, "127.0.0.1"), &refused)
	require.ErrorAs(t, dialWith([]string{"10.0.0.0/8"}, "lab.example.com"), &refused, "a name outside the patterns must resolve into a network")
	assert.Zero(t, accepted.Load(), "a refused endpoint is never connected to")

	require.NoError(t, dialWith([]string{"127.0.0.0/8"}, "lab.example.com"), "a name resolving into a listed network")
	require.NoError(t, dialWith([]string{"127.0.0.1"}, "127.0.0.1"))
	require.Eventually(t, func() bool { return accepted.Load() == 2 }, 5*time.Second, 10*time.Millisecond)
}

// Through the source: a refused endpoint is an error that says why, and its listener sees no
// connection; a redirect is not followed; an allowed endpoint answers.
func TestSourceRefusesAndDoesNotFollowRedirects(t *testing.T) {
	var refusedHits, redirectedHits atomic.Int32
	refusedSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { refusedHits.Add(1) }))
	defer refusedSrv.Close()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		redirectedHits.Add(1)
		_, _ = w.Write([]byte(`{"replicas": 3}`))
	}))
	defer target.Close()
	redirecting := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirecting.Close()

	s, err := New(configdef.ExternalRecommenderConfig{Timeout: 5 * time.Second, AnswerWait: 5 * time.Second, AllowedEndpoints: DefaultAllowedEndpoints})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Recommend(context.Background(), requestFor("refused", refusedSrv.URL))
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Contains(t, err.Error(), "127.0.0.1 is a loopback address")
	assert.Zero(t, refusedHits.Load(), "no connection to a refused endpoint")

	open, err := New(configdef.ExternalRecommenderConfig{Timeout: 5 * time.Second, AnswerWait: 5 * time.Second, AllowedEndpoints: loopback})
	require.NoError(t, err)
	defer open.Close()
	_, err = open.Recommend(context.Background(), requestFor("redirected", redirecting.URL))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redirects are not followed")
	assert.Zero(t, redirectedHits.Load(), "the redirect's target is not called")
	rec, err := open.Recommend(context.Background(), requestFor("direct", target.URL))
	require.NoError(t, err)
	require.NotNil(t, rec.Replicas)
	assert.Equal(t, int32(3), *rec.Replicas)
}

// A request larger than the bound is not sent.
func TestSourceBoundsTheRequest(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	s, err := New(configdef.ExternalRecommenderConfig{Timeout: 5 * time.Second, AnswerWait: 5 * time.Second, AllowedEndpoints: loopback})
	require.NoError(t, err)
	defer s.Close()
	req := requestFor("big", srv.URL)
	req.Autoscaler.Annotations[v1alpha2.CustomRecommenderAnnotation] = `{"endpoint": "` + srv.URL + `", "settings": {"pad": "` + strings.Repeat("x", maxRequest) + `"}}`
	_, err = s.Recommend(context.Background(), req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than 1048576")
	assert.Zero(t, hits.Load())
}

func requestFor(name, endpoint string) def.Request {
	dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
		Annotations: map[string]string{v1alpha2.CustomRecommenderAnnotation: `{"endpoint": "` + endpoint + `"}`}},
		Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}}}
	return def.Request{Autoscaler: dpa}
}
