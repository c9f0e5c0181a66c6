// Package def defines workloadmeta: lazyscale's store of slim entities (pods today) that
// collectors fill and the autoscaling stack reads and subscribes to.
//
// The store never holds API objects. A pod is reduced to the few fields autoscaling needs
// (see Pod), which is what makes a store of every pod in a 50,000-pod cluster affordable.
package def

import "context"

// Kind is the kind of an entity.
type Kind string

// KindPod is the kind of Pod entities.
const KindPod Kind = "pod"

// EntityID identifies an entity. For pods, ID is the pod UID: a pod re-created under the same
// name is a different entity.
type EntityID struct {
	Kind Kind
	ID   string
}

// Entity is anything the store holds. Entities are immutable once given to the store: the
// store and every reader share them, so a collector builds a new one for each change.
type Entity interface {
	GetID() EntityID
}

// EventType is Set (added or changed) or Unset (removed).
type EventType int

// Event types.
const (
	EventTypeSet EventType = iota + 1
	EventTypeUnset
)

func (t EventType) String() string {
	switch t {
	case EventTypeSet:
		return "set"
	case EventTypeUnset:
		return "unset"
	}
	return "unknown"
}

// Event is one change. For Unset, Entity is the last known state.
type Event struct {
	Type   EventType
	Entity Entity
}

// EventBundle is the events of one store change, delivered together in order.
type EventBundle struct {
	Events []Event
	// Relist marks the bundle of a Reset: its Set events are what exists (pods a collector
	// listed, possibly for the first time), not entities that just appeared.
	Relist bool
}

// Filter selects the events a subscriber receives. Zero values match everything.
type Filter struct {
	Kinds []Kind
	// EventType, when non-zero, keeps only that type.
	EventType EventType
}

// Subscription delivers event bundles in order, never dropping one. The first bundle holds a
// Set event for every entity already in the store that matches the filter (it may be empty).
type Subscription interface {
	// Events is closed after Unsubscribe or when the store stops.
	Events() <-chan EventBundle
	// Unsubscribe stops delivery and waits for the delivering goroutine. Idempotent.
	Unsubscribe()
}

// CollectionState is the state of one kind's collection, as shown on /status.
type CollectionState string

// Collection states.
const (
	// StateOff: the collection is disabled and will never run.
	StateOff CollectionState = "off"
	// StateDormant: deferred behind the autoscaling gate; nothing listed or watched.
	StateDormant CollectionState = "dormant"
	// StateEager: started at startup (eager mode), initial sync in progress.
	StateEager CollectionState = "eager"
	// StateSyncing: started after the gate opened, initial sync in progress.
	StateSyncing CollectionState = "syncing"
	// StateSynced: initial sync done; the store follows the cluster.
	StateSynced CollectionState = "synced"
	// StateStandby: the gate is open but this replica is not the leader: it holds no pods
	// (its webhook patches from the DPA status alone) and collects them if it becomes leader.
	StateStandby CollectionState = "standby"
)

// Component is the entity store. All methods are safe for concurrent use and do not block on
// subscribers.
type Component interface {
	// Set adds or replaces entities and notifies subscribers in one bundle.
	Set(entities ...Entity)
	// Unset removes entities by ID; unknown IDs are ignored.
	Unset(ids ...EntityID)
	// Reset makes entities the complete set of their kind: missing ones are unset, the others
	// set. It is what a collector calls after a (re)list.
	Reset(kind Kind, entities []Entity)
	// ResetWhere is Reset for the part of a kind that in selects (one namespace's pods):
	// entities of the kind that in selects and that are not in entities are unset. A nil or
	// empty entities drops that part.
	ResetWhere(kind Kind, in func(Entity) bool, entities []Entity)
	// Get returns an entity by ID.
	Get(id EntityID) (Entity, bool)
	// List returns the entities of a kind, in no particular order.
	List(kind Kind) []Entity
	// Count returns the number of entities of a kind.
	Count(kind Kind) int
	// Subscribe starts a subscription; name identifies it in logs.
	Subscribe(name string, filter Filter) Subscription
	// SetCollectionState records the state of a kind's collection (logged and exported).
	SetCollectionState(kind Kind, state CollectionState)
	// CollectionState returns the state of a kind's collection ("" if none was set).
	CollectionState(kind Kind) CollectionState
	// WaitForCollectionState blocks until the kind's collection is in state or ctx is done.
	WaitForCollectionState(ctx context.Context, kind Kind, state CollectionState) bool
	// SetSynced records where a kind's entities are complete and followed: the whole cluster,
	// or some namespaces. The collector calls it as its scope changes.
	SetSynced(kind Kind, scope SyncScope)
	// Synced reports whether the kind's entities of a namespace are complete in the store:
	// readers that decide from "every pod of X" wait for it.
	Synced(kind Kind, namespace string) bool
}

// SyncScope is where a kind's entities are complete in the store.
type SyncScope struct {
	ClusterWide bool
	Namespaces  map[string]bool
}

// Has reports whether the scope covers the namespace.
func (s SyncScope) Has(namespace string) bool { return s.ClusterWide || s.Namespaces[namespace] }
