#!/usr/bin/env bash
# Builds the local control plane from Go modules into bin/controlplane/: etcd
# (go.etcd.io/etcd/server/v3), kube-apiserver, kube-controller-manager, kube-scheduler and
# kubectl (k8s.io/kubernetes), kwok (sigs.k8s.io/kwok) with its stock stages, and
# metrics-server (sigs.k8s.io/metrics-server). Binaries
# already built for the pinned versions are kept. When $KUBEBUILDER_ASSETS holds etcd and
# kube-apiserver, those are used instead and only the others are built (when missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/bin/controlplane"
kube_version=v1.37.2   # keep in step with hack/controlplane/kube/go.mod
etcd_version=v3.6.16   # keep in step with hack/controlplane/etcd/go.mod
kwok_version=v0.8.0    # keep in step with hack/controlplane/kwok/go.mod
metrics_server_version=v0.8.0 # keep in step with hack/controlplane/metrics-server/go.mod
mkdir -p "$out"

built() { [ -x "$out/$1" ] && [ "$(cat "$out/.$1.version" 2>/dev/null)" = "$2" ]; }

build_kube() { # name package
  built "$1" "$kube_version" && return
  echo "controlplane: building $1 $kube_version from k8s.io/kubernetes (the first build takes several minutes)"
  local minor=${kube_version#v1.}; minor=${minor%%.*}
  local ldflags="-s -w"
  # Without these, the server reports v0.0.0-master+$Format:%H$, which clients cannot parse.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$root/hack/controlplane/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$1" "$2")
  echo "$kube_version" > "$out/.$1.version"
}

build_etcd() {
  built etcd "$etcd_version" && return
  echo "controlplane: building etcd $etcd_version from go.etcd.io/etcd/server/v3"
  (cd "$root/hack/controlplane/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  echo "$etcd_version" > "$out/.etcd.version"
}

# kwok simulates nodes and runs their pods (no containers). Its stock stages come with its
# module: nodes initialised and kept alive with leases; pods made ready, completed, deleted. Our
# own stages (hack/controlplane/kwok/pod-resize.yaml) add what a kubelet does for an in-place
# resize. The stages file is written again on every run (it is only text), so a change to ours
# reaches bin/ without rebuilding kwok.
build_kwok() {
  if ! built kwok "$kwok_version"; then
    echo "controlplane: building kwok $kwok_version from sigs.k8s.io/kwok"
    (cd "$root/hack/controlplane/kwok" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok)
    echo "$kwok_version" > "$out/.kwok.version"
  fi
  local dir
  dir=$(cd "$root/hack/controlplane/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  local stages="$out/kwok-stages.yaml.tmp"
  : > "$stages"
  # The node metrics kwok serves (the kubelet's /metrics/resource, for metrics-server).
  for f in stage/node/fast/node-initialize.yaml stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml \
           metrics/resource/metrics-resource.yaml; do
    { echo "---"; cat "$dir/kustomize/$f"; } >> "$stages"
  done
  { echo "---"; cat "$root/hack/controlplane/kwok/pod-resize.yaml"; } >> "$stages"
  mv "$stages" "$out/kwok-stages.yaml"
  # The CRDs of live usage (ResourceUsage, ClusterResourceUsage), installed by the control plane.
  local crds="$out/kwok-crds.yaml.tmp"
  : > "$crds"
  for f in kwok.x-k8s.io_resourceusages.yaml kwok.x-k8s.io_clusterresourceusages.yaml; do
    { echo "---"; cat "$dir/kustomize/crd/bases/$f"; } >> "$crds"
  done
  mv "$crds" "$out/kwok-crds.yaml"
}

# metrics-server serves metrics.k8s.io from what kwok's nodes report. Without the version
# ldflags it reports v0.0.0-master+$Format:%H$.
build_metrics_server() {
  built metrics-server "$metrics_server_version" && return
  echo "controlplane: building metrics-server $metrics_server_version from sigs.k8s.io/metrics-server"
  local ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$metrics_server_version -X k8s.io/client-go/pkg/version.gitMajor=0 -X k8s.io/client-go/pkg/version.gitMinor=8"
  (cd "$root/hack/controlplane/metrics-server" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server)
  echo "$metrics_server_version" > "$out/.metrics-server.version"
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
  echo "controlplane: using etcd and kube-apiserver from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  "$KUBEBUILDER_ASSETS/kube-apiserver" --version
else
  build_etcd
  build_kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
  "$out/kube-apiserver" --version
  "$out/etcd" --version | sed -n 1p   # sed reads it all: no SIGPIPE under pipefail
fi
build_kube kubectl k8s.io/kubernetes/cmd/kubectl
build_kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build_kube kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build_kwok
build_metrics_server
