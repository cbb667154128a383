# kubeforge: the verbs. `make demo` and `make test` are the quick start.
SHELL := /bin/bash
VENV ?= $(HOME)/.cache/kubeforge/venv
export KUBEFORGE_VENV := $(VENV)
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
export PATH := $(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help venv binaries helm kueue kueue-up kueue-down cluster-up cluster-down cluster-status cluster-kubeconfig cluster-check crds crds-check \
        test test-unit test-integration test-workload test-real demo demo-real bench bench-train bench-serve bench-s3 bench-scale training-operator seaweedfs s3-up s3-down \
        images real-node real-node-prereqs kind-up kind-e2e kind-down clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

venv:  ## create/reuse the Python venv (outside the repo) with all extras
	@hack/venv.sh

binaries:  ## build the pinned Kubernetes, etcd, kwok binaries from Go modules (cached)
	@hack/build-binaries.sh all

helm:  ## build the pinned helm binary from its Go module (cached)
	@hack/build-binaries.sh helm

seaweedfs:  ## build the pinned SeaweedFS (S3-compatible store) from its Go module (cached)
	@hack/build-binaries.sh seaweedfs

s3-up:  ## start the local S3 store (SeaweedFS on 127.0.0.1) and print its env
	@hack/s3.sh up

s3-down:  ## stop the local S3 store and delete its data
	@hack/s3.sh down

kueue:  ## build Kueue's controller manager from its Go module (cached; hack/kueue/README.md)
	@hack/build-binaries.sh kueue

kueue-up: kueue  ## run Kueue against the local cluster (webhooks on 127.0.0.1, queues for the GPU pools)
	@hack/kueue.sh up

kueue-down:  ## stop Kueue
	@hack/kueue.sh down

cluster-up: binaries  ## start the local kwok cluster with GPU node pools (real control plane)
	@hack/cluster.sh up

cluster-down:  ## stop and delete the local cluster
	@hack/cluster.sh down

cluster-status:  ## show the local cluster
	@hack/cluster.sh status

cluster-kubeconfig:  ## print the local cluster's kubeconfig path
	@hack/cluster.sh kubeconfig

cluster-check: venv binaries  ## check that the local cluster behaves as a real one (scheduling, Jobs, CEL, GC)
	@hack/cluster.sh check

crds: venv  ## regenerate crds/ and the chart's CRDs from the API models
	@$(PY) -m kubeforge.crds

crds-check: venv  ## fail when crds/ drifted from the API models
	@$(PY) -m kubeforge.crds --check

test: venv binaries helm seaweedfs kueue real-node-prereqs  ## all tests: unit, integration (local cluster), workload, e2e (real node too, as root)
	@KUBEFORGE_REQUIRE_CLUSTER=1 $(PYTEST) tests

test-unit: venv helm  ## fast unit tests only (helm renders the chart)
	@$(PYTEST) tests/unit

test-integration: venv binaries kueue  ## operator against the local cluster
	@KUBEFORGE_REQUIRE_CLUSTER=1 $(PYTEST) tests/integration

test-real: venv binaries helm real-node-prereqs  ## e2e on the real node only (root: kubelet, containerd, images)
	@KUBEFORGE_REQUIRE_CLUSTER=1 KUBEFORGE_REQUIRE_REAL_NODE=1 $(PYTEST) tests/e2e/test_realnode.py

test-workload: venv seaweedfs  ## trainer and server as real processes
	@$(PYTEST) tests/workload

demo: venv binaries  ## cluster, operator, sample CRs, then a real local training run and prediction
	@hack/demo.sh

demo-real: venv binaries helm real-node-prereqs  ## the quick start on the real node: chart, training in real pods, serving
	@hack/demo-real.sh

bench: bench-train bench-serve bench-s3  ## all benchmarks (ratios + PNG plots in bench/results/)

bench-train: venv  ## DeepSpeed recipe vs Hugging Face Trainer, samples/s ratio
	@$(PY) bench/train_bench.py

bench-serve: venv  ## kubeforge-serve vs KServe, Ray Serve, BentoML (their venvs made on first run), gRPC, overhead
	@$(PY) bench/serve_bench.py

bench-s3: venv seaweedfs  ## checkpoints and model download: S3 (local SeaweedFS) vs a local volume
	@eval "$$(hack/s3.sh up)" && $(PY) bench/s3_bench.py

training-operator:  ## build the Kubeflow Training Operator (the scale bench's Go peer) from its Go module (cached)
	@hack/build-binaries.sh training-operator

bench-scale: venv binaries training-operator  ## the operator at scale on the local cluster, the Go peer side by side: latency split, RSS/CPU, requests/s (SCALE_ARGS=--jobs 1000 ...)
	@$(PY) bench/scale_bench.py $(SCALE_ARGS)

images:  ## build the operator, trainer and server images (root: starts its own dockerd; Debian-made bases)
	@hack/images.sh

real-node-prereqs:  ## as root: kubelet/kube-proxy binaries and the images; otherwise say why the real-node tests will skip
	@if [ "$$(id -u)" = 0 ]; then hack/build-binaries.sh realnode && hack/images.sh all; \
	 else echo "[make] not root: the real node cannot run here, its e2e tests will skip"; fi

real-node: binaries real-node-prereqs  ## the local cluster plus the real kubelet node (hack/cluster.sh up --real)
	@hack/cluster.sh up --real

kind-up: images  ## kind cluster with images loaded and the chart installed (needs Docker)
	@hack/kind.sh up

kind-e2e: kind-up  ## real CPU training and serving on kind (needs Docker)
	@hack/kind.sh e2e

kind-down:  ## delete the kind cluster
	@hack/kind.sh down

clean:  ## remove build leftovers in the repo (caches outside the repo stay)
	@rm -rf build dist .pytest_cache out
