package impl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/lazyscale/lazyscale/comp/admission/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	leadermock "github.com/lazyscale/lazyscale/comp/leaderelection/mock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type staticConfig configdef.Config

func (c staticConfig) Get() configdef.Config { return configdef.Config(c) }

// blocking is a webhook that holds every review until released.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Name() string                   { return "blocking" }
func (b *blocking) Path() string                   { return "/blocking" }
func (b *blocking) Registration() def.Registration { return def.Registration{} }
func (b *blocking) Handle(context.Context, types.UID, []byte) def.Response {
	close(b.entered)
	<-b.release
	return def.Response{Allowed: true}
}

// Stopping the server waits for reviews in flight: the apiserver gets its answer.
func TestShutdownDrainsInFlightReviews(t *testing.T) {
	cfg := configdef.Defaults()
	cfg.Admission.Register = configdef.RegisterNever
	cfg.Admission.BindAddress, cfg.Admission.Port = "127.0.0.1", 0
	cfg.Admission.URL = "https://127.0.0.1:1"
	w := &blocking{entered: make(chan struct{}), release: make(chan struct{})}
	p, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zap.NewNop(), Kube: fake.NewClientset(), Leader: leadermock.AlwaysLeader{},
		Registerer: prometheus.NewRegistry(), Webhooks: []def.Webhook{w}})
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(p.Comp.CABundle()))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Post("https://"+p.Comp.Addr()+"/blocking", "application/json", strings.NewReader(validReview))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-w.entered

	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("stop returned with a review in flight")
	case <-time.After(200 * time.Millisecond): // a window for a wrong Stop to return early
	}
	close(w.release)
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.code)
	assert.Contains(t, r.body, `"allowed":true`)
	require.NoError(t, <-stopped)
}

func TestTLSVersionFloor(t *testing.T) {
	cfg := configdef.Defaults()
	cfg.Admission.Register = configdef.RegisterNever
	cfg.Admission.BindAddress, cfg.Admission.Port = "127.0.0.1", 0
	cfg.Admission.URL = "https://127.0.0.1:1"
	p, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zap.NewNop(), Kube: fake.NewClientset(), Leader: leadermock.AlwaysLeader{},
		Registerer: prometheus.NewRegistry(), Webhooks: []def.Webhook{panicky{}}})
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	defer func() { require.NoError(t, p.Stop(context.Background())) }()

	_, err = tls.Dial("tcp", p.Comp.Addr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}) //nolint:gosec // the point of the test
	require.Error(t, err, "TLS 1.1 is refused")
	conn, err := tls.Dial("tcp", p.Comp.Addr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the version is checked
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS13), conn.ConnectionState().Version, "TLS 1.3 preferred")
	conn.Close()
}
