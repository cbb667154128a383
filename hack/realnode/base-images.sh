#!/usr/bin/env bash
# Makes the base images the local image builds use instead of a registry's (none is reachable
# here): Debian 12 root filesystems from Debian's packages (mmdebstrap), imported into Docker.
#   kubeforge.local/python:bookworm        python3 (3.11), venv, ca-certificates, useradd
#   kubeforge.local/python-build:bookworm  the same plus gcc/g++ and python3-dev (the trainer's
#                                          build stage compiles DeepSpeed's CPU op)
#   kubeforge.local/pause:3.10             the pod sandbox: a static C program that waits for a signal
# Idempotent: an image that exists is kept (KUBEFORGE_REBUILD_BASE=1 remakes them).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/common.sh"
SUITE=bookworm
RUNTIME_PKGS=python3,python3-venv,python-is-python3,ca-certificates,passwd
BUILD_PKGS="$RUNTIME_PKGS,python3-dev,gcc,g++,make"
export BASE_IMAGE="kubeforge.local/python:$SUITE" BUILD_IMAGE="kubeforge.local/python-build:$SUITE"
export PAUSE_IMAGE="kubeforge.local/pause:3.10"

have() { [[ "${KUBEFORGE_REBUILD_BASE:-0}" != 1 ]] && "${DOCKER[@]}" image inspect "$1" >/dev/null 2>&1; }

debian_image() {  # tag packages
  local tag="$1" pkgs="$2" tar
  have "$tag" && return 0
  tar="$(mktemp --suffix=.tar)"
  rn_log "mmdebstrap $SUITE ($pkgs) -> $tag"
  # minbase: Essential packages + apt; the apt lists are dropped, the image has no need to apt-get.
  nice mmdebstrap --quiet --variant=minbase --include="$pkgs" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$SUITE" "$tar"
  "${DOCKER[@]}" import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$tar" "$tag" >/dev/null
  rm -f "$tar"
}

pause_image() {
  have "$PAUSE_IMAGE" && return 0
  local dir; dir="$(mktemp -d)"
  rn_log "building $PAUSE_IMAGE (static C)"
  cat >"$dir/pause.c" <<'C'
/* The pod sandbox's process: holds the pod's namespaces, reaps orphans, exits on SIGINT/SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit); signal(SIGTERM, quit); signal(SIGCHLD, reap);
  for (;;) pause();
}
C
  gcc -Os -static -o "$dir/rootfs-pause" "$dir/pause.c"
  mkdir -p "$dir/rootfs" && mv "$dir/rootfs-pause" "$dir/rootfs/pause"
  tar -C "$dir/rootfs" -cf "$dir/pause.tar" pause
  "${DOCKER[@]}" import --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' "$dir/pause.tar" "$PAUSE_IMAGE" >/dev/null
  rm -rf "$dir"
}

"$HERE/dockerd.sh" up
debian_image "$BASE_IMAGE" "$RUNTIME_PKGS"
debian_image "$BUILD_IMAGE" "$BUILD_PKGS"
pause_image
