// Package timeline keeps, per DPA, what its recommendations and replicas were over the last
// hours, for the status page's charts. It lives in memory on the leader (the controller records
// a point after each reconcile) and is bounded: at most Points points per DPA, one per step of
// window/Points, the last value of a step kept.
package timeline

import (
	"sync"
	"time"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// Points is how many points a DPA keeps at most: a window of 6 hours is one point every
// 2 minutes. A point is held in 32 bytes: 5,760 bytes per DPA.
const Points = 180

// Point is a DPA's state at one time.
type Point = def.TimelinePoint

// Timeline holds the points of every DPA. Use New; a nil Timeline keeps nothing.
type Timeline struct {
	step, window time.Duration

	mu     sync.Mutex
	series map[string]*ring
}

// ring is one DPA's points, oldest first from start.
type ring struct {
	points []stored
	start  int
}

// stored is a Point as the ring holds it: the time in Unix nanoseconds (32 bytes, not 48).
type stored struct {
	at                               int64
	currentReplicas, desiredReplicas int32
	cpuMilli, memoryBytes            int64
}

func store(p Point) stored {
	return stored{at: p.At.UnixNano(), currentReplicas: p.CurrentReplicas, desiredReplicas: p.DesiredReplicas, cpuMilli: p.CPUMilli, memoryBytes: p.MemoryBytes}
}

func (s stored) point() Point {
	return Point{At: time.Unix(0, s.at), CurrentReplicas: s.currentReplicas, DesiredReplicas: s.desiredReplicas, CPUMilli: s.cpuMilli, MemoryBytes: s.memoryBytes}
}

// New keeps window of history per DPA; a window of 0 keeps nothing (Record does nothing).
func New(window time.Duration) *Timeline {
	return &Timeline{window: window, step: window / Points, series: map[string]*ring{}}
}

// Record adds p for key. A point in the same step as the last one replaces it, so a DPA
// reconciled often holds one point per step; a point older than the last is ignored.
func (t *Timeline) Record(key string, p Point) {
	if t == nil || t.step <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.series[key]
	if r == nil {
		// The whole ring at once: a DPA costs its 5,760 bytes from its first reconcile,
		// not a little more each step for hours (at one reconcile per resync the ring
		// fills in 15 hours). The agent's memory at minute one is then what it is at hour
		// fifteen, which is what a memory limit is sized by, and a soak sees no slope.
		r = &ring{points: make([]stored, 0, Points)}
		t.series[key] = r
	}
	sp, step := store(p), int64(t.step)
	if n := len(r.points); n > 0 {
		last := &r.points[(r.start+n-1)%n]
		if sp.at < last.at {
			return
		}
		if sp.at/step == last.at/step {
			*last = sp
			return
		}
	}
	if len(r.points) < Points {
		// Still filling: start is 0 until the ring is full.
		r.points = append(r.points, sp)
		return
	}
	r.points[r.start] = sp
	r.start = (r.start + 1) % Points
}

// Get returns key's points within the window before now, oldest first.
func (t *Timeline) Get(key string, now time.Time) []Point {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.series[key]
	if r == nil {
		return nil
	}
	from := now.Add(-t.window).UnixNano()
	out := make([]Point, 0, len(r.points))
	for i := range r.points {
		if sp := r.points[(r.start+i)%len(r.points)]; sp.at >= from {
			out = append(out, sp.point())
		}
	}
	return out
}

// Forget drops key's points (its DPA was deleted).
func (t *Timeline) Forget(key string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.series, key)
	t.mu.Unlock()
}

// Len is how many DPAs have points.
func (t *Timeline) Len() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.series)
}
