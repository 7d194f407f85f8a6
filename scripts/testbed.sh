#!/usr/bin/env bash
# A test bed of N "hosts" on this one machine, for multi-host runs (docs/hosts.md):
#   ./run-all.sh testbed up [--hosts N] [--rate RATE]   N network namespaces bench-h0..bench-h(N-1)
#   ./run-all.sh testbed down                           removes all of it, also after a crash
#
# Each namespace has one veth link to the bridge bench-br0 in this namespace, an address from
# 198.18.0.0/15 (RFC 2544's range for benchmark tests: 198.18.0.1 is bench-h0, the bridge is
# 198.18.0.254), and Debian's sshd listening on its address with a host key and a login key made
# for the test bed. --rate puts a tc tbf rate limit on both directions of every link. `up` writes
# an ssh config (one alias per host, multiplexed, checked against the test bed's own
# known_hosts) and a hosts file (bench-h0 the server, the others clients), and prints the hosts
# file's path as its last line. Everything it makes is found again by name, so `down` works
# without the state folder too.
set -euo pipefail

state=${BENCH_TESTBED_DIR:-/run/bench-testbed}
prefix=bench-h
bridge=bench-br0
net=198.18.0
controller=$net.254

die() { echo "testbed: $*" >&2; exit 1; }

usage() {
  echo "usage: testbed up [--hosts N] [--rate RATE] | testbed down" >&2
  exit 2
}

# Namespaces of ours, found by name (a crashed `up` leaves no state to go by).
our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}[0-9]+$" || true; }

down() {
  # Multiplexing masters first: they live in this namespace and would hold connections to hosts that are going away.
  for sock in "$state"/cm-*; do
    [[ -S $sock ]] && ssh -o ControlPath="$sock" -O exit testbed >/dev/null 2>&1 || true
  done
  for ns in $(our_namespaces); do
    # Every process in the namespace: its sshd and anything a run left (there should be none).
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  # A veth whose namespace went away goes with it; one left by a crash between its two ends is removed here.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${prefix}[0-9]+-br$" || true); do
    ip link delete "$link" 2>/dev/null || true
  done
  ip link show "$bridge" >/dev/null 2>&1 && ip link delete "$bridge"
  rm -rf "$state"
  echo "testbed: down (no namespace, link or state folder of the test bed is left)" >&2
}

# tc tbf on one device: RATE, a burst of at least 10 ms of traffic (and of a 64 KiB GSO segment, or
# nothing larger passes), and a queue of at most 50 ms.
limit_rate() {
  local run=$1 dev=$2 rate=$3
  $run tc qdisc add dev "$dev" root tbf rate "$rate" burst "$burst" latency 50ms
}

up() {
  local hosts=4 rate=""
  while (($#)); do
    case $1 in
      --hosts) hosts=${2:-}; shift 2 ;;
      --rate) rate=${2:-}; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ $hosts =~ ^[0-9]+$ ]] && ((hosts >= 2 && hosts <= 200)) || die "--hosts takes 2 to 200 (one server host and at least one client host)"
  [[ $EUID -eq 0 ]] || die "needs root (it makes network namespaces, links and an sshd per namespace)"
  for tool in ip tc ssh ssh-keygen /usr/sbin/sshd; do
    command -v "$tool" >/dev/null || die "'$tool' is missing: scripts/setup.sh installs it (openssh-server, openssh-client, iproute2)"
  done
  if [[ -n $rate ]]; then
    # tc's own units (kbit, mbit, gbit, ...); the burst covers 10 ms at that rate.
    local bits
    bits=$(echo "$rate" | awk '/^[0-9.]+(bit|kbit|mbit|gbit)$/ {n=$0+0; u=$0; sub(/^[0-9.]+/, "", u); m=(u=="bit")?1:(u=="kbit")?1e3:(u=="mbit")?1e6:1e9; printf "%d", n*m}')
    [[ -n $bits && $bits -gt 0 ]] || die "--rate '$rate' is not a rate such as 100mbit or 1gbit"
    burst=$((bits / 8 / 100)); ((burst >= 131072)) || burst=131072
  fi
  if [[ -d $state || -n $(our_namespaces) ]] || ip link show "$bridge" >/dev/null 2>&1; then
    echo "testbed: a test bed is up (or was left by a crash); taking it down first" >&2
    down
  fi

  mkdir -p "$state" /run/sshd
  chmod 700 "$state"
  ssh-keygen -q -t ed25519 -N "" -C "bench-testbed login" -f "$state/id_ed25519"
  ssh-keygen -q -t ed25519 -N "" -C "bench-testbed host" -f "$state/host_ed25519"
  cp "$state/id_ed25519.pub" "$state/authorized_keys"
  cat >"$state/sshd_config" <<EOF
