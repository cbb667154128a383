#!/usr/bin/env bash
# Starts (or finds running) the Docker engine the image builds use, on its own socket:
# no iptables rules, no docker0 bridge (builds use --network=host). Prints nothing on success.
#   hack/realnode/dockerd.sh [up|down]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/common.sh"
PIDFILE="$REALNODE_RUN/dockerd.pid"
case "${1:-up}" in
  up)
    "$HERE/install-packages.sh"
    start_daemon dockerd "$PIDFILE" dockerd /usr/sbin/dockerd \
      -H "unix://$DOCKER_SOCK" --pidfile "$REALNODE_RUN/dockerd.own.pid" \
      --iptables=false --ip-masq=false --bridge=none --storage-driver=overlay2 \
      --exec-root "$REALNODE_RUN/docker-exec"
    wait_for 60 dockerd "${DOCKER[@]}" version
    ;;
  down) stop_daemon dockerd "$PIDFILE" dockerd ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
