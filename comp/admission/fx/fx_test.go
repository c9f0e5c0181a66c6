package fx

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	autoscalingwebhookfx "github.com/lazyscale/lazyscale/comp/admission/autoscaling/fx"
	"github.com/lazyscale/lazyscale/comp/admission/def"
	gatefx "github.com/lazyscale/lazyscale/comp/autoscalinggate/fx"
	dpacachefx "github.com/lazyscale/lazyscale/comp/dpacache/fx"
	leaderelectionfx "github.com/lazyscale/lazyscale/comp/leaderelection/fx"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The server, with the autoscaling webhook and a self-managed certificate (stored in the fake
// clientset's Secret), answers a review over TLS with the CA it reports.
func TestModule(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, map[string]string{
		"admission.enabled": "true", "admission.register": "never", "admission.bind_address": "127.0.0.1",
		"admission.port": strconv.Itoa(freePort(t)),
	})
	srv := fxutiltest.Component[def.Component](t, core, leaderelectionfx.Module(), dpacachefx.Module(), gatefx.Module(),
		autoscalingwebhookfx.Module(), Module())
	require.NotEmpty(t, srv.Addr())
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(srv.CABundle()))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "lazyscale-admission.lazyscale.svc", MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{}}}`
	resp, err := client.Post("https://"+srv.Addr()+"/autoscaling", "application/json", bytes.NewBufferString(review))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Response struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
		} `json:"response"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	assert.Equal(t, "u1", out.Response.UID)
	assert.True(t, out.Response.Allowed, "no patcher: admitted unchanged")
}
