package impl

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// The authorizer's decisions and their cache (the real apiserver's answers are tested in
// test/e2e, TestBinaryAsItsPodRunsIt): a token is reviewed once a minute, not per request, and
// an apiserver that fails is a 503, never an open door.
func TestAuthorizer(t *testing.T) {
	kube := fake.NewClientset()
	var tokenReviews, accessReviews int
	failing := false
	kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tokenReviews++
		if failing {
			return true, nil, errors.New("apiserver away")
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		switch tr.Spec.Token {
		case "reader", "nobody":
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "system:serviceaccount:monitoring:" + tr.Spec.Token}}
		default:
			tr.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, tr, nil
	})
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		accessReviews++
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview)
		sar.Status.Allowed = sar.Spec.User == "system:serviceaccount:monitoring:reader" && sar.Spec.NonResourceAttributes.Verb == "get"
		return true, sar, nil
	})
	a := newAuthorizer(kube, zap.NewNop())
	now := time.Now()
	a.now = func() time.Time { return now }
	h := a.protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	get := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	w := get("")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
	assert.Zero(t, tokenReviews, "no token, no review")
	assert.Equal(t, http.StatusUnauthorized, get("forged").Code)
	w = get("nobody")
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "system:serviceaccount:monitoring:nobody may not get /metrics")
	assert.Equal(t, http.StatusOK, get("reader").Code)
	reviews := [2]int{tokenReviews, accessReviews}
	for range 5 {
		assert.Equal(t, http.StatusOK, get("reader").Code)
	}
	assert.Equal(t, reviews, [2]int{tokenReviews, accessReviews}, "answers are cached")

	now = now.Add(authTTL + time.Second)
	failing = true
	assert.Equal(t, http.StatusServiceUnavailable, get("reader").Code, "an apiserver that fails is not an open door")
	failing = false
	assert.Equal(t, http.StatusOK, get("reader").Code)
	assert.Equal(t, reviews[0]+2, tokenReviews, "reviewed again once the cache expired")
}

// Profiles and debug dumps answer loopback connections only (kubectl port-forward arrives so).
func TestLoopbackOnly(t *testing.T) {
	h := loopbackOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("profile")) }))
	for addr, want := range map[string]int{"127.0.0.1:4242": http.StatusOK, "[::1]:4242": http.StatusOK, "10.0.0.7:4242": http.StatusForbidden, "garbage": http.StatusForbidden} {
		r := httptest.NewRequest(http.MethodGet, "/debug/pprof/heap", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, want, w.Code, addr)
	}
}
