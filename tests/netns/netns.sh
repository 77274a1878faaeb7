#!/usr/bin/env bash
# Multi-host Umbra test topology with Linux network namespaces.
#
# Owns the namespaces of one test run: a bridge namespace and one namespace
# per host (nodes n1..nN and a client namespace "cli"), all on ONE private
# subnet, 10.213.0.0/24 (node i = 10.213.0.(10+i), client = 10.213.0.100).
# Used by crates/umbra-cli/tests/netns.rs; usable by hand as root.
#
# Usage (every subcommand needs UMBRA_NETNS_RUN, the PID of the owning
# process: a shell user passes $$):
#   UMBRA_NETNS_RUN=$$ netns.sh check            can namespaces be made here? (exit 0 = yes)
#   UMBRA_NETNS_RUN=$$ netns.sh up [NODES]       build the topology (default 6 nodes)
#   UMBRA_NETNS_RUN=$$ netns.sh down             kill processes, delete namespaces, drop the route
#   UMBRA_NETNS_RUN=$$ netns.sh link-down NODE   cut host NODE (1..N or cli) off the bridge
#   UMBRA_NETNS_RUN=$$ netns.sh link-up NODE     reconnect it
#   UMBRA_NETNS_RUN=$$ netns.sh ns NODE          print the namespace name of NODE
#
# Network safety (the root namespace has a default route off the machine):
# - before anything is created, the root namespace gets
#   `ip route add unreachable 10.213.0.0/24`, and `up` verifies with
#   `ip route get` that the subnet is unreachable from the root namespace, so
#   a stray packet to a test address fails locally instead of leaving;
#   `up` refuses to start if the root namespace already routes or owns any
#   address of the subnet (other than our own unreachable route);
# - the bridge lives in its own namespace, and every veth pair is created
#   from inside the bridge namespace with its peer placed directly in the
#   host namespace, so no interface of the topology ever exists in the root
#   namespace; `up` verifies that afterwards;
# - no default route, no NAT and forwarding off in every test namespace;
# - `up` deletes itself on failure; `down` is idempotent; leftovers of runs
#   whose owning process is gone are removed at the next `up`.
set -euo pipefail

SUBNET=10.213.0.0/24
PREFIX_LEN=24
CLIENT_IP=10.213.0.100
PREFIX=umbra

die() { echo "netns.sh: $*" >&2; exit 1; }
log() { [ -n "${UMBRA_NETNS_VERBOSE:-}" ] && echo "netns.sh: $*" >&2 || true; }
# Runs an ip(8) command, echoing it when UMBRA_NETNS_VERBOSE is set.
ipc() { log "ip $*"; ip "$@"; }

run_id() {
  local r="${UMBRA_NETNS_RUN:-}"
  [[ "$r" =~ ^[0-9]+$ ]] || die "set UMBRA_NETNS_RUN to the PID of the owning process (e.g. \$\$)"
  echo "$r"
}

ns_br() { echo "${PREFIX}$1-br"; }
# ns_host RUN NODE: the namespace of a node (1..N) or of the client (cli).
ns_host() {
  case "$2" in
    cli) echo "${PREFIX}$1-cli" ;;
    *) [[ "$2" =~ ^[0-9]+$ ]] || die "NODE must be a number or cli, got '$2'"; echo "${PREFIX}$1-n$2" ;;
  esac
}
# The bridge-side port name of a host.
port_of() { case "$1" in cli) echo pcli ;; *) echo "p$1" ;; esac; }
ip_of() { case "$1" in cli) echo "$CLIENT_IP" ;; *) echo "10.213.0.$((10 + $1))" ;; esac; }

# Namespaces of run $1 (one per line).
run_namespaces() { ip netns list | awk '{print $1}' | grep -E "^${PREFIX}$1-" || true; }
# Every run ID that has namespaces.
all_runs() { ip netns list | awk '{print $1}' | sed -nE "s/^${PREFIX}([0-9]+)-.*/\1/p" | sort -u; }

kill_ns_processes() {
  local ns="$1" pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -z "$pids" ] && return 0
  log "SIGTERM to $pids in $ns"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 30); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] && return 0
    sleep 0.1
  done
  log "SIGKILL to $pids in $ns"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

# Removes our unreachable route unless another live run still uses the subnet.
drop_route_if_unused() {
  if [ -z "$(all_runs)" ]; then
    if ip route show "$SUBNET" | grep -q '^unreachable'; then
      ipc route del unreachable "$SUBNET" || true
    fi
  fi
}

teardown() {
  local run="$1" ns
  for ns in $(run_namespaces "$run"); do kill_ns_processes "$ns"; done
  for ns in $(run_namespaces "$run"); do ipc netns del "$ns" 2>/dev/null || true; done
  drop_route_if_unused
}

# Removes namespaces of earlier runs whose owning process is gone.
clean_stale() {
  local r
  for r in $(all_runs); do
    if [ "$r" != "$(run_id)" ] && ! kill -0 "$r" 2>/dev/null; then
      log "removing leftovers of run $r"
      teardown "$r"
    fi
  done
}

