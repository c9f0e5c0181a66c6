package impl

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// podStore is the reflector's store: it turns each pod into a slim entity and hands it to
// workloadmeta. It keeps nothing itself; the reflector's pods become garbage right away.
type podStore struct {
	wm       wmdef.Component
	onSynced func()
	synced   sync.Once
}

var _ cache.ReflectorStore = (*podStore)(nil)

func asPod(obj any) (*corev1.Pod, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T in pod collector", obj)
	}
	return p, nil
}

func (s *podStore) Add(obj any) error { return s.Update(obj) }

func (s *podStore) Update(obj any) error {
	p, err := asPod(obj)
	if err != nil {
		return err
	}
	s.wm.Set(podEntity(p))
	return nil
}

func (s *podStore) Delete(obj any) error {
	p, err := asPod(obj)
	if err != nil {
		return err
	}
	s.wm.Unset(wmdef.EntityID{Kind: wmdef.KindPod, ID: string(p.UID)})
	return nil
}

// Replace is called after every (re)list with the complete set of pods.
func (s *podStore) Replace(items []any, _ string) error {
	entities := make([]wmdef.Entity, 0, len(items))
	for i, obj := range items {
		p, err := asPod(obj)
		if err != nil {
			return err
		}
		entities = append(entities, podEntity(p))
		items[i] = nil // the store owns the list: let each pod go as soon as it is converted
	}
	s.wm.Reset(wmdef.KindPod, entities)
	s.synced.Do(s.onSynced)
	return nil
}

func (s *podStore) Resync() error { return nil }