# sshd of every test-bed namespace (ListenAddress and PidFile are given per host on the command line).
HostKey $state/host_ed25519
AuthorizedKeysFile $state/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# A lost controller is noticed within 6 s, and its sessions' commands see their stdin close.
ClientAliveInterval 2
ClientAliveCountMax 3
# Multiplexed sessions over one connection: servers, clients and readings of /proc at once.
MaxSessions 64
MaxStartups 64
LogLevel ERROR
EOF

  ip link add "$bridge" type bridge
  ip addr add "$controller/24" dev "$bridge"
  ip link set "$bridge" up
  : >"$state/known_hosts"
  local host_key
  host_key=$(cut -d' ' -f1-2 "$state/host_ed25519.pub")
  {
    echo "# ssh config of the test bed: one alias per namespace (./run-all.sh testbed up)"
    echo "Host ${prefix}*"
    echo "  User root"
    echo "  IdentityFile $state/id_ed25519"
    echo "  IdentitiesOnly yes"
    echo "  UserKnownHostsFile $state/known_hosts"
    echo "  StrictHostKeyChecking yes"
    echo "  BatchMode yes"
    echo "  ConnectTimeout 5"
    echo "  ServerAliveInterval 2"
    echo "  ServerAliveCountMax 3"
    echo "  ControlMaster auto"
    echo "  ControlPath $state/cm-%C"
    echo "  ControlPersist 60"
    echo "  LogLevel ERROR"
  } >"$state/ssh_config"

  local entries=() cpus_server=0 cpus_client=0
  (($(nproc) >= 2)) && cpus_client=1
  for ((i = 0; i < hosts; i++)); do
    local ns=$prefix$i addr=$net.$((i + 1))
    ip netns add "$ns"
    ip link add "$ns-br" type veth peer name eth0 netns "$ns"
    ip link set "$ns-br" master "$bridge" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    if [[ -n $rate ]]; then
      limit_rate "ip netns exec $ns" eth0 "$rate"   # what the host sends
      limit_rate "" "$ns-br" "$rate"                # what it receives
    fi
    mkdir -p "$state/$ns/work"
    ip netns exec "$ns" /usr/sbin/sshd -f "$state/sshd_config" -o "ListenAddress=$addr" \
      -o "PidFile=$state/$ns/sshd.pid" -E "$state/$ns/sshd.log"
    echo "$addr $host_key" >>"$state/known_hosts"
    printf 'Host %s\n  HostName %s\n' "$ns" "$addr" >>"$state/ssh_config"
    local role=client cpus=$cpus_client
    ((i == 0)) && role=server cpus=$cpus_server
    entries+=("    { \"name\": \"$ns\", \"ssh\": \"$ns\", \"address\": \"$addr\", \"cpus\": \"$cpus\", \"role\": \"$role\", \"dir\": \"$state/$ns/work\" }")
  done

  local link="veth pair to a Linux bridge, one machine (test bed)"
  [[ -n $rate ]] && link="$link, tc tbf $rate each way"
  {
    echo "{"
    echo "  \"ssh_config\": \"$state/ssh_config\","
    echo "  \"link\": \"$link\","
    echo "  \"hosts\": ["
    local IFS=$'\n'
    echo "${entries[*]}" | sed '$!s/$/,/'
    echo "  ]"
    echo "}"
  } >"$state/hosts.json"

  # Each sshd answers before `up` returns.
  for ((i = 0; i < hosts; i++)); do
    local tries=0
    until ssh -F "$state/ssh_config" -o ControlMaster=no "$prefix$i" true 2>/dev/null; do
      ((++tries < 50)) || die "$prefix$i: sshd does not answer on $net.$((i + 1)) ($(tail -n 3 "$state/$prefix$i/sshd.log" 2>/dev/null))"
      sleep 0.1
    done
  done
  echo "testbed: $hosts hosts up on $net.1-$net.$hosts (bridge $bridge, controller $controller)${rate:+, links limited to $rate each way}; ssh -F $state/ssh_config ${prefix}0" >&2
  echo "$state/hosts.json"
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) shift; (($# == 0)) || usage; down ;;
  *) usage ;;
esac
