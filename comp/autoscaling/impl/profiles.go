package impl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// profileController turns cluster profiles into DPAs: every Deployment or StatefulSet
// labelled autoscaling.datadoghq.com/profile=<profile>, or in a namespace so labelled (the
// workload's own label wins; "excluded" opts out), gets a DPA named
// <workload>-<8 hex of sha256("apps/<Kind>/<namespace>/<name>")> whose spec is the profile's
// template. Generated DPAs carry the generated-from-profile label and the template hash;
// lazyscale updates them when the template changes and deletes them when the workload leaves
// the profile (label removed, excluded, workload or profile deleted).
//
// It runs on the leader as soon as the gate is open, without waiting for the pod collection:
// the labels it reads are what opened the gate, and the DPAs it writes are what the rest of
// the stack then works on. Its watches start with the leadership term and stop with it, so a
// follower keeps no workload cache; the workload and namespace watches start only once a
// profile (or a generated DPA) exists. They are metadata-only and trimmed to the fields read.
type profileController struct {
	log          *zap.Logger
	dyn          dynamic.Interface
	md           metadata.Interface
	dpas         cache.SharedIndexInformer // the gate's
	ownNamespace string
	workers      int
	now          func() time.Time
	generated    *prometheus.CounterVec

	// The term's informers and queue, set by runTerm.
	mu         sync.Mutex
	profiles   cache.SharedIndexInformer
	workloads  map[string]cache.SharedIndexInformer // by kind
	namespaces cache.SharedIndexInformer
	queue      workqueue.TypedRateLimitingInterface[string]
	// state is "" (not running here: gate closed or a follower), "waiting_for_profile" or
	// "running"; guarded by mu.
	state string
}

// profilesStatus is the profile controller's part of /status autoscaling.
type profilesStatus struct {
	State            string `json:"state"`
	WorkloadsWatched int    `json:"workloads_watched"`
}

func (p *profileController) status() profilesStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := profilesStatus{State: p.state}
	if st.State == "" {
		st.State = "idle"
	}
	if p.state == "running" {
		for _, inf := range p.workloads {
			st.WorkloadsWatched += len(inf.GetStore().ListKeys())
		}
	}
	return st
}

func (p *profileController) setState(s string) {
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
}

var (
	deploymentsGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	statefulSetsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	namespacesGVR   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	workloadKinds   = map[string]schema.GroupVersionResource{"Deployment": deploymentsGVR, "StatefulSet": statefulSetsGVR}
)

// Queue keys: "profile/<name>" or "<Kind>/<namespace>/<name>".
const profileKeyPrefix = "profile/"

// generatedDPAName is the name of the DPA generated for a workload.
func generatedDPAName(group, kind, namespace, name string) string {
	sum := sha256.Sum256([]byte(group + "/" + kind + "/" + namespace + "/" + name))
	suffix := hex.EncodeToString(sum[:])[:8]
	const maxName = 253
	if len(name) > maxName-9 {
		name = name[:maxName-9]
	}
	return name + "-" + suffix
}

// templateHash identifies a profile's template: 16 hex of the SHA-256 of its JSON.
func templateHash(t v1alpha2.DatadogPodAutoscalerTemplate) string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// trimMetadata keeps what the controller reads of a workload or namespace: its identity and
// its profile label. A cluster's workloads then cost a few hundred bytes each.
func trimMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, DeletionTimestamp: m.DeletionTimestamp}}
	if v, ok := m.Labels[v1alpha2.ProfileLabel]; ok {
		out.Labels = map[string]string{v1alpha2.ProfileLabel: v}
	}
	return out, nil
}

func metadataInformer(md metadata.Interface, gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	client := md.Resource(gvr)
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.Watch(ctx, o)
		},
	}, &metav1.PartialObjectMetadata{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = inf.SetTransform(trimMetadata)
	return inf
}

