#!/usr/bin/env bash
# Installs the Debian packages the real node and the image builds need (root, Debian 12):
# Docker 20.10 (image builds), containerd 1.6 + runc (the node's runtime), the CNI bridge and
# host-local plugins, iptables and conntrack (kube-proxy), mmdebstrap (local base images, since
# no image registry is reachable). Idempotent: returns at once when everything is there.
set -euo pipefail
PACKAGES=(docker.io containerd runc containernetworking-plugins mmdebstrap iptables conntrack
          ethtool socat gcc libc6-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} == 0 ]] && exit 0
if [[ $(id -u) != 0 ]]; then
  echo "[realnode] needs root to install: ${missing[*]}" >&2; exit 3
fi
echo "[realnode] installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# --no-install-recommends: docker.io recommends apparmor, cgroupfs-mount, git, ... none needed.
# Debian's packages start their services with invoke-rc.d; without an init here that fails
# harmlessly, and hack/realnode/node.sh starts each daemon with its own config anyway.
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