# Fails unless a packet from the root namespace to the subnet is refused locally.
assert_root_unreachable() {
  local probe
  for probe in 10.213.0.1 "$(ip_of 1)" "$CLIENT_IP" 10.213.0.254; do
    if ip route get "$probe" >/dev/null 2>&1; then
      die "SAFETY: the root namespace has a route to $probe: $(ip route get "$probe" 2>&1 | head -n1)"
    fi
  done
}

# Puts the unreachable route in place; refuses if the root namespace uses the subnet.
guard_root() {
  local existing
  if ip -4 addr show to "$SUBNET" | grep -q inet; then
    die "SAFETY: the root namespace has an address in $SUBNET; refusing"
  fi
  # Routes for the subnet or any part of it (a covering route such as a
  # default route is overridden by our more specific unreachable route).
  existing=$(ip route show root "$SUBNET")
  if [ -n "$existing" ] && echo "$existing" | grep -vq "^unreachable $SUBNET"; then
    die "SAFETY: the root namespace already routes into $SUBNET ($existing); refusing"
  fi
  if ! ip route show "$SUBNET" | grep -q '^unreachable'; then
    ipc route add unreachable "$SUBNET"
  fi
  assert_root_unreachable
}

cmd_check() {
  command -v ip >/dev/null || die "ip (iproute2) not found"
  [ "$(id -u)" = 0 ] || die "must run as root"
  ip netns list >/dev/null 2>&1 || die "'ip netns' is unavailable"
  local probe
  probe="$(ns_host "$(run_id)" 0)probe"
  ip netns add "$probe" 2>/dev/null || die "cannot create a network namespace here"
  ip -n "$probe" link add br0 type bridge 2>/dev/null || { ip netns del "$probe"; die "cannot create a bridge in a namespace"; }
  ip -n "$probe" link add va type veth peer name vb 2>/dev/null || { ip netns del "$probe"; die "cannot create a veth pair in a namespace"; }
  ip netns del "$probe"
}

cmd_up() {
  local run n br i host ns port
  run=$(run_id)
  n="${1:-6}"
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 80 ] || die "NODES must be 1..80"
  [ -z "$(run_namespaces "$run")" ] || die "run $run already has namespaces (run down first)"
  clean_stale
  trap 'echo "netns.sh: up failed; tearing down" >&2; teardown "$(run_id)"' EXIT
  guard_root

  br=$(ns_br "$run")
  ipc netns add "$br"
  ipc -n "$br" link set lo up
  ipc -n "$br" link add br0 type bridge stp_state 0
  ipc -n "$br" link set br0 up
  ip netns exec "$br" sysctl -qw net.ipv4.ip_forward=0

  for host in $(seq 1 "$n") cli; do
    ns=$(ns_host "$run" "$host")
    port=$(port_of "$host")
    ipc netns add "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0
    ipc -n "$ns" link set lo up
    # Created inside the bridge namespace; the peer is born in the host namespace.
    ipc -n "$br" link add "$port" type veth peer name eth0 netns "$ns"
    ipc -n "$br" link set "$port" master br0
    ipc -n "$br" link set "$port" up
    # A neighbour that stops answering is noticed within about two seconds
    # (new connections to it then fail with "no route to host" instead of
    # hanging until a timeout).
    ipc -n "$ns" ntable change name arp_cache dev eth0 \
      base_reachable 2000 delay_probe 1000 retrans 250
    ipc -n "$ns" addr add "$(ip_of "$host")/$PREFIX_LEN" dev eth0
    ipc -n "$ns" link set eth0 up
  done

  # Verify: nothing of ours in the root namespace, no default route anywhere,
  # and the subnet still unreachable from the root namespace.
  if ip -o link show | awk -F': ' '{print $2}' | grep -Eq '^(p[0-9]+|pcli|br0)(@|$)'; then
    die "SAFETY: a topology interface appeared in the root namespace"
  fi
  for ns in $(run_namespaces "$run"); do
    if [ -n "$(ip -n "$ns" route show default)" ]; then
      die "SAFETY: namespace $ns has a default route"
    fi
  done
  assert_root_unreachable
  trap - EXIT
  log "up: $n nodes on $SUBNET (run $run)"
}

cmd_down() { teardown "$(run_id)"; }

set_link() {
  local run host state
  run=$(run_id)
  host="${1:-}"; state="$2"
  [ -n "$host" ] || die "usage: link-$state NODE"
  ns_host "$run" "$host" >/dev/null
  ipc -n "$(ns_br "$run")" link set "$(port_of "$host")" "$state"
}

# up and down of concurrent runs share the root route: one at a time.
lock() {
  if command -v flock >/dev/null; then
    exec 9>/run/lock/umbra-netns.lock
    flock -w 60 9 || die "another run holds /run/lock/umbra-netns.lock"
  fi
}

case "${1:-}" in
  check) cmd_check ;;
  up) shift; lock; cmd_up "$@" ;;
  down) lock; cmd_down ;;
  link-down) set_link "${2:-}" down ;;
  link-up) set_link "${2:-}" up ;;
  ns) ns_host "$(run_id)" "${2:?usage: ns NODE}" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
