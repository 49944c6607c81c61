#!/usr/bin/env bash
# `build`, side by side in one run: wharf, docker's classic builder and BuildKit (Debian's
# docker.io 20.10 CLI has BuildKit built in: DOCKER_BUILDKIT=1) on a private dockerd, the same
# busybox rootfs imported into each. RUN steps have no network in all three (wharf's are
# `none`; the private dockerd has no bridge, so BuildKit gets `--network none`). Reports hyperfine medians and ratios for
#   cold    a 10-step Dockerfile (5 RUN, 3 COPY, ENV, CMD) with --no-cache
#   per-RUN (cold build with 10 more small RUN steps - cold build) / 10
#   cached  the same build again, every step from the cache
#   context a cached build of a 500 MB context (50 x 10 MB files; one small file copied):
#           wharf hashes it (the context digest), docker classic tars and sends it
# Not a test: numbers go into issue notes. The machine may be shared: say so with them.
#
#   bench/build.sh                 # WHARF=path/to/wharf to skip the release build; RUNS=n
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine is required: apt-get install hyperfine" >&2; exit 1; }
if [ -z "${WHARF:-}" ]; then
  scripts/build-static.sh >/dev/null
  WHARF=$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release/wharf
fi
wharf=$WHARF
runs=${RUNS:-5}
work=$(mktemp -d /var/tmp/wharf-bench-build.XXXXXX)
export WHARF_ROOT=$work/root WHARF_RUNROOT=$work/run
cleanup() {
  if [ -n "${dockerd_pid:-}" ]; then kill "$dockerd_pid" 2>/dev/null || true; wait "$dockerd_pid" 2>/dev/null || true; fi
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  scripts/net-forget.sh "$work/root" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
scripts/busybox-rootfs.sh "$work/busybox.tar"
"$wharf" import "$work/busybox.tar" busybox:latest >/dev/null

# the project: 5 RUN, 3 COPY, ENV, CMD after FROM
ctx=$work/ctx
mkdir -p "$ctx/src"
for i in $(seq 20); do head -c 4096 /dev/urandom > "$ctx/src/f$i"; done
echo "config" > "$ctx/app.conf"
echo "#!/bin/sh" > "$ctx/run.sh"
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app
COPY src/ /app/src/
RUN mkdir -p /app/data && echo one > /app/data/1
RUN ls /app/src > /app/list
COPY app.conf /etc/app.conf
RUN cat /etc/app.conf > /app/conf.copy
RUN echo built > /built
COPY run.sh /app/run.sh
RUN chmod 755 /app/run.sh
CMD ["/app/run.sh"]
EOF
ctx_more=$work/ctx-more
cp -a "$ctx" "$ctx_more"
for i in $(seq 10); do echo "RUN echo $i > /r$i" >> "$ctx_more/Dockerfile"; done
big=$work/ctx-big
mkdir -p "$big"
for i in $(seq 50); do head -c $((10 << 20)) /dev/urandom > "$big/blob$i"; done
echo small > "$big/small"
printf 'FROM busybox\nCOPY small /small\n' > "$big/Dockerfile"

names=(wharf)
cold=("$wharf build --no-cache -q $ctx")
more=("$wharf build --no-cache -q $ctx_more")
cached=("$wharf build -q $ctx")
bigc=("$wharf build -q $big")
"$wharf" build -q "$ctx" >/dev/null
"$wharf" build -q "$big" >/dev/null

if command -v dockerd >/dev/null && [ -x /usr/bin/docker ]; then
  dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
    --host "unix://$work/docker.sock" --bridge none --iptables=false --ip-masq=false \
    >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST=unix://$work/docker.sock DOCKER_CONFIG=$work/docker-config
  for _ in $(seq 100); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.2; done
  /usr/bin/docker import "$work/busybox.tar" busybox:latest >/dev/null
  d=/usr/bin/docker
  names+=(docker-classic)
  cold+=("env DOCKER_BUILDKIT=0 $d build --no-cache -q $ctx")
  more+=("env DOCKER_BUILDKIT=0 $d build --no-cache -q $ctx_more")
  cached+=("env DOCKER_BUILDKIT=0 $d build -q $ctx")
  bigc+=("env DOCKER_BUILDKIT=0 $d build -q $big")
  DOCKER_BUILDKIT=0 $d build -q "$ctx" >/dev/null
  DOCKER_BUILDKIT=0 $d build -q "$big" >/dev/null
  if DOCKER_BUILDKIT=1 $d build --network none -q "$ctx" >/dev/null 2>"$work/bk.err"; then
    names+=(buildkit)
    cold+=("env DOCKER_BUILDKIT=1 $d build --network none --no-cache -q $ctx")
    more+=("env DOCKER_BUILDKIT=1 $d build --network none --no-cache -q $ctx_more")
    cached+=("env DOCKER_BUILDKIT=1 $d build --network none -q $ctx")
    bigc+=("env DOCKER_BUILDKIT=1 $d build --network none -q $big")
    DOCKER_BUILDKIT=1 $d build --network none -q "$big" >/dev/null
  else
    echo "BuildKit cannot build here; skipped: $(tail -c 400 "$work/bk.err")" >&2
  fi
fi

bench() {  # name, warmup, commands...
  local name=$1 warmup=$2; shift 2
  hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$work/$name.json" "$@" >&2
}
bench cold 1 "${cold[@]}"
bench more 1 "${more[@]}"
bench cached 2 "${cached[@]}"
bench big 1 "${bigc[@]}"
python3 - "$work" "${names[@]}" <<'PY'
import json, sys
work, names = sys.argv[1], sys.argv[2:]
def med(kind):
    res = json.load(open(f"{work}/{kind}.json"))["results"]
    return {n: r["median"] * 1000 for n, r in zip(names, res)}
cold, more, cached, big = med("cold"), med("more"), med("cached"), med("big")
per_run = {n: (more[n] - cold[n]) / 10 for n in names}
print("build, median of hyperfine runs (ms; ratio = other / wharf):")
for title, m in [("cold, 10 steps (--no-cache)", cold), ("per RUN step", per_run),
                 ("cached rebuild", cached), ("500 MB context, cached", big)]:
    print(f"  {title}:")
    for n in names:
        line = f"    {n:15s} {m[n]:9.1f} ms"
        if n != "wharf" and m["wharf"] > 0:
            line += f"   ({m[n] / m['wharf']:.1f}x wharf)"
        print(line)
PY
