# Shared paths and helpers for the real node scripts (sourced, not run).
# Everything here is root-owned machine state: the daemons are system daemons, one set per machine.
# shellcheck shell=bash
REALNODE_STATE="${KUBEFORGE_REALNODE_STATE:-/var/lib/kubeforge-realnode}"   # containerd root, kubelet dir, configs
REALNODE_RUN=/run/kubeforge-realnode                                         # sockets, pid files
REALNODE_LOGS="$REALNODE_STATE/logs"
DOCKER_SOCK="$REALNODE_RUN/docker.sock"
CONTAINERD_SOCK="$REALNODE_RUN/containerd.sock"
# The Debian client (20.10) with its built-in BuildKit; /usr/local/bin/docker may be a newer client
# that wants the buildx plugin for BuildKit builds.
DOCKER=(/usr/bin/docker -H "unix://$DOCKER_SOCK")
CTR=(/usr/bin/ctr --address "$CONTAINERD_SOCK" -n k8s.io)

rn_log() { printf '[realnode %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rn_die() { rn_log "ERROR: $1"; exit "${2:-1}"; }

# pid_alive FILE: the pid in FILE is a live process whose command is $2 (guards against pid reuse).
pid_alive() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && [[ -r "/proc/$pid/cmdline" ]] || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" == *"$2"* ]]
}

# start_daemon NAME PIDFILE MATCH CMD...: start CMD detached (setsid, own log) unless already alive.
start_daemon() {
  local name="$1" pidfile="$2" match="$3"; shift 3
  if pid_alive "$pidfile" "$match"; then return 0; fi
  mkdir -p "$REALNODE_LOGS" "$REALNODE_RUN"
  rn_log "starting $name (log: $REALNODE_LOGS/$name.log)"
  # setsid + closed fds: the daemon outlives this script and holds none of its locks (6: node.sh up, 7: demo-real.sh).
  setsid "$@" </dev/null >>"$REALNODE_LOGS/$name.log" 2>&1 6>&- 7>&- 8>&- 9>&- &
  echo $! >"$pidfile"
}

stop_daemon() {  # NAME PIDFILE MATCH
  local name="$1" pidfile="$2" match="$3" pid i
  pid_alive "$pidfile" "$match" || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  rn_log "stopping $name ($pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

wait_for() {  # SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { rn_log "timed out waiting for $what"; return 1; }
    sleep 0.2
  done
}
