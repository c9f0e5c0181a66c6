package impl

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

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
	web := def.Workload{Namespace: "shop", Kind: "Deployment", Name: "web"}
	assert.False(t, scope.Covers(web))

	scope.Set([]def.Workload{web, {Namespace: "cart", Kind: "StatefulSet", Name: "db"}, web})
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
	assert.Empty(t, mwc.Webhooks[0].MatchConditions, "no conditions asked")
	assert.True(t, scope.Covers(web))
	assert.True(t, scope.Covers(def.Workload{Namespace: "shop", Kind: "Deployment", Name: "api"}), "every pod of a covered namespace")
	assert.False(t, scope.Covers(def.Workload{Namespace: "other", Kind: "Deployment", Name: "web"}))

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
	assert.False(t, scope.Covers(web))
}

// With match conditions, the entry names the workloads and covers only them; above the
// maximum it covers their whole namespaces again.
func TestRegistrarAppliesWorkloadConditions(t *testing.T) {
	kube := fake.NewClientset()
	scope := def.NewNamespaceScope()
	var named [][]def.Workload
	scope.MatchWorkloads(2, func(ws []def.Workload) []admissionregistrationv1.MatchCondition {
		named = append(named, ws)
		return []admissionregistrationv1.MatchCondition{{Name: "w", Expression: fmt.Sprint(len(ws))}}
	})
	cfg := configdef.Defaults().Admission
	r := newRegistrar(kube, cfg, []def.Webhook{scopedWebhook{scope}}, func() []byte { return []byte("CA") }, newNotifier(), func() {}, zap.NewNop())
	r.want("autoscaling")
	ctx := context.Background()
	entry := func() admissionregistrationv1.MutatingWebhook {
		t.Helper()
		require.NoError(t, r.reconcile(ctx))
		mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfg.WebhookName, metav1.GetOptions{})
		require.NoError(t, err)
		require.Len(t, mwc.Webhooks, 1)
		return mwc.Webhooks[0]
	}
	web, api := def.Workload{Namespace: "shop", Kind: "Deployment", Name: "web"}, def.Workload{Namespace: "shop", Kind: "Deployment", Name: "api"}
	db := def.Workload{Namespace: "data", Kind: "StatefulSet", Name: "db"}

	scope.Set([]def.Workload{web})
	e := entry()
	assert.Equal(t, []admissionregistrationv1.MatchCondition{{Name: "w", Expression: "1"}}, e.MatchConditions)
	assert.Equal(t, []def.Workload{web}, named[len(named)-1])
	assert.True(t, scope.Covers(web))
	assert.False(t, scope.Covers(api), "same namespace, not named")
	assert.True(t, scope.Status().MatchesWorkloads)

	scope.Set([]def.Workload{web, db})
	e = entry()
	assert.Equal(t, "2", e.MatchConditions[0].Expression)
	assert.Equal(t, []def.Workload{db, web}, named[len(named)-1], "sorted")
	assert.True(t, scope.Covers(db))

	scope.Set([]def.Workload{web, db, api})
	e = entry()
	assert.Empty(t, e.MatchConditions, "above the maximum: whole namespaces")
	assert.Equal(t, []string{"data", "shop"}, e.NamespaceSelector.MatchExpressions[1].Values)
	assert.True(t, scope.Covers(def.Workload{Namespace: "shop", Kind: "Deployment", Name: "other"}))
	st := scope.Status()
	assert.False(t, st.MatchesWorkloads)
	assert.Equal(t, 3, st.Workloads)
	assert.Equal(t, []string{"data", "shop"}, st.Namespaces)
}

// An apiserver that refuses the match conditions (one without them, or without the CEL
// functions they use) gets an entry for whole namespaces instead: every pod of the namespaces
// rather than none, and a rollout is not kept waiting.
func TestRegistrarFallsBackWhenConditionsAreRefused(t *testing.T) {
	kube := fake.NewClientset()
	refuse := func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.CreateAction).GetObject().(*admissionregistrationv1.MutatingWebhookConfiguration)
		if len(obj.Webhooks) > 0 && len(obj.Webhooks[0].MatchConditions) > 0 {
			return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}, obj.Name,
				field.ErrorList{field.Invalid(field.NewPath("webhooks").Index(0).Child("matchConditions").Index(0).Child("expression"), "…", "undeclared reference to 'substring'")})
		}
		return false, nil, nil
	}
	kube.PrependReactor("create", "mutatingwebhookconfigurations", refuse)
	scope := def.NewNamespaceScope()
	scope.MatchWorkloads(10, func(ws []def.Workload) []admissionregistrationv1.MatchCondition {
		return []admissionregistrationv1.MatchCondition{{Name: "w", Expression: "true"}}
	})
	cfg := configdef.Defaults().Admission
	r := newRegistrar(kube, cfg, []def.Webhook{scopedWebhook{scope}}, func() []byte { return []byte("CA") }, newNotifier(), func() {}, zap.NewNop())
	r.want("autoscaling")
	web := def.Workload{Namespace: "shop", Kind: "Deployment", Name: "web"}
	scope.Set([]def.Workload{web})
	require.NoError(t, r.reconcile(context.Background()))
	mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), cfg.WebhookName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, mwc.Webhooks, 1)
	assert.Empty(t, mwc.Webhooks[0].MatchConditions)
	assert.Equal(t, []string{"shop"}, mwc.Webhooks[0].NamespaceSelector.MatchExpressions[1].Values)
	assert.True(t, scope.Covers(web))
	assert.True(t, scope.Covers(def.Workload{Namespace: "shop", Kind: "Deployment", Name: "batch"}), "the whole namespace")
	assert.False(t, scope.Status().MatchesWorkloads)
}
