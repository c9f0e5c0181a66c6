package impl

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// podObject is what the pod reflector carries instead of a *corev1.Pod: the slim entity, plus
// the identity and resourceVersion the reflector itself reads. A corev1.Pod struct is 1.2 KB
// before any of its data, and 400 bytes more per container; the reflector's list holds every
// item twice while it aggregates pages, so carrying pods would cost more than storing them.
type podObject struct {
	metav1.TypeMeta
	// ObjectMeta holds only namespace, name, UID and resourceVersion (and, on bookmarks, the
	// annotations the reflector reads). Its strings are shared with the entity.
	metav1.ObjectMeta
	entity *wmdef.Pod
}

// DeepCopyObject implements runtime.Object. The entity is immutable, so it is shared.
func (p *podObject) DeepCopyObject() runtime.Object {
	c := *p
	c.ObjectMeta = *p.ObjectMeta.DeepCopy()
	return &c
}

// podObjectList is a LIST page of podObjects.
type podObjectList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []podObject
}

// DeepCopyObject implements runtime.Object.
func (l *podObjectList) DeepCopyObject() runtime.Object {
	c := &podObjectList{TypeMeta: l.TypeMeta, ListMeta: *l.ListMeta.DeepCopy(), Items: make([]podObject, len(l.Items))}
	for i := range l.Items {
		c.Items[i] = *l.Items[i].DeepCopyObject().(*podObject)
	}
	return c
}

// newPodObject converts a pod from the API into what the reflector carries.
func newPodObject(p *corev1.Pod) *podObject {
	e := podEntity(p)
	return &podObject{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name, UID: p.UID, ResourceVersion: p.ResourceVersion},
		entity:     e,
	}
}

// bookmarkObject keeps a bookmark's resourceVersion and annotations: the end of a streaming
// list is announced by the annotation k8s.io/initial-events-end.
func bookmarkObject(p *corev1.Pod) *podObject {
	return &podObject{ObjectMeta: metav1.ObjectMeta{ResourceVersion: p.ResourceVersion, Annotations: p.Annotations}}
}
