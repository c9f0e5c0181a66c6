package impl

import (
	"fmt"
	"sync"

	"k8s.io/client-go/tools/cache"

	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// podStore is the reflector's store: it hands each slim entity to workloadmeta and keeps
// nothing itself. A namespace's store replaces only that namespace's pods after a list.
type podStore struct {
	wm        wmdef.Component
	namespace string // "" for the whole cluster
	onSynced  func()
	synced    sync.Once
}

var _ cache.ReflectorStore = (*podStore)(nil)

func asPod(obj any) (*podObject, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*podObject)
	if !ok || p.entity == nil {
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
	s.wm.Set(p.entity)
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
		entities = append(entities, p.entity)
		items[i] = nil // the store owns the list: let each wrapper go
	}
	if s.namespace == "" {
		s.wm.Reset(wmdef.KindPod, entities)
	} else {
		ns := s.namespace
		s.wm.ResetWhere(wmdef.KindPod, func(e wmdef.Entity) bool { return e.(*wmdef.Pod).Namespace == ns }, entities)
	}
	s.synced.Do(s.onSynced)
	return nil
}

func (s *podStore) Resync() error { return nil }
