#!/usr/bin/env bash
# The Engine API, side by side: the docker CLI against `wharf system service` and against a
# private dockerd (its own data-root, exec-root and socket), in one run. Measures
#   - `docker run --rm --network none busybox true` (target: wharf >= 5x faster),
#   - `docker ps -a` with 100 containers, `docker inspect`, `docker logs` of a 100 MB log,
#   - idle RSS of the service (target <= 15 MB) vs dockerd + containerd, and the peak RSS
#     under 100 parallel clients (curl loops on /containers/json).
# Reports hyperfine medians and ratios. Not a test: numbers go into issue notes.
#
#   bench/api.sh [--install]     # --install: apt-get install docker.io hyperfine curl
#   RUNS=20 LOG_MB=100 CONTAINERS=100 CLIENTS=100 bench/api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ "${1:-}" = --install ]; then
  apt-get update -qq
  apt-get install -y -qq docker.io hyperfine curl busybox-static >/dev/null
fi
for t in hyperfine dockerd docker curl; do
  command -v $t >/dev/null || { echo "$t is required (bench/api.sh --install)" >&2; exit 1; }
done
RUNS=${RUNS:-20} LOG_MB=${LOG_MB:-100} CONTAINERS=${CONTAINERS:-100} CLIENTS=${CLIENTS:-100}
scripts/build-static.sh >/dev/null
wharf=$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release/wharf
work=$(mktemp -d /var/tmp/wharf-bench-api.XXXXXX)
export WHARF_ROOT=$work/root WHARF_RUNROOT=$work/run
wsock=$work/wharf.sock dsock=$work/docker.sock
export DOCKER_CONFIG=$work/docker-config DOCKER_CLI_HINTS=false
mkdir -p "$DOCKER_CONFIG"
W="docker -H unix://$wsock"
D="docker -H unix://$dsock"
cleanup() {
  set +e
  $W rm -f $($W ps -aq 2>/dev/null) >/dev/null 2>&1
  $D rm -f $($D ps -aq 2>/dev/null) >/dev/null 2>&1
  [ -n "${service_pid:-}" ] && kill "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null
  [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
  "$wharf" rm -f $("$wharf" ps -aq 2>/dev/null) >/dev/null 2>&1
  scripts/net-forget.sh "$work/root" >/dev/null 2>&1
  umount -R "$work/docker" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# dockerd and the containerd it started (its child)
docker_pids() { echo "$dockerd_pid" $(pgrep -P "$dockerd_pid" containerd || true); }
sum() { local f=$1 t=0; shift; for p in "$@"; do t=$((t + $($f "$p"))); done; echo $t; }

# --- the image, in both engines
scripts/busybox-rootfs.sh "$work/busybox.tar"
"$wharf" import "$work/busybox.tar" busybox:latest >/dev/null
"$wharf" save -o "$work/busybox-image.tar" busybox:latest

# --- the servers
"$wharf" system service -H "unix://$wsock" >"$work/service.log" 2>&1 &
service_pid=$!
dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --host "unix://$dsock" \
  --pidfile "$work/docker.pid" --bridge=none --iptables=false --ip-masq=false \
  >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 150); do $W version >/dev/null 2>&1 && $D version >/dev/null 2>&1 && break; sleep 0.2; done
$W version >/dev/null && $D version >/dev/null
$D load -i "$work/busybox-image.tar" >/dev/null
$W run --rm --network none busybox true
$D run --rm --network none busybox true
sleep 2
idle_w=$(rss "$service_pid") idle_d=$(sum rss $(docker_pids))

# --- latency: run, ps, inspect, logs
for e in W D; do
  c=${!e}
  for i in $(seq "$CONTAINERS"); do echo "create --network none --name c$i busybox true"; done |
    xargs -P 4 -L 1 $c >/dev/null
  $c run --network none --name biglog busybox \
    sh -c "yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef | head -c $((LOG_MB << 20))" >/dev/null
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/api.json" \
  -n wharf-run "$W run --rm --network none busybox true" \
  -n docker-run "$D run --rm --network none busybox true" \
  -n wharf-ps "$W ps -a" \
  -n docker-ps "$D ps -a" \
  -n wharf-inspect "$W inspect c1" \
  -n docker-inspect "$D inspect c1" >&2
hyperfine --warmup 1 --runs "$(( RUNS < 5 ? RUNS : 5 ))" --export-json "$work/logs.json" \
  -n wharf-logs "$W logs biglog >/dev/null" \
  -n docker-logs "$D logs biglog >/dev/null" >&2

# --- RSS under parallel clients: CLIENTS curl loops of GET /containers/json for 10 s each
load() {
  local sock=$1 end=$((SECONDS + 10)) pids=()
  for _ in $(seq "$CLIENTS"); do
    ( while [ $SECONDS -lt $end ]; do
        curl -s -m 30 -o /dev/null --unix-socket "$sock" http://d/v1.41/containers/json?all=1 || true
      done ) &
    pids+=($!)
  done
  wait "${pids[@]}"   # not the servers, which are jobs of this shell too
}
# VmHWM reset first (clear_refs 5): the peak of this phase only
reset_peak() { for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
reset_peak "$service_pid"; load "$wsock"; peak_w=$(hwm "$service_pid")
reset_peak $(docker_pids); load "$dsock"; peak_d=$(sum hwm $(docker_pids))

python3 - "$work/api.json" "$work/logs.json" "$idle_w" "$idle_d" "$peak_w" "$peak_d" \
  "$CONTAINERS" "$LOG_MB" "$CLIENTS" <<'PY'
import json, sys
res = {}
for f in sys.argv[1:3]:
    for r in json.load(open(f))["results"]:
        res[r["command"]] = r["median"] * 1000
idle_w, idle_d, peak_w, peak_d = (int(x) / 1024 for x in sys.argv[3:7])
n, mb, clients = sys.argv[7:10]
print("docker CLI 28 against wharf system service vs dockerd (medians, ms):")
for what, label in [("run", "run --rm busybox true"), ("ps", f"ps -a ({n} containers)"),
                    ("inspect", "inspect"), ("logs", f"logs ({mb} MB)")]:
    w, d = res[f"wharf-{what}"], res[f"docker-{what}"]
    print(f"  {label:28s} wharf {w:9.1f}   dockerd {d:9.1f}   dockerd/wharf {d / w:5.1f}x")
print("RSS (MB):")
print(f"  idle                         wharf {idle_w:9.1f}   dockerd+containerd {idle_d:7.1f}   {idle_d / idle_w:5.1f}x")
print(f"  peak, {clients} parallel clients    wharf {peak_w:9.1f}   dockerd+containerd {peak_d:7.1f}   {peak_d / peak_w:5.1f}x")
PY