// runTerm runs the controller for one leadership term.
func (p *profileController) runTerm(ctx context.Context) {
	client := p.dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource)
	profiles := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.Watch(ctx, o)
		},
	}, &unstructured.Unstructured{}, 0, cache.Indexers{})
	var missingLogged bool
	_ = profiles.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		// Without the profile CRD no workload can use a profile; say so once, retry quietly.
		if apierrors.IsNotFound(err) {
			if !missingLogged {
				missingLogged = true
				p.log.Info("DatadogPodAutoscalerClusterProfile not served (CRD not installed?); retrying with backoff", zap.Error(err))
			}
			return
		}
		p.log.Warn("cluster profile watch failed; retrying with backoff", zap.Error(err))
	})
	workloads := map[string]cache.SharedIndexInformer{}
	for kind, gvr := range workloadKinds {
		workloads[kind] = metadataInformer(p.md, gvr)
	}
	namespaces := metadataInformer(p.md, namespacesGVR)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "clusterprofiles"})

	p.mu.Lock()
	p.profiles, p.workloads, p.namespaces, p.queue = profiles, workloads, namespaces, q
	p.state = "waiting_for_profile"
	p.mu.Unlock()
	defer p.setState("")

	// The workload and namespace watches start only once there is something to do: a profile,
	// or a generated DPA to keep or clean up. A cluster that uses DPAs made by hand only never
	// pays for them.
	needed := make(chan struct{})
	need := sync.OnceFunc(func() { close(needed) })
	_, _ = profiles.AddEventHandler(p.handler(func(old, m metav1.Object) {
		need()
		q.Add(profileKeyPrefix + m.GetName())
		// A status write (ours) leaves the generation: no workload to look at again.
		if old == nil || old.GetGeneration() != m.GetGeneration() {
			p.enqueueAllWorkloads() // its template or existence changed
		}
	}))
	for kind, inf := range workloads {
		_, _ = inf.AddEventHandler(p.handler(func(_, m metav1.Object) { q.Add(kind + "/" + m.GetNamespace() + "/" + m.GetName()) }))
	}
	_, _ = namespaces.AddEventHandler(p.handler(func(_, m metav1.Object) { p.enqueueNamespace(m.GetName()) }))
	reg, err := p.dpas.AddEventHandler(p.handler(func(_, m metav1.Object) {
		if profile := m.GetLabels()[v1alpha2.GeneratedFromProfileLabel]; profile != "" {
			need()
			q.Add(profileKeyPrefix + profile) // its count
		}
		// Its target: a generated DPA deleted by hand is recreated, and one made by hand
		// replaces the generated one.
		if u, ok := m.(*unstructured.Unstructured); ok {
			kind, name := targetRefOf(u)
			q.Add(kind + "/" + m.GetNamespace() + "/" + name)
		}
	}))
	if err != nil {
		p.log.Error("cannot follow DPAs; cluster profiles are not applied", zap.Error(err))
		return
	}
	defer func() { _ = p.dpas.RemoveEventHandler(reg) }()

	var wg sync.WaitGroup
	defer wg.Wait()
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { profiles.RunWithContext(termCtx) })
	select {
	case <-needed:
	case <-termCtx.Done():
		q.ShutDown()
		return
	}
	p.log.Info("cluster profiles in use: watching the metadata of Deployments, StatefulSets and Namespaces")
	for _, inf := range []cache.SharedIndexInformer{namespaces, workloads["Deployment"], workloads["StatefulSet"]} {
		wg.Go(func() { inf.RunWithContext(termCtx) })
	}
	synced := []cache.InformerSynced{profiles.HasSynced, namespaces.HasSynced, p.dpas.HasSynced}
	for _, inf := range workloads {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(termCtx.Done(), synced...) {
		q.ShutDown()
		return
	}
	p.setState("running")
	p.log.Info("cluster profile controller started")
	for range p.workers {
		wg.Go(func() {
			for p.processNext(termCtx, q) {
			}
		})
	}
	<-termCtx.Done()
	q.ShutDown()
	p.log.Info("cluster profile controller stopped")
}

// handler calls f with the object of every add, update and delete; old is the object an
// update replaced, nil for an add or a delete.
func (p *profileController) handler(f func(old, obj metav1.Object)) cache.ResourceEventHandler {
	accessor := func(obj any) metav1.Object {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil
		}
		return m
	}
	call := func(old, obj any) {
		m := accessor(obj)
		if m == nil {
			return
		}
		var o metav1.Object
		if old != nil {
			o = accessor(old)
		}
		f(o, m)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { call(nil, obj) },
		UpdateFunc: call,
		DeleteFunc: func(obj any) { call(nil, obj) },
	}
}

func (p *profileController) enqueueAllWorkloads() {
	for kind, inf := range p.workloads {
		for _, key := range inf.GetStore().ListKeys() {
			p.queue.Add(kind + "/" + key)
		}
	}
}

func (p *profileController) enqueueNamespace(ns string) {
	for kind, inf := range p.workloads {
		objs, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
		for _, o := range objs {
			if m, err := meta.Accessor(o); err == nil {
				p.queue.Add(kind + "/" + ns + "/" + m.GetName())
			}
		}
	}
}

func (p *profileController) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	var err error
	if name, ok := strings.CutPrefix(key, profileKeyPrefix); ok {
		err = p.syncProfile(ctx, name)
	} else {
		err = p.syncWorkload(ctx, key)
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("cluster profile sync failed; retrying", zap.String("key", key), zap.Error(err))
			q.AddRateLimited(key)
		}
		return true
	}
	q.Forget(key)
	return true
}

