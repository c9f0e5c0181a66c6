package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
)

// Shared is one control plane for the tests of a package that can share it: the first Env
// starts it, each test works in namespaces of its own (Env.Namespace makes the names unique),
// and Stop, from TestMain, ends it. Tests run one after the other (no t.Parallel): each
// test's in-process agent is stopped before the next one starts, and what it created that
// an agent would act on (DPAs, profiles) is deleted at its end.
type Shared struct {
	Options controlplane.Options

	once sync.Once
	dir  string
	cp   *controlplane.ControlPlane
	err  error
	seq  atomic.Int64
}

// Env is an Env on the shared control plane, started on first use.
func (s *Shared) Env(t testing.TB) *Env {
	t.Helper()
	s.once.Do(func() {
		s.dir, s.err = os.MkdirTemp("", "lazyscale-shared-")
		if s.err != nil {
			return
		}
		opts := s.Options
		opts.Dir = s.dir
		start := time.Now()
		s.cp, s.err = controlplane.Start(context.Background(), opts)
		if s.err == nil {
			s.err = createNamespace(s.cp, "lazyscale")
		}
		t.Logf("shared control plane started in %s (logs in %s)", time.Since(start).Round(time.Millisecond), s.dir)
	})
	require.NoError(t, s.err, "shared control plane")
	e := newEnvOn(t, s.cp)
	e.shared = s
	// Requests of earlier tests are not this test's.
	if fi, err := os.Stat(s.cp.AuditLog); err == nil {
		e.auditFrom = fi.Size()
	}
	// Registered before the test's own cleanups, so it runs after them (the agent is stopped).
	t.Cleanup(e.releaseShared)
	return e
}

// Stop ends the shared control plane, if it was started, and removes its directory.
func (s *Shared) Stop() {
	if s.cp != nil {
		s.cp.Stop()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// releaseShared deletes what the test made that a later test's agent would act on or find: the
// DPAs in its namespaces (waiting until they are gone), its profiles, the namespaces (the
// namespace controller finishes that in the background), and what agents keep for
// themselves: the webhook configuration, and the Secrets and Leases in lazyscale's namespace.
// The next test starts as on a cluster where lazyscale never ran.
func (e *Env) releaseShared() {
	ctx := context.Background()
	if err := e.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "lazyscale-webhook", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		e.T.Errorf("delete the webhook configuration: %v", err)
	}
	if err := e.Kube.CoreV1().Secrets("lazyscale").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		e.T.Errorf("delete lazyscale's Secrets: %v", err)
	}
	if err := e.Kube.CoordinationV1().Leases("lazyscale").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		e.T.Errorf("delete lazyscale's Leases: %v", err)
	}
	for _, p := range e.profiles {
		err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource).Delete(ctx, p, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			e.T.Errorf("delete profile %s: %v", p, err)
		}
	}
	for _, ns := range e.namespaces {
		dpas := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns)
		if err := dpas.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			e.T.Errorf("delete the DPAs of %s: %v", ns, err)
			continue
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, WaitFor, true, func(ctx context.Context) (bool, error) {
			l, err := dpas.List(ctx, metav1.ListOptions{})
			return err == nil && len(l.Items) == 0, nil
		})
		if err != nil {
			e.T.Errorf("the DPAs of %s were never deleted", ns)
		}
		if err := e.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			e.T.Errorf("delete namespace %s: %v", ns, err)
		}
	}
}

// uniqueNamespace is name on a private control plane, and name-<n> on a shared one.
func (e *Env) uniqueNamespace(name string) string {
	if e.shared == nil {
		return name
	}
	return fmt.Sprintf("%s-%d", name, e.shared.seq.Add(1))
}

func createNamespace(cp *controlplane.ControlPlane, name string) error {
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	_, err = kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return err
}
