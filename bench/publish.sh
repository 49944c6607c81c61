#!/usr/bin/env bash
# 50 containers each with a published port, side by side: `run -d -p 80 busybox httpd -f -p 80`
# fifty times on the default bridge, one request through each published port, then one
# `rm -f` of all of them, with wharf and docker (when installed; docker with its default
# userland proxy, which is one docker-proxy process per port). Reports wall times, the
# firewall rules per container (wharf: nftables rules carrying the container's owner
# comment) and docker-proxy processes. Not a test: numbers go into issue notes.
#
#   bench/publish.sh            # N=50 by default
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
scripts/build-static.sh >/dev/null
wharf=$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release/wharf
work=$(mktemp -d /var/tmp/wharf-bench.XXXXXX)
export WHARF_ROOT=$work/root WHARF_RUNROOT=$work/run
cleanup() {
  [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null || true
  scripts/net-forget.sh "$work/root" || true
  rm -rf "$work"
}
trap cleanup EXIT
scripts/busybox-rootfs.sh "$work/busybox.tar" >/dev/null
"$wharf" import "$work/busybox.tar" busybox:latest >/dev/null
"$wharf" run --rm busybox true

now() { date +%s.%N; }
# one HTTP request to 127.0.0.1:$1 (bash's /dev/tcp), retried until the server answers
fetch() {
  for _ in $(seq 200); do
    if exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null; then
      printf 'GET / HTTP/1.0\r\n\r\n' >&3
      if timeout 2 cat <&3 | grep -q "HTTP/1"; then exec 3<&-; return 0; fi
      exec 3<&-
    fi
    sleep 0.01
  done
  echo "no answer on port $1" >&2
  return 1
}

declare -A start_s reach_s rm_s rules
bench() { # name, command...
  local name=$1; shift
  local ids=() ports=() t0 t1 t2 t3
  t0=$(now)
  for _ in $(seq "$N"); do
    ids+=("$("$@" run -d -p 80 busybox httpd -f -p 80 -h /)")
  done
  t1=$(now)
  for id in "${ids[@]}"; do ports+=("$("$@" port "$id" 80/tcp | head -1 | sed 's/.*://')"); done
  for p in "${ports[@]}"; do fetch "$p"; done
  t2=$(now)
  if [ "$name" = wharf ] && command -v nft >/dev/null; then
    rules[$name]=$(nft list table ip wharf 2>/dev/null | grep -c "wharf:ctr:${ids[0]}" || true)
  elif [ "$name" = docker ]; then
    rules[$name]="$(pgrep -c docker-proxy || true) docker-proxy"
  fi
  "$@" rm -f "${ids[@]}" >/dev/null
  t3=$(now)
  start_s[$name]=$(echo "$t1 - $t0" | bc)
  reach_s[$name]=$(echo "$t2 - $t1" | bc)
  rm_s[$name]=$(echo "$t3 - $t2" | bc)
}

names=(wharf)
bench wharf "$wharf"
if command -v dockerd >/dev/null; then
  if ! docker info >/dev/null 2>&1; then
    dockerd --data-root "$work/docker" --host "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    export DOCKER_HOST=unix://$work/docker.sock
    for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  docker import "$work/busybox.tar" busybox:latest >/dev/null
  docker run --rm busybox true
  bench docker docker
  names+=(docker)
fi

echo "$N containers with a published port (run -d -p 80 busybox httpd), one request each, rm -f:"
printf "  %-7s %10s %12s %10s  %s\n" engine "start (s)" "requests (s)" "rm -f (s)" "per container"
for n in "${names[@]}"; do
  printf "  %-7s %10.2f %12.2f %10.2f  %s\n" "$n" "${start_s[$n]}" "${reach_s[$n]}" "${rm_s[$n]}" \
    "${rules[$n]:-?} $([ "$n" = wharf ] && echo 'nftables rules')"
done
for n in "${names[@]}"; do
  [ "$n" = wharf ] && continue
  printf "  %s vs wharf: start %.1fx, rm %.1fx\n" "$n" \
    "$(echo "${start_s[$n]} / ${start_s[wharf]}" | bc -l)" \
    "$(echo "${rm_s[$n]} / ${rm_s[wharf]}" | bc -l)"
done
