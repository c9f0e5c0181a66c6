// Package impl implements the autoscaling admission webhook.
package impl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
)

// patcherBox lets atomic.Pointer hold an interface value.
type patcherBox struct{ p def.PodPatcher }

// webhook is both the admission plugin and the component that receives the patcher.
type webhook struct {
	log     *zap.Logger
	patcher atomic.Pointer[patcherBox]
	wanted  admissiondef.Want
	scope   *admissiondef.NamespaceScope // nil: cluster-wide
}

var (
	_ def.Component        = (*webhook)(nil)
	_ admissiondef.Webhook = (*webhook)(nil)
)

// newWebhook builds the webhook; wanted says when its entry should be registered; scope, when
// not nil, limits the entry to its namespaces.
func newWebhook(log *zap.Logger, wanted admissiondef.Want, scope *admissiondef.NamespaceScope) *webhook {
	return &webhook{log: log, wanted: wanted, scope: scope}
}

func (w *webhook) Scope() *admissiondef.NamespaceScope { return w.scope }

func (w *webhook) Name() string { return "autoscaling" }
func (w *webhook) Path() string { return "/autoscaling" }

func (w *webhook) Registration() admissiondef.Registration {
	return admissiondef.Registration{
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				Scope: ptr(admissionregistrationv1.NamespacedScope),
			},
		}},
		Wanted: w.wanted,
		Scope:  w.scope,
	}
}

func (w *webhook) SetPatcher(p def.PodPatcher) {
	if p == nil {
		w.patcher.Store(nil)
		w.log.Info("pod patcher removed")
		return
	}
	w.patcher.Store(&patcherBox{p: p})
	w.log.Info("pod patcher installed")
}

func (w *webhook) PatcherInstalled() bool { return w.patcher.Load() != nil }

// Handle is the hot path. Without a patcher it answers at once: the body is not decoded.
func (w *webhook) Handle(_ context.Context, uid types.UID, body []byte) admissiondef.Response {
	box := w.patcher.Load()
	if box == nil {
		return admissiondef.Response{Allowed: true, Outcome: "skipped"}
	}
	resp, err := w.patch(box.p, body)
	if err != nil {
		// Never block a pod creation because of lazyscale: admit it unchanged, and say why.
		w.log.Warn("pod admitted unchanged", zap.String("uid", string(uid)), zap.Error(err))
		return admissiondef.Response{Allowed: true, Outcome: "error", Warnings: []string{"lazyscale autoscaling webhook: " + err.Error()}}
	}
	return resp
}

// podReview is the part of an AdmissionReview the patching path reads. The pod is decoded in
// the same pass as the envelope: going through a RawExtension scans and copies its bytes once
// more, a third of the decode of a realistic pod.
type podReview struct {
	Request *struct {
		Kind      metav1.GroupVersionKind `json:"kind"`
		Namespace string                  `json:"namespace"`
		Operation admissionv1.Operation   `json:"operation"`
		Object    corev1.Pod              `json:"object"`
	} `json:"request"`
}

// kindReview reads only what an ignored review needs: what it was about.
type kindReview struct {
	Request *struct {
		Kind      metav1.GroupVersionKind `json:"kind"`
		Operation admissionv1.Operation   `json:"operation"`
	} `json:"request"`
}

func (w *webhook) patch(p def.PodPatcher, body []byte) (admissiondef.Response, error) {
	var review podReview
	decodeErr := json.Unmarshal(body, &review)
	if decodeErr != nil || review.Request == nil || !isPodCreate(review.Request.Kind, review.Request.Operation) {
		// Not a pod creation, or a pod that does not decode: tell the two apart.
		var k kindReview
		if err := json.Unmarshal(body, &k); err != nil {
			return admissiondef.Response{}, fmt.Errorf("decode review: %w", err)
		}
		if k.Request == nil {
			return admissiondef.Response{}, errors.New("decode review: no request")
		}
		if !isPodCreate(k.Request.Kind, k.Request.Operation) {
			return admissiondef.Response{Allowed: true, Outcome: "unchanged", Warnings: []string{
				fmt.Sprintf("lazyscale autoscaling webhook: ignored %s of %s", k.Request.Operation, k.Request.Kind.Kind)}}, nil
		}
		return admissiondef.Response{}, fmt.Errorf("decode pod: %w", decodeErr)
	}
	pod := &review.Request.Object
	if pod.Namespace == "" {
		pod.Namespace = review.Request.Namespace
	}
	original := pod.DeepCopy()
	changed, err := p.PatchPod(pod)
	if err != nil {
		return admissiondef.Response{}, fmt.Errorf("patch pod: %w", err)
	}
	if !changed {
		return admissiondef.Response{Allowed: true, Outcome: "unchanged"}, nil
	}
	patch, err := podPatch(original, pod)
	if err != nil {
		return admissiondef.Response{}, err
	}
	if patch == nil {
		return admissiondef.Response{Allowed: true, Outcome: "unchanged"}, nil
	}
	return admissiondef.Response{Allowed: true, Patch: patch, Outcome: "patched"}, nil
}

func isPodCreate(kind metav1.GroupVersionKind, op admissionv1.Operation) bool {
	return kind.Group == "" && kind.Kind == "Pod" && op == admissionv1.Create
}

// podPatch returns the JSON patch from before to after. The patch is the difference between
// the two pods encoded by the same Go types: fields this client does not know are in neither,
// so the patch never touches them, and applying it to the apiserver's object keeps them.
//
// Patchers change labels, annotations and container resources. When nothing else changed,
// only that part of the pod is encoded and diffed, with the same paths as in the whole pod:
// a pod with its defaults and managedFields is several KB, and diffing it whole was half the
// webhook's CPU under load. Anything else changed: the whole pod is diffed.
func podPatch(before, after *corev1.Pod) ([]byte, error) {
	var a, b any = before, after
	if sameOutsideView(before, after) {
		a, b = newPodView(before), newPodView(after)
	}
	beforeJSON, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	afterJSON, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode patched pod: %w", err)
	}
	return jsonPatch(beforeJSON, afterJSON)
}

// jsonPatch returns the RFC 6902 patch from before to after, nil when they are equal.
func jsonPatch(before, after []byte) ([]byte, error) {
	ops, err := jsonpatch.CreatePatch(before, after)
	if err != nil {
		return nil, fmt.Errorf("compute JSON patch: %w", err)
	}
	if len(ops) == 0 {
		return nil, nil
	}
	// The library walks maps: order its operations by path so that one change always gives
	// one patch (the operations of a diff touch disjoint paths, so order does not matter to
	// the result).
	slices.SortStableFunc(ops, func(a, b jsonpatch.Operation) int { return strings.Compare(a.Path, b.Path) })
	out, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode JSON patch: %w", err)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
