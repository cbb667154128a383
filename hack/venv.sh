#!/usr/bin/env bash
# Creates (or reuses) the Python venv outside the repo with every extra installed.
# torch from PyPI is a multi-GB CUDA build: it is pinned and installed once, and
# DeepSpeed is built against it with DS_BUILD_SHM_COMM=1 so CPU runs need no JIT compile.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KUBEFORGE_VENV:-$HOME/.cache/kubeforge/venv}"
PY="${PYTHON:-python3}"
CONSTRAINTS="$REPO/hack/constraints.txt"
TORCH="$(grep -E '^torch==' "$CONSTRAINTS")"
DEEPSPEED="$(grep -E '^deepspeed==' "$CONSTRAINTS")"
log() { printf '[venv %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

stamp="$(cat "$REPO/pyproject.toml" "$CONSTRAINTS" | sha256sum | cut -c1-16)"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip wheel setuptools
fi
PIP=("$VENV/bin/pip" install --progress-bar off -c "$CONSTRAINTS")
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  log "installing $TORCH (large CUDA build from PyPI; runs on the CPU too)"
  "${PIP[@]}" "$TORCH"
fi
if ! "$VENV/bin/python" -c 'import deepspeed' 2>/dev/null; then
  log "building $DEEPSPEED with its CPU shared-memory op compiled in"
  DS_BUILD_SHM_COMM=1 DS_BUILD_OPS=0 "${PIP[@]}" --no-build-isolation "$DEEPSPEED"
fi
if [[ "$(cat "$VENV/.kubeforge-stamp" 2>/dev/null)" != "$stamp" ]]; then
  log "installing kubeforge with extras operator,train,serve,dev"
  "${PIP[@]}" -q -e "$REPO[operator,train,serve,dev]"
  echo "$stamp" > "$VENV/.kubeforge-stamp"
fi
# The venv is shared between clones: point the editable install at this one.
where="$("$VENV/bin/python" -c 'import kubeforge, pathlib; print(pathlib.Path(kubeforge.__file__).resolve().parents[2])' 2>/dev/null || true)"
if [[ "$where" != "$REPO" ]]; then
  log "pointing the editable install at $REPO"
  "$VENV/bin/pip" install -q --no-deps -e "$REPO"
fi
log "ready: $VENV ($("$VENV/bin/python" -c 'import torch, deepspeed; print("torch", torch.__version__, "deepspeed", deepspeed.__version__)' 2>/dev/null | tail -1))"
