#!/usr/bin/env bash
# Image distribution and archives, side by side: pull / push / save / load of a ~1.8 GB,
# 5-layer image (real files from /usr, gzip layers) with wharf, docker, podman and skopeo (each
# when installed) against loopback Debian docker-registry (distribution 2.8) instances.
# Reports hyperfine medians and ratios. Not a test: numbers go into issue notes.
# Every prepare step ends with `sync`, for every tool alike: a run must not pay for the
# write-back of the previous run's gigabytes (nor for the deletion its prepare just did).
#
#   bench/images.sh            # RUNS=3 by default; LAYER_MB=380 per layer (uncompressed)
# Needs root, hyperfine, docker-registry, skopeo, python3; docker (dockerd) and podman optional.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
# BENCH_GROUPS="save load": pull once, untimed (not GROUPS: bash sets that to the user's gids)
GROUPS_=${BENCH_GROUPS:-pull push save load}
want() { case " $GROUPS_ " in *" $1 "*) return 0 ;; esac; return 1; }
LAYER_MB=${LAYER_MB:-380}
for c in hyperfine docker-registry skopeo python3 curl; do
  command -v "$c" >/dev/null || { echo "$c is required" >&2; exit 1; }
done
scripts/build-static.sh >/dev/null
wharf=$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release/wharf
work=$(mktemp -d /var/tmp/wharf-images.XXXXXX)
export WHARF_ROOT=$work/wharf-root WHARF_RUNROOT=$work/wharf-run
pids=()
cleanup() {
  set +e
  if [ -n "${dockerd_pid:-}" ]; then
    docker rmi -f "$ref1" "$ref2" >/dev/null 2>&1
    kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  if [ -n "${have_podman:-}" ]; then
    $podman rmi -af >/dev/null 2>&1
  fi
  # overlay mounts of dockerd/podman/wharf must go before rm -rf
  grep -o " $work[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "== $*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() { # name port -> storage in $work/<name>/storage
  local d=$work/$1
  mkdir -p "$d/storage"
  cat >"$d/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $d/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$2
EOF
  docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$2/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "registry $1 did not start:" >&2; cat "$d/log" >&2; exit 1
}

# ---- the image: 5 layers of real files, ~LAYER_MB MB each, gzip -1 --------------------------
log "building the OCI image (5 x ~${LAYER_MB} MB)"
python3 - "$work/oci" "$LAYER_MB" <<'PY'
import gzip, hashlib, json, os, subprocess, sys, tarfile, concurrent.futures as cf
out, layer_mb = sys.argv[1], int(sys.argv[2])
roots = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/llvm-14", "/usr/lib/jvm", "/usr/share",
         "/usr/bin", "/usr/lib/gcc", "/usr/lib/python3", "/usr/lib/python3.11",
         "/usr/lib/google-cloud-sdk"]
