package impl

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/comp/admission/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// entrySuffix makes entry names fully qualified, as the API requires.
const entrySuffix = ".lazyscale.datadoghq.com"

// registrar keeps lazyscale's entries of one MutatingWebhookConfiguration up to date. The
// object is updated in place, never deleted and re-created, and entries it does not own are
// left alone.
type registrar struct {
	kube     kubernetes.Interface
	cfg      configdef.AdmissionConfig
	webhooks []def.Webhook
	caBundle func() []byte
	log      *zap.Logger
	// changed wakes run: an entry became wanted, or the CA changed.
	changed notifier
	// onWanted is called when an entry becomes wanted: there is something for the leader to
	// write.
	onWanted func()

	mu         sync.Mutex
	wanted     map[string]bool
	registered []string
	// noConditions is set once the apiserver refused an entry for its scope's match
	// conditions (an apiserver without them, or without the CEL functions they use): scoped
	// entries then cover whole namespaces, for the process's life.
	noConditions bool
}

// newRegistrar: changed is notified by whoever changes the CA; onWanted is called when an
// entry becomes wanted.
func newRegistrar(kube kubernetes.Interface, cfg configdef.AdmissionConfig, webhooks []def.Webhook, caBundle func() []byte,
	changed notifier, onWanted func(), log *zap.Logger) *registrar {
	return &registrar{kube: kube, cfg: cfg, webhooks: webhooks, caBundle: caBundle, log: log,
		changed: changed, onWanted: onWanted, wanted: map[string]bool{}}
}

// poke asks for a reconcile soon; it never blocks.
func (r *registrar) poke() { r.changed.notify() }

func (r *registrar) want(name string) {
	r.mu.Lock()
	r.wanted[name] = true
	r.mu.Unlock()
	r.onWanted()
	r.poke()
}

// busy: an entry is wanted, or one this replica applied is still registered.
func (r *registrar) busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.wanted {
		if w {
			return true
		}
	}
	return len(r.registered) > 0
}

// unwant drops an entry: the leader removes it.
func (r *registrar) unwant(name string) {
	r.mu.Lock()
	r.wanted[name] = false
	r.mu.Unlock()
	r.poke()
}

// watchScopes has the registrar apply an entry again whenever its scope's namespaces change.
func (r *registrar) watchScopes() {
	for _, w := range r.webhooks {
		if s := w.Registration().Scope; s != nil {
			s.OnChange(r.poke)
		}
	}
}

// watchWanted marks each entry wanted now (always mode, or an entry that is always wanted) or
// while its webhook wants it (lazy mode: the gate's terms). spawn runs the waiters for the
// component's lifetime.
func (r *registrar) watchWanted(spawn func(func(context.Context))) {
	for _, w := range r.webhooks {
		reg := w.Registration()
		if reg.Wanted == nil || r.cfg.Register == configdef.RegisterAlways {
			r.want(w.Name())
			continue
		}
		name, want := w.Name(), reg.Wanted
		spawn(func(ctx context.Context) {
			for {
				unwanted, ok := want.Await(ctx)
				if !ok {
					return
				}
				r.log.Info("webhook asks for registration", zap.String("webhook", name))
				r.want(name)
				select {
				case <-unwanted:
					r.log.Info("webhook no longer wants its registration", zap.String("webhook", name))
					r.unwant(name)
				case <-ctx.Done():
					return
				}
			}
		})
	}
}

// run applies the wanted entries now, and again whenever one becomes wanted or the CA
// changes. Only the leader runs it: ctx is a leadership term. Failures are retried with
// backoff; it returns when ctx is done.
func (r *registrar) run(ctx context.Context) {
	r.poke()
	defer func() {
		// What this replica applied is no longer its to report once the term ends.
		r.mu.Lock()
		r.registered = nil
		r.mu.Unlock()
		for _, w := range r.webhooks {
			if s := w.Registration().Scope; s != nil {
				s.Applied(nil)
			}
		}
	}()
	newBackoff := func() wait.Backoff {
		return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Cap: 30 * time.Second, Steps: 1 << 30}
	}
	backoff := newBackoff()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.changed:
		}
		for {
			err := r.reconcile(ctx)
			if err == nil {
				backoff = newBackoff()
				break
			}
			delay := backoff.Step()
			r.log.Warn("webhook registration failed; retrying", zap.Error(err), zap.Duration("in", delay))
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}
}

