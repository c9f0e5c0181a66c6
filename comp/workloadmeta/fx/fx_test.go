package fx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestDebugPodsListsTheStore(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	wm := fxutiltest.Component[def.Component](t, core, Module())
	wm.Set(&def.Pod{UID: "u2", Name: "web-2", Namespace: "shop", RecID: "r1", Ready: true})
	wm.Set(&def.Pod{UID: "u1", Name: "api-1", Namespace: "shop"})
	rec := httptest.NewRecorder()
	podsHandler(wm).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pods", nil))
	var got struct{ Pods []HeldPod }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, []HeldPod{{Namespace: "shop", Name: "api-1", UID: "u1"}, {Namespace: "shop", Name: "web-2", UID: "u2", Ready: true, RecID: "r1"}}, got.Pods)
}
