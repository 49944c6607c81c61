#!/usr/bin/env bash
# 50 detached containers, side by side: `run -d busybox sleep 1000` fifty times, then one
# `rm -f` of all of them, with wharf, docker and podman (each when installed; network none for
# all). Reports wall times and the total RSS of the per-container helper processes: wharf's
# monitors, containerd-shim-runc-v2 (docker), conmon (podman). Not a test: numbers go into
# issue notes.
#
#   bench/detached.sh            # N=50 by default
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
scripts/build-static.sh >/dev/null
wharf=$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release/wharf
work=$(mktemp -d /var/tmp/wharf-bench.XXXXXX)
export WHARF_ROOT=$work/root WHARF_RUNROOT=$work/run
cleanup() {
  [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null || true
  scripts/net-forget.sh "$work/root" || true  # the bench store's default network leaves wharf0
  rm -rf "$work"
}
trap cleanup EXIT
scripts/busybox-rootfs.sh "$work/busybox.tar" >/dev/null
"$wharf" import "$work/busybox.tar" busybox:latest >/dev/null
"$wharf" run --rm busybox true   # warm the seccomp cache

now() { date +%s.%N; }
# total VmRSS (kB) of the processes whose command line matches $1
rss_of() {
  local total=0 n=0 pid kb
  for pid in $(pgrep -f -- "$1" || true); do
    kb=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0})); n=$((n + 1))
  done
  echo "$total $n"
}

declare -A start_s rm_s rss_kb helpers
bench() { # name, helper pattern, command prefix...
  local name=$1 pattern=$2; shift 2
  local ids=() t0 t1 t2
  t0=$(now)
  for _ in $(seq "$N"); do ids+=("$("$@" run -d $RUN_OPTS busybox sleep 1000)"); done
  t1=$(now)
  sleep 2
  read -r kb n < <(rss_of "$pattern")
  "$@" rm -f ${RM_OPTS:-} "${ids[@]}" >/dev/null
  t2=$(now)
  start_s[$name]=$(echo "$t1 - $t0" | bc)
  rm_s[$name]=$(echo "$t2 - $t1 - 2" | bc)
  rss_kb[$name]=$kb; helpers[$name]=$n
}

names=(wharf)
RUN_OPTS="--network none" bench wharf "__monitor $WHARF_ROOT" "$wharf"

if command -v dockerd >/dev/null; then
  if ! docker info >/dev/null 2>&1; then
    dockerd --data-root "$work/docker" --host "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    export DOCKER_HOST=unix://$work/docker.sock
    for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  docker import "$work/busybox.tar" busybox:latest >/dev/null
  docker run --rm --network none busybox true
  RUN_OPTS="--network none" bench docker "containerd-shim-runc-v2" docker
  names+=(docker)
fi
if command -v podman >/dev/null; then
  podman import "$work/busybox.tar" busybox:latest >/dev/null 2>&1 || true
  popts="--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --network none"
  if podman run --rm $popts busybox true >/dev/null 2>&1; then
    # podman takes --runtime as a global flag too; keep it on `run` like bench/start.sh
    # podman's rm -f stops with the 10 s timeout first; -t 0 kills at once like docker/wharf
    RUN_OPTS="$popts" RM_OPTS="-t 0" bench podman "^/usr/bin/conmon" podman
    names+=(podman)
  else
    echo "podman cannot run a container here; skipped" >&2
  fi
fi

echo "$N detached containers (run -d busybox sleep 1000), then rm -f of all:"
printf "  %-7s %10s %10s %12s %9s %14s\n" engine "start (s)" "rm -f (s)" "helpers" "RSS (MB)" "RSS/container"
for n in "${names[@]}"; do
  printf "  %-7s %10.2f %10.2f %12s %9.1f %11.0f kB\n" "$n" "${start_s[$n]}" "${rm_s[$n]}" \
    "${helpers[$n]}" "$(echo "${rss_kb[$n]} / 1024" | bc -l)" "$(echo "${rss_kb[$n]} / ${helpers[$n]:-1}" | bc -l)"
done
for n in "${names[@]}"; do
  [ "$n" = wharf ] && continue
  printf "  %s vs wharf: start %.1fx, rm %.1fx, helper RSS %.1fx\n" "$n" \
    "$(echo "${start_s[$n]} / ${start_s[wharf]}" | bc -l)" \
    "$(echo "${rm_s[$n]} / ${rm_s[wharf]}" | bc -l)" \
    "$(echo "${rss_kb[$n]} / ${rss_kb[wharf]}" | bc -l)"
done
