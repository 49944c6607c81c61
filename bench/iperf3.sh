#!/usr/bin/env bash
# Throughput through bridge networking, side by side with docker: iperf3 (Debian's, copied
# with its libraries into a busybox image) from the host to a container through a published
# port — to 127.0.0.1 and to the host's own address — and from one container to another on
# a user network. docker runs twice, as a private dockerd (its own data/exec root, socket,
# pidfile and bridge; an already running dockerd is not touched): with its default userland
# proxy (127.0.0.1 then goes through one docker-proxy process per port) and with
# `--userland-proxy=false` (the kernel's DNAT, as wharf always does). Reports the median
# Gbit/s of REPS runs of T seconds each and ratios. Not a test: numbers go into issue notes.
#
#   bench/iperf3.sh [--install]    # --install: apt-get install iperf3 docker.io
#   T=5 REPS=3 bench/iperf3.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ "${1:-}" = --install ]; then
  apt-get update -qq
  apt-get install -y -qq iperf3 docker.io busybox-static >/dev/null
fi
command -v iperf3 >/dev/null || { echo "iperf3 is required: apt-get install iperf3" >&2; exit 1; }
T=${T:-5}
REPS=${REPS:-3}
scripts/build-static.sh >/dev/null
wharf=$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release/wharf
work=$(mktemp -d /var/tmp/wharf-bench.XXXXXX)
export WHARF_ROOT=$work/root WHARF_RUNROOT=$work/run
# docker's bridge for this bench: made here, given to the private dockerd with --bridge
dbr=whbd$$
dbr_addr=${DOCKER_BRIDGE_ADDR:-10.231.77.1/24}
dockerd_pid=
start_dockerd() { # extra dockerd flags...
  dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" \
    --pidfile "$work/docker.pid" --host "unix://$work/docker.sock" --bridge "$dbr" "$@" \
    >>"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 150); do docker info >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "dockerd did not come up:" >&2; tail -20 "$work/dockerd.log" >&2
  return 1
}
stop_dockerd() {
  [ -n "${dockerd_pid:-}" ] || return 0
  kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null || true
  dockerd_pid=
  umount_below "$work/docker"
  umount_below "$work/docker-exec"
}
cleanup() {
  set +e  # every step is tried
  stop_dockerd
  unset DOCKER_HOST DOCKER_CONTEXT  # the wharf steps below are on wharf's own store
  "$wharf" rm -f wharf-iperf-srv wharf-iperf-usr >/dev/null 2>&1 || true
  "$wharf" network rm wharf-iperf >/dev/null 2>&1 || true
  scripts/net-forget.sh "$work/root" || true  # the bench store's default network leaves wharf0
  ip link del "$dbr" 2>/dev/null || true
  # docker's rules naming its bench bridge (its own chains stay, as after any dockerd)
  for t in filter nat; do
    iptables -w -t "$t" -S 2>/dev/null | grep -F -- "$dbr" | sed 's/^-A /-D /' |
      while read -r rule; do eval "iptables -w -t $t $rule" || true; done
  done
  umount_below "$work"
  rm -rf "$work"
}
trap cleanup EXIT

umount_below() {
  awk -v d="$1" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# The image: busybox plus /usr/bin/iperf3 and every library ldd names, at the same paths.
scripts/busybox-rootfs.sh "$work/busybox.tar" >/dev/null
mkdir "$work/rootfs"
tar -C "$work/rootfs" -xf "$work/busybox.tar"
for f in /usr/bin/iperf3 $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
  mkdir -p "$work/rootfs$(dirname "$f")"
  cp -L "$f" "$work/rootfs$f"
done
# Debian's /lib and /lib64 are symlinks to usr/: the copies above went to real directories
tar --numeric-owner --owner=0 --group=0 -C "$work/rootfs" -cf "$work/iperf3.tar" .
"$wharf" import "$work/iperf3.tar" iperf3:latest >/dev/null
"$wharf" run --rm iperf3:latest iperf3 --version >/dev/null

host_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | grep -o 'src [0-9.]*' | cut -d' ' -f2)
host_ip=${host_ip:-$(hostname -I | cut -d' ' -f1)}

