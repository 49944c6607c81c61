#!/usr/bin/env bash
# Container start latency, side by side: `run --rm busybox true` with wharf, docker and podman
# (each when installed), the same busybox rootfs imported into each. Reports hyperfine medians
# and ratios. Not a test: numbers go into issue notes.
#
#   bench/start.sh [--install]     # --install: apt-get install docker.io podman runc hyperfine
set -euo pipefail
cd "$(dirname "$0")/.."
unset DOCKER_HOST DOCKER_CONTEXT  # wharf measured on its local store, not as an API client
export DEBIAN_FRONTEND=noninteractive
if [ "${1:-}" = --install ]; then
  apt-get update -qq
  apt-get install -y -qq docker.io podman runc hyperfine busybox-static >/dev/null
fi
command -v hyperfine >/dev/null || { echo "hyperfine is required: apt-get install hyperfine" >&2; exit 1; }
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
scripts/busybox-rootfs.sh "$work/busybox.tar"
"$wharf" import "$work/busybox.tar" busybox:latest >/dev/null
"$wharf" run --rm busybox true   # warm the seccomp cache like any host after its first start

# wharf on its default network (docker's `bridge`), and with --network none like "docker"
cmds=("$wharf run --rm busybox true" "$wharf run --rm --network none busybox true")
names=("wharf" "wharf-none")
# the private dockerd is named with docker's -H, not DOCKER_HOST: wharf honours DOCKER_HOST
# too (it would become an API client of that dockerd)
dh=()
if command -v dockerd >/dev/null; then
  if ! docker info >/dev/null 2>&1; then
    dockerd --data-root "$work/docker" --host "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    dh=(-H "unix://$work/docker.sock")
    for _ in $(seq 100); do docker "${dh[@]}" info >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  docker "${dh[@]}" import "$work/busybox.tar" busybox:latest >/dev/null
  docker "${dh[@]}" run --rm busybox true
  cmds+=("docker ${dh[*]} run --rm --network none busybox true"); names+=("docker")
  cmds+=("docker ${dh[*]} run --rm busybox true"); names+=("docker-bridge")
fi
if command -v podman >/dev/null; then
  podman import "$work/busybox.tar" busybox:latest >/dev/null 2>&1 || true
  # out of the box podman fails here (crun: cgroup layout; runc: rlimits above the hard
  # limit without CAP_SYS_RESOURCE), so give it runc and limits it may set
  pod="podman run --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --rm --network none busybox true"
  if $pod >/dev/null 2>&1; then
    cmds+=("$pod"); names+=("podman")
  else
    echo "podman cannot run a container here; skipped" >&2
  fi
fi

hyperfine -N --warmup 5 --runs "${RUNS:-50}" --export-json "$work/start.json" "${cmds[@]}" >&2
python3 - "$work/start.json" "${names[@]}" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
med = {n: r["median"] * 1000 for n, r in zip(names, res)}
print("container start, `run --rm busybox true`, median of hyperfine runs:")
for n in names:
    line = f"  {n:13s} {med[n]:8.2f} ms"
    if n != "wharf":
        line += f"   ({med[n] / med['wharf']:.1f}x wharf)"
    print(line)
PY
