package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// The webhook's CA and serving keys never leave their Secret: everything the agent writes
// while its certificate is renewed twice (its log at debug level, /status, /metrics, the
// events, the DPAs' statuses, its Lease and its webhook configuration) holds no PEM block
// (apart from the CA certificate in the webhook's caBundle, which is public) and no piece of
// any key the Secret held.
func TestSecretsStaySecret(t *testing.T) {
	bin := buildBinary(t)
	e := testenv.NewEnv(t, true)
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment(ns, "cart", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	e.CreatePods(ns, "cart", 3)

	// Every version of the Secret's keys, as the agent writes them.
	var mu sync.Mutex
	keys := map[string][]byte{} // PEM, by content
	renewals := 0
	var lastCert []byte
	watch, err := e.Kube.CoreV1().Secrets("lazyscale").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=lazyscale-webhook-cert"})
	require.NoError(t, err)
	var watcher sync.WaitGroup
	defer func() { watch.Stop(); watcher.Wait() }()
	watcher.Go(func() {
		for ev := range watch.ResultChan() {
			s, ok := ev.Object.(*corev1.Secret)
			if !ok {
				continue
			}
			mu.Lock()
			for _, k := range []string{"ca.key", "tls.key"} {
				if len(s.Data[k]) > 0 {
					keys[string(s.Data[k])] = s.Data[k]
				}
			}
			if lastCert != nil && !bytes.Equal(lastCert, s.Data["tls.crt"]) {
				renewals++
			}
			lastCert = s.Data["tls.crt"]
			mu.Unlock()
		}
	})

	port := strconv.Itoa(testenv.FreePort(t))
	_, addr, logs := startAgent(t, bin, e, "agent-a", port, "https://127.0.0.1:"+port,
		"LAZYSCALE_ADMISSION_CERTIFICATE_VALIDITY=12s", "LAZYSCALE_LOG_LEVEL=debug")
	rolloutDPA(t, e, ns, "cart", "300m", nil)
	readyToPatch(t, []string{addr}, logs)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return renewals >= 2 }, testenv.WaitFor, 200*time.Millisecond,
		"the serving certificate was not renewed twice; logs:\n%s", logs)
	// A pod created after the renewals is patched: the new certificate is served.
	_, err = e.CreatePod(ns, "cart-7c9d8f6b5-after", map[string]string{"app": "cart", "pod-template-hash": "7c9d8f6b5"},
		metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "cart-7c9d8f6b5", UID: "rs-cart", Controller: testenv.Ptr(true)})
	require.NoError(t, err)

	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	asJSON := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return string(b)
	}
	events, err := e.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	dpas, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	lease, err := e.Kube.CoordinationV1().Leases("lazyscale").Get(ctx, "lazyscale-leader", metav1.GetOptions{})
	require.NoError(t, err)
	mwc, err := e.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "lazyscale-webhook", metav1.GetOptions{})
	require.NoError(t, err)
	written := map[string]string{
		"log": logs.String(), "/status": get("/status"), "/metrics": get("/metrics"),
		"events": asJSON(events), "DPAs": asJSON(dpas), "Lease": asJSON(lease),
	}
	for name, text := range written {
		assert.NotContains(t, text, "-----BEGIN", "%s holds a PEM block", name)
		assert.NotContains(t, text, "PRIVATE KEY", "%s names a private key", name)
	}
	written["webhook configuration"] = asJSON(mwc) // its caBundle is the CA certificate: public

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(keys), 3, "the CA key and at least two serving keys")
	for _, keyPEM := range keys {
		block, _ := pem.Decode(keyPEM)
		require.NotNil(t, block)
		// The detector finds the key in its own PEM, and in a JSON string of it.
		_, inPEM := keyPiece(block.Bytes, string(keyPEM))
		_, inJSON := keyPiece(block.Bytes, asJSON(string(keyPEM)))
		require.True(t, inPEM && inJSON, "the detector misses the key itself")
		for name, text := range written {
			if piece, found := keyPiece(block.Bytes, text); found {
				t.Errorf("%s holds a piece of a %s: %q", name, block.Type, piece)
			}
		}
	}
	t.Logf("%d renewals, %d keys, %d bytes of log scanned", renewals, len(keys), len(written["log"]))
}

// keyPiece finds in text any 24 characters of the key's base64 (standard or URL alphabet, as
// PEM, JSON or a log would write the bytes) or hex encoding.
func keyPiece(der []byte, text string) (string, bool) {
	const n = 24
	for _, enc := range []string{base64.StdEncoding.EncodeToString(der), base64.URLEncoding.EncodeToString(der), hex.EncodeToString(der)} {
		// Base64 groups are 4 characters for 3 bytes: a window starting at a group boundary
		// is what any encoding of the bytes from there on starts with.
		for i := 0; i+n <= len(enc); i += 4 {
			if strings.Contains(text, enc[i:i+n]) {
				return enc[i : i+n], true
			}
		}
	}
	return "", false
}