func (r *registrar) reconcile(ctx context.Context) error {
	r.mu.Lock()
	var names []string
	for _, w := range r.webhooks {
		if r.wanted[w.Name()] {
			names = append(names, w.Name())
		}
	}
	applied := len(r.registered) > 0
	r.mu.Unlock()
	if len(names) == 0 && !applied {
		return nil
	}
	if len(names) > 0 && len(r.caBundle()) == 0 {
		// An entry without the CA would make every call fail TLS verification. The first
		// certificate pokes the registrar again.
		r.log.Debug("registration waits for the first serving certificate")
		return nil
	}
	desired := make([]admissionregistrationv1.MutatingWebhook, 0, len(names))
	scoped := map[*def.NamespaceScope]def.ScopeEntry{} // what each scoped entry covers once applied
	var entries []string                               // the entries applied
	for _, w := range r.webhooks {
		if !slices.Contains(names, w.Name()) {
			continue
		}
		var scope def.ScopeEntry
		if s := w.Registration().Scope; s != nil {
			scope = s.Entry()
			if r.noConditions {
				scope.Workloads, scope.Conditions = nil, nil
			}
			scoped[s] = scope
			if len(scope.Namespaces) == 0 {
				continue // no namespace to cover: no entry (an empty In is not a selector)
			}
		}
		desired = append(desired, r.entry(w, scope))
		entries = append(entries, w.Name())
	}
	owners, err := r.owners(ctx)
	if err != nil {
		return err
	}
	configs := r.kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cur, err := configs.Get(ctx, r.cfg.WebhookName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && len(desired) == 0:
		err = nil // nothing to register, nothing registered
	case apierrors.IsNotFound(err):
		_, err = configs.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: r.cfg.WebhookName, Labels: map[string]string{"app.kubernetes.io/managed-by": "lazyscale"},
				OwnerReferences: owners},
			Webhooks: desired,
		}, metav1.CreateOptions{})
	case err == nil:
		next := cur.DeepCopy()
		if len(owners) > 0 {
			next.OwnerReferences = append(slices.DeleteFunc(next.OwnerReferences, func(o metav1.OwnerReference) bool {
				return o.Kind == "ClusterRole" && o.APIVersion == "rbac.authorization.k8s.io/v1"
			}), owners...)
		}
		next.Webhooks = slices.DeleteFunc(next.Webhooks, func(e admissionregistrationv1.MutatingWebhook) bool {
			return slices.ContainsFunc(r.webhooks, func(w def.Webhook) bool { return w.Name()+entrySuffix == e.Name })
		})
		next.Webhooks = append(next.Webhooks, desired...)
		if !equality.Semantic.DeepEqual(cur, next) {
			_, err = configs.Update(ctx, next, metav1.UpdateOptions{})
		}
	}
	if apierrors.IsInvalid(err) && strings.Contains(err.Error(), "matchConditions") && !r.noConditions && slices.ContainsFunc(desired, func(e admissionregistrationv1.MutatingWebhook) bool {
		return len(e.MatchConditions) > 0
	}) {
		// Better every pod of the namespaces than no entry: a rollout waits for its entry.
		r.log.Warn("the apiserver refused the webhook entry's match conditions; covering whole namespaces instead (admission.scope namespaces)",
			zap.String("configuration", r.cfg.WebhookName), zap.Error(err))
		r.noConditions = true
		return r.reconcile(ctx)
	}
	if err != nil {
		return fmt.Errorf("apply MutatingWebhookConfiguration %s: %w", r.cfg.WebhookName, err)
	}
	for s, e := range scoped {
		if len(e.Namespaces) == 0 {
			s.Applied(nil)
			continue
		}
		s.Applied(&e)
	}
	r.mu.Lock()
	changed := !slices.Equal(r.registered, entries)
	r.registered = entries
	r.mu.Unlock()
	if changed {
		r.log.Info("webhooks registered", zap.String("configuration", r.cfg.WebhookName), zap.Strings("webhooks", entries))
	}
	return nil
}

// owners is the owner reference to admission.webhook_owner's ClusterRole, none when unset.
func (r *registrar) owners(ctx context.Context) ([]metav1.OwnerReference, error) {
	if r.cfg.WebhookOwner == "" {
		return nil, nil
	}
	role, err := r.kube.RbacV1().ClusterRoles().Get(ctx, r.cfg.WebhookOwner, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("admission.webhook_owner: read ClusterRole %s: %w", r.cfg.WebhookOwner, err)
	}
	return []metav1.OwnerReference{{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: role.Name, UID: role.UID}}, nil
}

func (r *registrar) isRegistered(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.registered, name)
}

// entry is the webhook's entry; scope, when not empty, is the only namespaces (and workloads)
// it covers.
func (r *registrar) entry(w def.Webhook, scope def.ScopeEntry) admissionregistrationv1.MutatingWebhook {
	reg := w.Registration()
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: r.caBundle()}
	if r.cfg.URL != "" {
		u := r.cfg.URL + w.Path()
		cc.URL = &u
	} else {
		path, port := w.Path(), int32(r.cfg.ServicePort)
		cc.Service = &admissionregistrationv1.ServiceReference{Namespace: r.cfg.ServiceNamespace, Name: r.cfg.ServiceName, Path: &path, Port: &port}
	}
	timeout := int32(r.cfg.TimeoutSeconds)
	if reg.TimeoutSeconds != 0 {
		timeout = reg.TimeoutSeconds
	}
	failure := admissionregistrationv1.FailurePolicyType(r.cfg.FailurePolicy)
	sideEffects := admissionregistrationv1.SideEffectClassNone
	reinvoke := admissionregistrationv1.IfNeededReinvocationPolicy
	match := admissionregistrationv1.Equivalent
	// Never intercept the control plane's own namespace nor lazyscale's: a broken webhook there
	// could keep lazyscale itself from starting.
	nsSel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
		Values: def.SkippedNamespaces(r.cfg.ServiceNamespace),
	}}}
	if len(scope.Namespaces) > 0 {
		nsSel.MatchExpressions = append(nsSel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: scope.Namespaces,
		})
	}
	conditions := slices.Concat(reg.MatchConditions, scope.Conditions)
	if len(conditions) == 0 {
		conditions = nil // the apiserver stores none as absent: equal, no rewrite
	}
	if reg.NamespaceSelector != nil {
		nsSel.MatchLabels = reg.NamespaceSelector.MatchLabels
		nsSel.MatchExpressions = append(nsSel.MatchExpressions, reg.NamespaceSelector.MatchExpressions...)
	}
	return admissionregistrationv1.MutatingWebhook{
		Name:                    w.Name() + entrySuffix,
		ClientConfig:            cc,
		Rules:                   reg.Rules,
		FailurePolicy:           &failure,
		MatchPolicy:             &match,
		NamespaceSelector:       nsSel,
		ObjectSelector:          reg.ObjectSelector,
		SideEffects:             &sideEffects,
		TimeoutSeconds:          &timeout,
		AdmissionReviewVersions: []string{"v1"},
		ReinvocationPolicy:      &reinvoke,
		MatchConditions:         conditions,
	}
}