limit = layer_mb << 20
layers, cur, size = [], [], 0
for r in roots:
    for dp, dns, fns in os.walk(r):
        dns.sort()
        for f in sorted(fns):
            p = os.path.join(dp, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not (os.path.islink(p) or os.path.isfile(p)):
                continue
            cur.append(p); size += st.st_size if not os.path.islink(p) else 0
            if size >= limit:
                layers.append(cur); cur, size = [], 0
                if len(layers) == 5:
                    break
        if len(layers) == 5:
            break
    if len(layers) == 5:
        break
assert len(layers) == 5, "not enough files under /usr for 5 layers"
os.makedirs(f"{out}/blobs/sha256")
def build(i):
    tpath = f"{out}/layer{i}.tar"
    with tarfile.open(tpath, "w", format=tarfile.PAX_FORMAT) as t:
        for p in layers[i]:
            try:
                t.add(p, arcname=p.lstrip("/"), recursive=False)
            except OSError:
                pass
    diff = hashlib.sha256()
    with open(tpath, "rb") as f:
        while b := f.read(1 << 20):
            diff.update(b)
    usize = os.path.getsize(tpath)
    subprocess.run(["gzip", "-1", "-n", tpath], check=True)
    g = hashlib.sha256()
    with open(tpath + ".gz", "rb") as f:
        while b := f.read(1 << 20):
            g.update(b)
    gsize = os.path.getsize(tpath + ".gz")
    os.rename(tpath + ".gz", f"{out}/blobs/sha256/{g.hexdigest()}")
    return "sha256:" + diff.hexdigest(), "sha256:" + g.hexdigest(), gsize, usize
with cf.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
    res = list(ex.map(build, range(5)))
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{h}", "wb").write(data)
    return "sha256:" + h, len(data)
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [r[0] for r in res]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(5)],
}, separators=(",", ":")).encode()
cd, cs = blob(config)
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": r[1],
                "size": r[2]} for r in res],
}, separators=(",", ":")).encode()
md, ms = blob(manifest)
json.dump({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
    "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(f"{out}/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{out}/oci-layout", "w"))
u, g = sum(r[3] for r in res), sum(r[2] for r in res)
print(f"image: 5 layers, {u/1e9:.2f} GB uncompressed, {g/1e9:.2f} GB gzip ({g/u:.2f})", file=sys.stderr)
with open(f"{out}/../image-size", "w") as f:
    f.write(f"{u/1e9:.2f} GB uncompressed, {g/1e6:.0f} MB gzip ({g/u:.2f}), layers "
            + ", ".join(f"{r[3]/1e6:.0f}/{r[2]/1e6:.0f} MB" for r in res))
PY

# ---- registries: reg1 holds the image, reg2 is the (wiped) push target ----------------------
p1=$(free_port); start_registry reg1 "$p1"
p2=$(free_port); start_registry reg2 "$p2"
ref1=127.0.0.1:$p1/bench:1
ref2=127.0.0.1:$p2/bench:1
log "pushing the image into reg1 with skopeo"
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:bench" "docker://$ref1"
rm -rf "$work/oci"   # the registry holds it now; save the disk
# wiping reg2's storage between runs is enough: no blob descriptor cache is configured
cat >"$work/wipe-reg2.sh" <<EOF
#!/bin/sh
rm -rf "$work/reg2/storage" && mkdir -p "$work/reg2/storage"
EOF
chmod +x "$work/wipe-reg2.sh"

# ---- engines ---------------------------------------------------------------------------------
have_docker=
if command -v dockerd >/dev/null && command -v docker >/dev/null; then
  dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
    --host "unix://$work/docker.sock" --bridge none --iptables=false --ip6tables=false \
    >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  # docker's CLI reaches the private dockerd through a function (exported to hyperfine's
  # bash), not an exported DOCKER_HOST: wharf honours DOCKER_HOST too and would become an
  # API client of that dockerd
  docker() { DOCKER_HOST="unix://$work/docker.sock" command docker "$@"; }
  export -f docker
  export work
  for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  if docker info >/dev/null 2>&1; then have_docker=1
  else echo "dockerd did not start; docker skipped:" >&2; tail -5 "$work/dockerd.log" >&2; fi
fi
have_podman=
podman="podman --root $work/podman --runroot $work/podman-run --storage-driver overlay"
if command -v podman >/dev/null && $podman info >/dev/null 2>&1; then have_podman=1
else echo "podman does not work here; skipped" >&2; fi

names=() medians=()
bench() { # group name; then pairs of (name, prepare, command)
  local group=$1; shift
  local args=() ns=()
  while [ $# -gt 0 ]; do ns+=("$1"); args+=(--prepare "$2" "$3"); shift 3; done
  log "$group: ${ns[*]}"
  hyperfine --shell=bash --runs "$RUNS" --export-json "$work/$group.json" "${args[@]}" >&2
  while read -r n m; do names+=("$group/$n"); medians+=("$m"); done < <(
    python3 -c 'import json,sys
for n, r in zip(sys.argv[2:], json.load(open(sys.argv[1]))["results"]): print(n, r["median"])' \
      "$work/$group.json" "${ns[@]}")
}

# pull
if ! want pull; then
  "$wharf" pull -q "$ref1" >/dev/null
  [ -n "$have_docker" ] && docker pull -q "$ref1" >/dev/null
fi
want pull && {
set -- wharf "rm -rf $WHARF_ROOT $WHARF_RUNROOT; sync" "$wharf pull -q $ref1"
[ -n "$have_docker" ] && set -- "$@" docker "docker rmi -f $ref1 >/dev/null 2>&1; sync" "docker pull -q $ref1"
[ -n "$have_podman" ] && set -- "$@" podman "$podman rmi -af >/dev/null 2>&1; sync" "$podman pull -q --tls-verify=false $ref1"
set -- "$@" skopeo "rm -rf $work/skopeo-oci; sync" "skopeo copy -q --src-tls-verify=false docker://$ref1 oci:$work/skopeo-oci:bench"
bench pull "$@"
rm -rf "$work/skopeo-oci"
[ -n "$have_podman" ] && $podman rmi -af >/dev/null 2>&1 || true
}

# push (every run into a freshly wiped reg2; the images were pulled from reg1 above)
"$wharf" tag "$ref1" "$ref2"
[ -n "$have_docker" ] && docker tag "$ref1" "$ref2"
want push && {
set -- wharf "$work/wipe-reg2.sh; sync" "$wharf push $ref2"
if [ -n "$have_docker" ]; then
  set -- "$@" docker "$work/wipe-reg2.sh; sync" "docker push -q $ref2"
fi
bench push "$@"
}

# save (the archives are made untimed when only load is measured)
if ! want save; then
  "$wharf" save -o "$work/wharf.tar" "$ref1"
  [ -n "$have_docker" ] && docker save -o "$work/docker.tar" "$ref1"
fi
want save && {
set -- wharf "rm -f $work/wharf.tar; sync" "$wharf save -o $work/wharf.tar $ref1"
[ -n "$have_docker" ] && set -- "$@" docker "rm -f $work/docker.tar; sync" "docker save -o $work/docker.tar $ref1"
bench save "$@"
}

# load (each engine loads its own archive into a store without the image)
want load && {
set -- wharf "$wharf rmi -f $ref1 $ref2 >/dev/null 2>&1; sync" "$wharf load -q -i $work/wharf.tar"
[ -n "$have_docker" ] && set -- "$@" docker "docker rmi -f $ref1 $ref2 >/dev/null 2>&1; sync" "docker load -q -i $work/docker.tar"
bench load "$@"
# the air-gap case: an archive made by `docker save` (uncompressed layers) carried to wharf
if [ -n "$have_docker" ]; then
  bench load-docker-tar wharf "$wharf rmi -f $ref1 $ref2 >/dev/null 2>&1; sync" "$wharf load -q -i $work/docker.tar"
fi
}
archive_sizes="wharf.tar $(du -m "$work/wharf.tar" | cut -f1) MB"
[ -n "$have_docker" ] && archive_sizes+=", docker.tar $(du -m "$work/docker.tar" | cut -f1) MB"

python3 - "$(cat "$work/image-size")" "$archive_sizes" "${names[@]}" -- "${medians[@]}" <<'PY'
import sys
a = sys.argv[3:]
i = a.index("--")
names, meds = a[:i], [float(x) for x in a[i + 1:]]
print(f"image: {sys.argv[1]}")
print(f"archives: {sys.argv[2]}")
print("median of hyperfine runs (ratio = other / wharf, > 1 means wharf is faster):")
med = dict(zip(names, meds))
for n, m in med.items():
    group, tool = n.split("/")
    line = f"  {group:5s} {tool:7s} {m:8.2f} s"
    w = med.get(f"{group}/wharf")
    if tool != "wharf" and w:
        line += f"   {tool}/wharf = {m / w:.2f}"
    print(line)
PY