// profile returns the named profile, or nil when it does not exist.
func (p *profileController) profile(name string) (*v1alpha2.DatadogPodAutoscalerClusterProfile, error) {
	obj, ok, err := p.profiles.GetStore().GetByKey(name)
	if err != nil || !ok {
		return nil, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("profile %s: unexpected %T", name, obj)
	}
	prof := &v1alpha2.DatadogPodAutoscalerClusterProfile{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, prof); err != nil {
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	return prof, nil
}

// wantedProfile is the profile a workload opts into ("" for none): its own label, else its
// namespace's; "excluded" on the workload opts it out.
func (p *profileController) wantedProfile(kind, ns, name string) string {
	obj, ok, _ := p.workloads[kind].GetStore().GetByKey(ns + "/" + name)
	if !ok {
		return ""
	}
	w := obj.(*metav1.PartialObjectMetadata)
	if w.DeletionTimestamp != nil {
		return ""
	}
	if v, ok := w.Labels[v1alpha2.ProfileLabel]; ok {
		if v == v1alpha2.ProfileExcluded {
			return ""
		}
		return v
	}
	nsObj, ok, _ := p.namespaces.GetStore().GetByKey(ns)
	if !ok {
		return ""
	}
	if v := nsObj.(*metav1.PartialObjectMetadata).Labels[v1alpha2.ProfileLabel]; v != v1alpha2.ProfileExcluded {
		return v
	}
	return ""
}

// syncWorkload makes the workload's generated DPA match its profile, or deletes it.
func (p *profileController) syncWorkload(ctx context.Context, key string) error {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 || workloadKinds[parts[0]].Resource == "" {
		return nil
	}
	kind, ns, name := parts[0], parts[1], parts[2]
	dpaName := generatedDPAName("apps", kind, ns, name)
	client := p.dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns)
	var existing *unstructured.Unstructured
	if obj, ok, _ := p.dpas.GetStore().GetByKey(ns + "/" + dpaName); ok {
		existing, _ = obj.(*unstructured.Unstructured)
	}
	ours := existing != nil && existing.GetLabels()[v1alpha2.GeneratedFromProfileLabel] != ""

	wanted := p.wantedProfile(kind, ns, name)
	var prof *v1alpha2.DatadogPodAutoscalerClusterProfile
	if wanted != "" && ns != p.ownNamespace {
		var err error
		if prof, err = p.profile(wanted); err != nil {
			return err
		}
	}
	if prof != nil && p.targetedByOther(ns, kind, name) {
		prof = nil // a DPA made by hand autoscales the workload: it wins
	}
	if prof == nil {
		if !ours {
			return nil
		}
		err := client.Delete(ctx, dpaName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptrTo(existing.GetUID())}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete generated DPA %s/%s: %w", ns, dpaName, err)
		}
		p.generated.WithLabelValues("deleted").Inc()
		p.log.Info("generated DPA deleted: the workload left its profile or has a DPA made by hand", zap.String("dpa", ns+"/"+dpaName), zap.String("workload", key))
		return nil
	}
	if err := validateProfile(prof); err != nil {
		return nil // invalid: generated DPAs are left as they are (the profile's status says why)
	}
	if existing != nil && !ours {
		p.log.Warn("a DPA not generated by lazyscale has the generated name; leaving it", zap.String("dpa", ns+"/"+dpaName))
		return nil
	}
	obj, ok, _ := p.workloads[kind].GetStore().GetByKey(ns + "/" + name)
	if !ok {
		return nil
	}
	w := obj.(*metav1.PartialObjectMetadata)
	desired, err := generatedDPA(prof, kind, w, dpaName)
	if err != nil {
		return err
	}
	if existing == nil {
		if _, err := client.Create(ctx, desired, metav1.CreateOptions{FieldManager: "lazyscale"}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create generated DPA %s/%s: %w", ns, dpaName, err)
		}
		p.generated.WithLabelValues("created").Inc()
		p.log.Info("DPA generated from cluster profile", zap.String("dpa", ns+"/"+dpaName), zap.String("profile", prof.Name), zap.String("workload", key))
		return nil
	}
	if equality.Semantic.DeepEqual(existing.Object["spec"], desired.Object["spec"]) &&
		existing.GetLabels()[v1alpha2.GeneratedFromProfileLabel] == prof.Name &&
		existing.GetAnnotations()[v1alpha2.ProfileTemplateHashAnnotation] == desired.GetAnnotations()[v1alpha2.ProfileTemplateHashAnnotation] {
		return nil
	}
	updated := existing.DeepCopy()
	updated.Object["spec"] = desired.Object["spec"]
	labels := updated.GetLabels()
	labels[v1alpha2.GeneratedFromProfileLabel] = prof.Name
	updated.SetLabels(labels)
	ann := updated.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha2.ProfileTemplateHashAnnotation] = desired.GetAnnotations()[v1alpha2.ProfileTemplateHashAnnotation]
	updated.SetAnnotations(ann)
	updated.SetOwnerReferences(desired.GetOwnerReferences())
	if _, err := client.Update(ctx, updated, metav1.UpdateOptions{FieldManager: "lazyscale"}); err != nil {
		return fmt.Errorf("update generated DPA %s/%s: %w", ns, dpaName, err)
	}
	p.generated.WithLabelValues("updated").Inc()
	p.log.Info("generated DPA updated from its profile", zap.String("dpa", ns+"/"+dpaName), zap.String("profile", prof.Name))
	return nil
}

