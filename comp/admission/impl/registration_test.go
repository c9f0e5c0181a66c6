package impl

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/lazyscale/lazyscale/comp/admission/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// scopedWebhook is a webhook whose entry is scoped.
type scopedWebhook struct{ scope *def.NamespaceScope }

func (scopedWebhook) Name() string { return "autoscaling" }
func (scopedWebhook) Path() string { return "/autoscaling" }
func (w scopedWebhook) Registration() def.Registration {
	return def.Registration{Scope: w.scope}
}
func (scopedWebhook) Handle(context.Context, types.UID, []byte) def.Response {
	return def.Response{Allowed: true}
}

// A scoped entry: absent while no namespace is wanted; then In the wanted namespaces, with the
// skipped ones still out; recorded as applied; no write when nothing changed; gone again when
// no namespace is left.
func TestRegistrarAppliesTheScope(t *testing.T) {
	kube := fake.NewClientset()
	scope := def.NewNamespaceScope()
	cfg := configdef.Defaults().Admission
	cfg.ServiceNamespace = "lazyscale"
	r := newRegistrar(kube, cfg, []def.Webhook{scopedWebhook{scope}}, func() []byte { return []byte("CA") }, newNotifier(), func() {}, zap.NewNop())
	r.want("autoscaling")
	ctx := context.Background()
	mwcs := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()

	require.NoError(t, r.reconcile(ctx))
	_, err := mwcs.Get(ctx, cfg.WebhookName, metav1.GetOptions{})
	assert.Error(t, err, "no namespace: no configuration")
	assert.False(t, scope.Covers("shop"))

	scope.Set([]string{"shop", "cart", "shop"})
	require.NoError(t, r.reconcile(ctx))
	mwc, err := mwcs.Get(ctx, cfg.WebhookName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, mwc.Webhooks, 1)
	exprs := mwc.Webhooks[0].NamespaceSelector.MatchExpressions
	require.Len(t, exprs, 2)
	assert.Equal(t, metav1.LabelSelectorOpNotIn, exprs[0].Operator)
	assert.Equal(t, []string{"kube-system", "lazyscale"}, exprs[0].Values)
	assert.Equal(t, metav1.LabelSelectorOpIn, exprs[1].Operator)
	assert.Equal(t, []string{"cart", "shop"}, exprs[1].Values)
	assert.True(t, scope.Covers("shop"))
	assert.False(t, scope.Covers("other"))

	writes := len(kube.Actions())
	require.NoError(t, r.reconcile(ctx))
	for _, a := range kube.Actions()[writes:] {
		assert.NotEqual(t, "update", a.GetVerb(), "nothing changed: nothing written")
	}

	scope.Set(nil)
	require.NoError(t, r.reconcile(ctx))
	mwc, err = mwcs.Get(ctx, cfg.WebhookName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, mwc.Webhooks, "no namespace left: the entry goes, the configuration stays")
	assert.False(t, scope.Covers("shop"))
}
