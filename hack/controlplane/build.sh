#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kubectl) from Go modules into
# bin/controlplane/. Reuses $KUBEBUILDER_ASSETS when it already holds the binaries, and
# skips binaries that are already built for the pinned versions.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${CONTROLPLANE_DIR:-$root/bin/controlplane}
kube_version=v1.37.2
etcd_version=v3.6.16
mkdir -p "$out"

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
  for b in etcd kube-apiserver kubectl; do
    [ -x "$KUBEBUILDER_ASSETS/$b" ] && [ "$KUBEBUILDER_ASSETS/$b" -ef "$out/$b" ] || { [ -x "$KUBEBUILDER_ASSETS/$b" ] && ln -sf "$KUBEBUILDER_ASSETS/$b" "$out/$b"; }
  done
  [ -x "$out/kubectl" ] || true
  echo "controlplane: using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
fi

stamp() { cat "$out/.$1.version" 2>/dev/null || true; }

build_kube() {
  local name=$1 pkg=$2
  if [ -x "$out/$name" ] && [ "$(stamp "$name")" = "$kube_version" ]; then return; fi
  echo "controlplane: building $name $kube_version (first build takes a few minutes)"
  local minor=${kube_version#v1.}; minor=${minor%%.*}
  local ldflags=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$root/hack/controlplane/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$name" "$pkg")
  echo "$kube_version" > "$out/.$name.version"
}

build_etcd() {
  if [ -x "$out/etcd" ] && [ "$(stamp etcd)" = "$etcd_version" ]; then return; fi
  echo "controlplane: building etcd $etcd_version"
  (cd "$root/hack/controlplane/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  echo "$etcd_version" > "$out/.etcd.version"
}

if [ -z "${KUBEBUILDER_ASSETS:-}" ] || [ ! -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
  build_etcd
  build_kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
fi
[ -x "$out/kubectl" ] || build_kube kubectl k8s.io/kubernetes/cmd/kubectl
"$out/kube-apiserver" --version
"$out/etcd" --version | head -1
