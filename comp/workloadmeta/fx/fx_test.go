package fx

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestModule(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	wm := fxutiltest.Component[def.Component](t, core, Module())
	sub := wm.Subscribe("test", def.Filter{Kinds: []def.Kind{def.KindPod}})
	defer sub.Unsubscribe()
	<-sub.Events() // the initial (empty) bundle
	wm.Set(&def.Pod{UID: "u1", Name: "web-1", Namespace: "shop"})
	b := <-sub.Events()
	assert.Len(t, b.Events, 1)
	assert.Equal(t, 1, wm.Count(def.KindPod))
}