# Gbit/s received of one iperf3 run (JSON on stdin)
gbits() {
  python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}
# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# an iperf3 client run, retried while the server is not listening yet; prints Gbit/s
client() { # command...
  local out
  for _ in $(seq 50); do
    if out=$("$@" -J -t "$T" 2>/dev/null) && [ -n "$out" ]; then
      echo "$out" | gbits
      return 0
    fi
    sleep 0.2
  done
  echo "iperf3 client failed: $*" >&2
  return 1
}
measure() { # command... ; median of REPS client runs
  for _ in $(seq "$REPS"); do client "$@"; done | median
}

declare -A gbps
# host → container through a published port, and (with C2C=1) container → container on a
# user network; $1 names the engine, $2.. is its CLI
C2C=1
bench() {
  local name=$1; shift
  local id port ip
  id=$("$@" run -d -p 5201 --name "$name-iperf-srv" iperf3:latest iperf3 -s)
  port=$("$@" port "$id" 5201/tcp | head -1 | sed 's/.*://')
  gbps[$name,local]=$(measure iperf3 -c 127.0.0.1 -p "$port")
  gbps[$name,hostip]=$(measure iperf3 -c "$host_ip" -p "$port")
  "$@" rm -f "$id" >/dev/null
  if [ "$C2C" = 1 ]; then
    "$@" network create "$name-iperf" >/dev/null
    id=$("$@" run -d --network "$name-iperf" --name "$name-iperf-usr" iperf3:latest iperf3 -s)
    ip=$("$@" inspect "$id" | python3 -c 'import json,sys
print([n["IPAddress"] for n in json.load(sys.stdin)[0]["NetworkSettings"]["Networks"].values()][0])')
    gbps[$name,c2c]=$(measure "$@" run --rm --network "$name-iperf" iperf3:latest iperf3 -c "$ip")
    "$@" rm -f "$id" >/dev/null
    "$@" network rm "$name-iperf" >/dev/null
  fi
}

names=(wharf)
bench wharf "$wharf"

if command -v dockerd >/dev/null; then
  export DOCKER_HOST=unix://$work/docker.sock DOCKER_CONFIG=$work/docker-cfg
  ip link add "$dbr" type bridge
  ip addr add "$dbr_addr" dev "$dbr"
  ip link set "$dbr" up
  start_dockerd
  docker import "$work/iperf3.tar" iperf3:latest >/dev/null
  bench docker docker
  names+=(docker)
  stop_dockerd
  start_dockerd --userland-proxy=false
  # (no user network again: the proxy only carries host → published port)
  C2C=0 bench docker-noproxy docker
  gbps[docker-noproxy,c2c]=${gbps[docker,c2c]}
  names+=(docker-noproxy)
  stop_dockerd
fi

echo "iperf3 throughput, Gbit/s (median of $REPS runs of ${T}s; host $host_ip, $(nproc) cores):"
printf "  %-15s %22s %22s %22s\n" engine "host→127.0.0.1:port" "host→$host_ip:port" "container→container"
for n in "${names[@]}"; do
  printf "  %-15s %22s %22s %22s\n" "$n" "${gbps[$n,local]}" "${gbps[$n,hostip]}" "${gbps[$n,c2c]:-}"
done
for n in "${names[@]}"; do
  [ "$n" = wharf ] && continue
  printf "  wharf vs %-15s 127.0.0.1 %.2fx   host ip %.2fx   container→container %.2fx\n" "$n" \
    "$(echo "${gbps[wharf,local]} / ${gbps[$n,local]}" | bc -l)" \
    "$(echo "${gbps[wharf,hostip]} / ${gbps[$n,hostip]}" | bc -l)" \
    "$(echo "${gbps[wharf,c2c]} / ${gbps[$n,c2c]}" | bc -l)"
done
