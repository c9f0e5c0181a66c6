package impl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The status port's protection (status.auth = kubernetes): a request to a protected path must
// carry a bearer token the apiserver authenticates (TokenReview) and authorizes for a GET of the
// path (SubjectAccessReview with non-resource attributes), as `kubectl get --raw /metrics`
// would be. /healthz and /readyz stay open for the kubelet's probes.
//
// Both answers are cached for a minute, so a Prometheus scraping every 15 s costs the apiserver
// two reviews a minute, not eight. The cache holds at most maxCached entries; when full it is
// emptied (a burst of distinct tokens costs reviews, not memory).

const (
	authTTL   = time.Minute
	maxCached = 1024
	// reviewTimeout bounds the reviews of one request.
	reviewTimeout = 5 * time.Second
)

// ttlCache holds answers for authTTL, at most maxCached of them.
type ttlCache[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[K, V]) put(k K, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCached {
		c.entries = map[K]ttlEntry[V]{}
	}
	c.entries[k] = ttlEntry[V]{v: v, expires: now.Add(authTTL)}
}

type authenticated struct {
	user authnv1.UserInfo
	ok   bool
}

type decision struct {
	allowed bool
	reason  string
}

type authorizer struct {
	kube kubernetes.Interface
	log  *zap.Logger
	now  func() time.Time

	users     ttlCache[[32]byte, authenticated] // by the token's hash
	decisions ttlCache[string, decision]        // by user, groups and path
}

func newAuthorizer(kube kubernetes.Interface, log *zap.Logger) *authorizer {
	return &authorizer{kube: kube, log: log, now: time.Now}
}

// protect wraps h: only a request the apiserver authenticates and authorizes for a GET of its
// path reaches it.
func (a *authorizer) protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lazyscale"`)
			http.Error(w, "Unauthorized: a bearer token is required (status.auth is kubernetes)", http.StatusUnauthorized)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
		defer cancel()
		user, ok, err := a.authenticate(ctx, token)
		if err != nil {
			a.log.Warn("status port: TokenReview failed", zap.Error(err))
			http.Error(w, "could not check the token with the apiserver", http.StatusServiceUnavailable)
			return
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lazyscale", error="invalid_token"`)
			http.Error(w, "Unauthorized: the apiserver does not accept this token", http.StatusUnauthorized)
			return
		}
		allowed, reason, err := a.authorize(ctx, user, r.URL.Path)
		if err != nil {
			a.log.Warn("status port: SubjectAccessReview failed", zap.Error(err))
			http.Error(w, "could not check the authorization with the apiserver", http.StatusServiceUnavailable)
			return
		}
		if !allowed {
			msg := fmt.Sprintf("Forbidden: %s may not get %s", user.Username, r.URL.Path)
			if reason != "" {
				msg += ": " + reason
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (a *authorizer) authenticate(ctx context.Context, token string) (authnv1.UserInfo, bool, error) {
	key, now := sha256.Sum256([]byte(token)), a.now()
	if c, hit := a.users.get(key, now); hit {
		return c.user, c.ok, nil
	}
	review, err := a.kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, false, err
	}
	if review.Status.Error != "" && !review.Status.Authenticated {
		a.log.Debug("status port: token not authenticated", zap.String("reason", review.Status.Error))
	}
	a.users.put(key, authenticated{user: review.Status.User, ok: review.Status.Authenticated}, now)
	return review.Status.User, review.Status.Authenticated, nil
}

func (a *authorizer) authorize(ctx context.Context, user authnv1.UserInfo, path string) (bool, string, error) {
	key, now := user.UID+"\x00"+user.Username+"\x00"+strings.Join(user.Groups, "\x00")+"\x00"+path, a.now()
	if c, hit := a.decisions.get(key, now); hit {
		return c.allowed, c.reason, nil
	}
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar, err := a.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: "get"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	if sar.Status.EvaluationError != "" && !sar.Status.Allowed {
		a.log.Debug("status port: authorization evaluation error", zap.String("error", sar.Status.EvaluationError))
	}
	a.decisions.put(key, decision{allowed: sar.Status.Allowed, reason: sar.Status.Reason}, now)
	return sar.Status.Allowed, sar.Status.Reason, nil
}

// loopbackOnly serves h only to connections from a loopback address (kubectl port-forward
// arrives so): profiles and debug dumps expose the agent's internals.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "served on loopback only: use kubectl port-forward", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

var errNoKube = errors.New("status.auth is kubernetes, but no Kubernetes client was given")