// targetedByOther reports whether a DPA not generated from a profile targets the workload.
func (p *profileController) targetedByOther(ns, kind, name string) bool {
	objs, _ := p.dpas.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok || u.GetLabels()[v1alpha2.GeneratedFromProfileLabel] != "" {
			continue
		}
		if k, n := targetRefOf(u); k == kind && n == name {
			return true
		}
	}
	return false
}

// targetRefOf reads an unstructured DPA's target kind and name.
func targetRefOf(u *unstructured.Unstructured) (kind, name string) {
	kind, _, _ = unstructured.NestedString(u.Object, "spec", "targetRef", "kind")
	name, _, _ = unstructured.NestedString(u.Object, "spec", "targetRef", "name")
	return kind, name
}

// generatedDPA builds the DPA a profile gives a workload.
func generatedDPA(prof *v1alpha2.DatadogPodAutoscalerClusterProfile, kind string, w *metav1.PartialObjectMetadata, name string) (*unstructured.Unstructured, error) {
	t := prof.Spec.Template.DeepCopy()
	dpa := &v1alpha2.DatadogPodAutoscaler{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha2.SchemeGroupVersion.String(), Kind: "DatadogPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.Namespace,
			Labels:          map[string]string{v1alpha2.GeneratedFromProfileLabel: prof.Name},
			Annotations:     map[string]string{v1alpha2.ProfileTemplateHashAnnotation: templateHash(prof.Spec.Template)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: w.Name, UID: w.UID}},
		},
		Spec: v1alpha2.DatadogPodAutoscalerSpec{
			TargetRef:   v1alpha2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: w.Name},
			Owner:       v1alpha2.DatadogPodAutoscalerLocalOwner,
			ApplyPolicy: t.ApplyPolicy, Objectives: t.Objectives, Fallback: t.Fallback, Constraints: t.Constraints, Options: t.Options,
		},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dpa)
	if err != nil {
		return nil, fmt.Errorf("encode generated DPA: %w", err)
	}
	u := &unstructured.Unstructured{Object: obj}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}

// validateProfile checks a profile's template as a DPA's spec would be checked.
func validateProfile(prof *v1alpha2.DatadogPodAutoscalerClusterProfile) error {
	t := prof.Spec.Template
	return validateBody(t.Constraints, t.Objectives)
}

// syncProfile writes the profile's status: Valid, templateHash, controlledAutoscalers.
func (p *profileController) syncProfile(ctx context.Context, name string) error {
	prof, err := p.profile(name)
	if err != nil || prof == nil {
		return err
	}
	st := prof.Status.DeepCopy()
	cond := metav1.Condition{Type: v1alpha2.ConditionValid, Status: metav1.ConditionTrue, Reason: "Valid",
		ObservedGeneration: prof.Generation, LastTransitionTime: metav1.NewTime(p.now().Truncate(time.Second))}
	if err := validateProfile(prof); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, reasonInvalidSpec, "template: "+err.Error()+"; generated DPAs are left unchanged"
	} else {
		st.TemplateHash = templateHash(prof.Spec.Template)
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	st.ControlledAutoscalers = 0
	for _, o := range p.dpas.GetStore().List() {
		if m, err := meta.Accessor(o); err == nil && m.GetLabels()[v1alpha2.GeneratedFromProfileLabel] == name {
			st.ControlledAutoscalers++
		}
	}
	if equality.Semantic.DeepEqual(*st, prof.Status) {
		return nil
	}
	prof.Status = *st
	err = updateStatus(ctx, p.dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource), prof, "DatadogPodAutoscalerClusterProfile")
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version (or the deletion) is on its way through the informer
	}
	if err != nil {
		return fmt.Errorf("write status of profile %s: %w", name, err)
	}
	return nil
}
