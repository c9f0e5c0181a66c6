package timeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimelineKeepsOnePointPerStepWithinTheWindow(t *testing.T) {
	tl := New(6 * time.Hour) // a step of 2 minutes
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)

	// Three reconciles within one step: the last one stands.
	for i, at := range []time.Duration{0, 30 * time.Second, 90 * time.Second} {
		tl.Record("ns/a", Point{At: t0.Add(at), CurrentReplicas: int32(i + 1)})
	}
	got := tl.Get("ns/a", t0.Add(2*time.Minute))
	require.Len(t, got, 1)
	assert.Equal(t, int32(3), got[0].CurrentReplicas)

	// A point older than the last is ignored.
	tl.Record("ns/a", Point{At: t0.Add(10 * time.Second), CurrentReplicas: 9})
	assert.Equal(t, int32(3), tl.Get("ns/a", t0)[0].CurrentReplicas)

	// Ten hours of points every minute: the ring holds Points, the oldest dropped, in order.
	for m := 2; m < 600; m++ {
		tl.Record("ns/a", Point{At: t0.Add(time.Duration(m) * time.Minute), CurrentReplicas: int32(m)})
	}
	now := t0.Add(600 * time.Minute)
	all := tl.Get("ns/a", now.Add(-time.Hour)) // a window ending before now still sees the ring
	assert.Len(t, all, Points)
	assert.Equal(t, Points, cap(tl.series["ns/a"].points), "the ring is Points long from its first point, and no longer")
	got = tl.Get("ns/a", now)
	require.NotEmpty(t, got)
	assert.False(t, got[0].At.Before(now.Add(-6*time.Hour)), "a point older than the window: %s", got[0].At)
	assert.Equal(t, int32(599), got[len(got)-1].CurrentReplicas)
	for i := 1; i < len(got); i++ {
		require.True(t, got[i].At.After(got[i-1].At), "not in order at %d", i)
		require.Equal(t, got[i].At.Truncate(2*time.Minute).Sub(got[i-1].At.Truncate(2*time.Minute)), 2*time.Minute)
	}

	// Another DPA is separate; Forget drops one.
	tl.Record("ns/b", Point{At: now})
	assert.Equal(t, 2, tl.Len())
	tl.Forget("ns/a")
	assert.Nil(t, tl.Get("ns/a", now))
	assert.Equal(t, 1, tl.Len())
}

func TestTimelineOff(t *testing.T) {
	tl := New(0)
	tl.Record("ns/a", Point{At: time.Now()})
	assert.Zero(t, tl.Len())
	assert.Nil(t, tl.Get("ns/a", time.Now()))

	var none *Timeline
	none.Record("ns/a", Point{At: time.Now()})
	none.Forget("ns/a")
	assert.Zero(t, none.Len())
	assert.Nil(t, none.Get("ns/a", time.Now()))
}
