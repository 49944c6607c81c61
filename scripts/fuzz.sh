#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for N seconds each (default 60): layer apply, archive
# load, manifest/index/config parsing, image references, passwd/group,
# docker's value grammars (sizes, durations, cpus, ulimits, env files, -p), DNS queries,
# Dockerfiles and .dockerignore files. Not part of CI's test run.
#   scripts/fuzz.sh [seconds] [target...]
# Crashes land in fuzz/artifacts/<target>/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
# and turn it into a unit test next to the code it broke. Run as root (layer apply creates
# device nodes and sets owners, as it does for real).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
# shellcheck source=scripts/ensure-rust.sh
. scripts/ensure-rust.sh
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz passes -Z flags (sanitizer coverage); the stable compiler accepts them this way.
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
status=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus"
  echo "== $t: ${secs}s" >&2
  # seeds are read, never written (new inputs go to the corpus dir, which git ignores)
  if ! cargo fuzz run --fuzz-dir fuzz --sanitizer "${FUZZ_SANITIZER:-address}" "$t" "$corpus" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1; then
    echo "== $t: FAILED (see fuzz/artifacts/$t/)" >&2
    status=1
  fi
done
exit $status
