// Package e2e runs the real lazyscale binary as a separate process against a real local
// control plane, as an operator would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// syncBuffer is an io.Writer safe to read while the process writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lazyscale")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lazyscale/lazyscale/cmd/lazyscale").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func getStatus(addr string) (statusdef.Document, error) { return getStatusAs(addr, "") }

// getStatusAs reads /status with a bearer token (none if empty): an agent with status.auth
// kubernetes, as the shipped install runs, answers only a token allowed to get it.
func getStatusAs(addr, token string) (statusdef.Document, error) {
	var d statusdef.Document
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return d, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("/status: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return d, err
	}
	if d.Gate == nil || d.PodCollection == nil || d.Autoscaling == nil || d.Leader == nil {
		return d, fmt.Errorf("/status lacks a section: %s", body)
	}
	return d, nil
}

// A cluster without the CRDs: the binary starts, is ready, logs the missing resource once
// (not on every retry), and opens the gate when the CRD and a DPA appear. SIGTERM stops it
// cleanly.
func TestBinaryMissingCRDThenDPA(t *testing.T) {
	bin := buildBinary(t)
	e := testenv.NewEnv(t, false)
	e.Namespace("shop", nil)
	e.CreatePods("shop", "cart", 20)

	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	var logs syncBuffer
	cmd := exec.Command(bin, "--kubeconfig", e.CP.Kubeconfig, "--status-addr", addr, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	port := strconv.Itoa(testenv.FreePort(t))
	cmd.Env = append(os.Environ(), "LAZYSCALE_LOG_LEVEL=info", "LAZYSCALE_ADMISSION_BIND_ADDRESS=127.0.0.1",
		"LAZYSCALE_ADMISSION_PORT="+port, "LAZYSCALE_ADMISSION_URL=https://127.0.0.1:"+port)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, testenv.WaitFor, 100*time.Millisecond, "binary never ready; logs:\n%s", &logs)

	missing := func() int {
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "DatadogPodAutoscaler") && strings.Contains(line, "not served") {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return missing() == 1 }, testenv.WaitFor, 100*time.Millisecond, "logs:\n%s", &logs)
	// Several backoff retries happen in this window (0.8 s, 1.6 s, 3.2 s, ...); none is logged.
	assert.Never(t, func() bool { return missing() > 1 }, 7*time.Second, 100*time.Millisecond, "log flood:\n%s", &logs)
	retries := 0
	for _, r := range e.LazyscaleRequests("datadogpodautoscalers") {
		if r.ResponseStatus != nil && r.ResponseStatus.Code == http.StatusNotFound {
			retries++
		}
	}
	assert.GreaterOrEqual(t, retries, 3, "the watch keeps retrying with backoff")
	d, err := getStatus(addr)
	require.NoError(t, err)
	assert.False(t, d.Gate.Open)
	assert.Equal(t, wmdef.StateDormant, d.PodCollection.State)

	e.InstallCRDs()
	e.CreateDPA("shop", "cart", "cart")
	require.Eventually(t, func() bool {
		d, err := getStatus(addr)
		return err == nil && d.Gate.Open && d.PodCollection.State == "synced" && d.PodCollection.Pods == 20
	}, 90*time.Second, 200*time.Millisecond, "gate never opened; logs:\n%s", &logs)

	out, err := exec.Command(bin, "status", "--status-addr", addr).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "opened by DatadogPodAutoscaler shop/cart")
	assert.Contains(t, string(out), "synced (mode deferred), 20 pods")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-exited:
		require.NoError(t, err, "exit after SIGTERM; logs:\n%s", &logs)
	case <-ctx.Done():
		t.Fatalf("binary did not stop after SIGTERM; logs:\n%s", &logs)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		assert.NotContains(t, line, `"level":"error"`, "no error logged in a normal run")
	}
}

func TestBinaryInvalidConfigExitsWith2(t *testing.T) {
	bin := buildBinary(t)
	cfg := filepath.Join(t.TempDir(), "lazyscale.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("admission:\n  regster: lazy\n"), 0o600))
	out, err := exec.Command(bin, "--config", cfg).CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 2, exitErr.ExitCode())
	assert.Contains(t, string(out), "admission.regster")
}
