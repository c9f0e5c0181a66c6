# lazyscale. Set-up: `make controlplane` and `make build`. Main job: `make run`.
# Every test: `make test`.
SHELL := /usr/bin/env bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/lazyscale/lazyscale/comp/core/version.Version=$(VERSION) -X github.com/lazyscale/lazyscale/comp/core/version.Commit=$(COMMIT)
GO ?= go

.PHONY: all build image run-pod controlplane chromium ui-screenshot generate verify-generated vet run test faults test-unit bench bench-scope bench-conditions bench-takeover bench-deployments bench-doc bench-quick clean

all: build

## build: a static binary (no cgo: it runs on a distroless/static or scratch image)
BIN ?= bin/lazyscale
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lazyscale

## image: the multi-arch OCI image, built without a daemon, into bin/image/lazyscale.tar
## (docker load / podman load / kind load image-archive / ctr import take it)
IMAGE_TAG ?= lazyscale:$(VERSION)
image:
	$(GO) run ./hack/image -version $(VERSION) -revision "$$(git rev-parse HEAD 2>/dev/null)" -tag $(IMAGE_TAG) -out bin/image/lazyscale.tar

## controlplane: build etcd, kube-apiserver and kubectl from Go modules into bin/controlplane
controlplane:
	bash hack/controlplane/build.sh

## generate: deepcopy and CRD YAML from api/ with controller-gen (a Go tool dependency); the
## chart's crds/ and deploy/lazyscale.yaml (the chart's defaults, rendered with the Helm SDK);
## deploy/monitoring (the chart's alerts as a PrometheusRule, and its dashboard)
generate:
	$(GO) tool controller-gen object paths=./api/... crd output:crd:artifacts:config=deploy/crds
	rm -f charts/lazyscale/crds/*.yaml && mkdir -p charts/lazyscale/crds && cp deploy/crds/*.yaml charts/lazyscale/crds/
	$(GO) run ./hack/chart/render > deploy/lazyscale.yaml.tmp && mv deploy/lazyscale.yaml.tmp deploy/lazyscale.yaml
	$(GO) run ./hack/chart/render -prometheusrule > deploy/monitoring/prometheusrule.yaml.tmp && mv deploy/monitoring/prometheusrule.yaml.tmp deploy/monitoring/prometheusrule.yaml
	cp charts/lazyscale/files/grafana-dashboard.json deploy/monitoring/grafana-dashboard.json

GENERATED := api deploy/crds deploy/lazyscale.yaml deploy/monitoring charts/lazyscale/crds
## verify-generated: fail when the generated files are stale
verify-generated: generate
	@git diff --exit-code -- $(GENERATED) || { echo "generated files are stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(GENERATED))" || { git status --porcelain -- $(GENERATED); echo "untracked generated files: run 'make generate' and commit"; exit 1; }

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

## run: local control plane + CRDs + demo pods + the agent; Ctrl-C stops everything
run: build controlplane
	$(GO) build -o bin/localcluster ./hack/localcluster
	bin/localcluster

## run-pod: as run, but the agent runs as deploy/lazyscale.yaml's pod would (its args, config,
## env, the kubelet's service links, its ServiceAccount's token)
run-pod: build controlplane
	$(GO) build -o bin/localcluster ./hack/localcluster
	bin/localcluster -as-pod

## chromium: the headless browser the /ui test drives (Debian's chromium package, when missing)
chromium:
	bash hack/chromium.sh

## ui-screenshot: docs/ui.png, the /ui page the README shows, from the browser test
ui-screenshot: build controlplane chromium
	UI_SCREENSHOT=$(CURDIR)/docs/ui.png $(GO) test -count=1 -run 'TestUIInABrowser$$' ./test/e2e

## test: every test, CI included: builds the control plane and installs chromium first
test: controlplane chromium verify-generated vet build
	$(GO) test -race -count=1 -timeout 30m ./...

## faults: the fault suite (docs/reliability.md): every case, the real binary against the real
## control plane; records into docs/reliability.json and the doc's table
faults: build controlplane
	mkdir -p bin/faults-profiles
	FAULTS_RECORD=$(CURDIR)/docs/reliability.json FAULTS_LOAD=full FAULTS_PROFILE_DIR=$(CURDIR)/bin/faults-profiles $(GO) test -count=1 -timeout 60m -v -run 'TestFault' ./test/e2e
	$(GO) run ./hack/faultsdoc docs/reliability.json docs/reliability.md

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/)

## bench: every mode at each of PODS pods; JSON and PNG plots into docs/bench/ (docs/benchmarks.md)
PODS ?= 1000,5000,20000
## PODS_MODEST: the sizes of the run on modest pods (2 containers, 4 labels, 2 annotations)
PODS_MODEST ?= 3000,12000
BENCH_MODES ?= disabled,dormant,webhook-skip,active,active-list,active-scoped,eager,reference
bench: build controlplane
	$(GO) run ./test/bench -pods $(PODS) -modes $(BENCH_MODES) -out docs/bench/results.json -plots docs/bench
	$(GO) run ./test/bench -pods $(PODS_MODEST) -pod-shape modest -modes disabled,dormant,active,active-scoped,reference -out docs/bench/results-modest.json
	$(GO) run ./test/bench -scope -pods $(PODS_SCOPE) -out docs/bench/results-scope.json -plots docs/bench
	$(GO) run ./test/bench -conditions -out docs/bench/results-conditions.json
	$(GO) run ./test/bench -takeover -pods $(PODS_TAKEOVER) -out docs/bench/results-takeover.json
	$(GO) run ./test/bench -render docs/benchmarks.md -in docs/bench/results.json

## bench-takeover: the leader killed at PODS_TAKEOVER pods, followers with and without pods
PODS_TAKEOVER ?= 20000
bench-takeover: build controlplane
	$(GO) run ./test/bench -takeover -pods $(PODS_TAKEOVER) -out docs/bench/results-takeover.json
	$(GO) run ./test/bench -render docs/benchmarks.md -in docs/bench/results.json

## bench-conditions: what the workloads scope's match condition costs: the entry's variants, interleaved
bench-conditions: build controlplane
	$(GO) run ./test/bench -conditions -out docs/bench/results-conditions.json
	$(GO) run ./test/bench -render docs/benchmarks.md -in docs/bench/results.json

## bench-scope: issue 15's run alone: PODS_SCOPE pods over 100 namespaces, one DPA on a Deployment, then none
PODS_SCOPE ?= 50000
bench-scope: build controlplane
	$(GO) run ./test/bench -scope -pods $(PODS_SCOPE) -out docs/bench/results-scope.json -plots docs/bench
	$(GO) run ./test/bench -render docs/benchmarks.md -in docs/bench/results.json

## bench-deployments: disabled, dormant and active at PODS_DEPLOYMENTS pods made by 200 real Deployments on kwok nodes
PODS_DEPLOYMENTS ?= 5000
bench-deployments: build controlplane
	$(GO) run ./test/bench -workloads deployments -pods $(PODS_DEPLOYMENTS) -modes disabled,dormant,active -out docs/bench/results-deployments.json
	$(GO) run ./test/bench -render docs/benchmarks.md -in docs/bench/results.json

## bench-doc: re-render docs/benchmarks.md's generated tables from docs/bench/results.json
bench-doc:
	$(GO) run ./test/bench -render docs/benchmarks.md -in docs/bench/results.json

## bench-quick: every mode at 1,000 pods, a few minutes, nothing written
bench-quick: build controlplane
	$(GO) run ./test/bench -pods 1000 -modes $(BENCH_MODES) -settle 2s

clean:
	rm -rf bin tmp
