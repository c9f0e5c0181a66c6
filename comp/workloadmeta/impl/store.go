// Package impl implements the workloadmeta entity store.
package impl

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// Requires is what the store needs.
type Requires struct {
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Provides is what the store gives. Stop ends every subscription; it is idempotent.
type Provides struct {
	Comp def.Component
	Stop func(context.Context) error
}

type store struct {
	log *zap.Logger

	mu       sync.RWMutex
	entities map[def.Kind]map[string]def.Entity
	subs     map[*subscription]struct{}
	states   map[def.Kind]def.CollectionState
	synced   map[def.Kind]def.SyncScope
	changed  chan struct{} // closed and replaced on every state change
	stopped  bool

	stateGauge *prometheus.GaugeVec
}

var _ def.Component = (*store)(nil)

// kinds are the entity kinds the store exports metrics for.
var kinds = []def.Kind{def.KindPod}

var states = []def.CollectionState{def.StateOff, def.StateDormant, def.StateStandby, def.StateEager, def.StateSyncing, def.StateSynced}

// NewComponent builds an empty store and registers its metrics.
func NewComponent(reqs Requires) (Provides, error) {
	s := &store{
		log:      reqs.Logger.Named("workloadmeta"),
		entities: map[def.Kind]map[string]def.Entity{},
		subs:     map[*subscription]struct{}{},
		states:   map[def.Kind]def.CollectionState{},
		synced:   map[def.Kind]def.SyncScope{},
		changed:  make(chan struct{}),
		stateGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lazyscale_workloadmeta_collection_state",
			Help: "1 for the current state of each kind's collection, 0 for the others.",
		}, []string{"kind", "state"}),
	}
	if err := reqs.Registerer.Register(s.stateGauge); err != nil {
		return Provides{}, err
	}
	for _, k := range kinds {
		gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "lazyscale_workloadmeta_entities",
			Help:        "Number of entities in workloadmeta, by kind.",
			ConstLabels: prometheus.Labels{"kind": string(k)},
		}, func() float64 { return float64(s.Count(k)) })
		if err := reqs.Registerer.Register(gauge); err != nil {
			return Provides{}, err
		}
	}
	return Provides{Comp: s, Stop: s.stop}, nil
}

func (s *store) Set(entities ...def.Entity) {
	if len(entities) == 0 {
		return
	}
	events := make([]def.Event, 0, len(entities))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entities {
		id := e.GetID()
		s.kindMap(id.Kind)[id.ID] = e
		events = append(events, def.Event{Type: def.EventTypeSet, Entity: e})
	}
	s.notifyLocked(events, false)
}

func (s *store) Unset(ids ...def.EntityID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var events []def.Event
	for _, id := range ids {
		m := s.entities[id.Kind]
		if e, ok := m[id.ID]; ok {
			delete(m, id.ID)
			events = append(events, def.Event{Type: def.EventTypeUnset, Entity: e})
		}
	}
	s.notifyLocked(events, false)
}

func (s *store) Reset(kind def.Kind, entities []def.Entity) {
	s.ResetWhere(kind, nil, entities)
}

func (s *store) ResetWhere(kind def.Kind, in func(def.Entity) bool, entities []def.Entity) {
	next := make(map[string]def.Entity, len(entities))
	events := make([]def.Event, 0, len(entities))
	for _, e := range entities {
		next[e.GetID().ID] = e
		events = append(events, def.Event{Type: def.EventTypeSet, Entity: e})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.kindMap(kind)
	if in == nil {
		for id, e := range m {
			if _, ok := next[id]; !ok {
				events = append(events, def.Event{Type: def.EventTypeUnset, Entity: e})
			}
		}
		s.entities[kind] = next
	} else {
		for id, e := range m {
			if _, ok := next[id]; !ok && in(e) {
				events = append(events, def.Event{Type: def.EventTypeUnset, Entity: e})
				delete(m, id)
			}
		}
		for id, e := range next {
			m[id] = e
		}
	}
	s.notifyLocked(events, true)
}

func (s *store) Get(id def.EntityID) (def.Entity, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entities[id.Kind][id.ID]
	return e, ok
}

func (s *store) List(kind def.Kind) []def.Entity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]def.Entity, 0, len(s.entities[kind]))
	for _, e := range s.entities[kind] {
		out = append(out, e)
	}
	return out
}

func (s *store) Count(kind def.Kind) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entities[kind])
}

func (s *store) SetCollectionState(kind def.Kind, state def.CollectionState) {
	s.mu.Lock()
	prev := s.states[kind]
	if prev == state {
		s.mu.Unlock()
		return
	}
	s.states[kind] = state
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	for _, st := range states {
		v := 0.0
		if st == state {
			v = 1
		}
		s.stateGauge.WithLabelValues(string(kind), string(st)).Set(v)
	}
	s.log.Info("collection state changed", zap.String("kind", string(kind)),
		zap.String("from", string(prev)), zap.String("to", string(state)))
}

func (s *store) CollectionState(kind def.Kind) def.CollectionState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.states[kind]
}

func (s *store) WaitForCollectionState(ctx context.Context, kind def.Kind, state def.CollectionState) bool {
	for {
		s.mu.RLock()
		cur, changed := s.states[kind], s.changed
		s.mu.RUnlock()
		if cur == state {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

func (s *store) SetSynced(kind def.Kind, scope def.SyncScope) {
	s.mu.Lock()
	s.synced[kind] = scope
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *store) Synced(kind def.Kind, namespace string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.synced[kind].Has(namespace)
}

func (s *store) kindMap(k def.Kind) map[string]def.Entity {
	m, ok := s.entities[k]
	if !ok {
		m = map[string]def.Entity{}
		s.entities[k] = m
	}
	return m
}

// notifyLocked queues events for every subscriber; it never blocks on a subscriber.
func (s *store) notifyLocked(events []def.Event, relist bool) {
	if len(events) == 0 {
		return
	}
	for sub := range s.subs {
		if b, ok := sub.filter.apply(events); ok {
			b.Relist = relist
			sub.enqueue(b)
		}
	}
}

func (s *store) Subscribe(name string, filter def.Filter) def.Subscription {
	sub := newSubscription(name, matcher(filter), s.remove)
	s.mu.Lock()
	var initial []def.Event
	for kind, m := range s.entities {
		if !sub.filter.kind(kind) || (filter.EventType != 0 && filter.EventType != def.EventTypeSet) {
			continue
		}
		for _, e := range m {
			initial = append(initial, def.Event{Type: def.EventTypeSet, Entity: e})
		}
	}
	sub.enqueue(def.EventBundle{Events: initial})
	if s.stopped {
		s.mu.Unlock()
		sub.Unsubscribe()
		return sub
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	sub.start()
	return sub
}

func (s *store) remove(sub *subscription) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

func (s *store) stop(context.Context) error {
	s.mu.Lock()
	s.stopped = true
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.Unsubscribe()
	}
	return nil
}

type matcher def.Filter

func (m matcher) kind(k def.Kind) bool { return len(m.Kinds) == 0 || slices.Contains(m.Kinds, k) }

func (m matcher) apply(events []def.Event) (def.EventBundle, bool) {
	out := make([]def.Event, 0, len(events))
	for _, e := range events {
		if m.kind(e.Entity.GetID().Kind) && (m.EventType == 0 || m.EventType == e.Type) {
			out = append(out, e)
		}
	}
	return def.EventBundle{Events: out}, len(out) > 0
}
