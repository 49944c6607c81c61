#!/usr/bin/env bash
# Release build of the single static binary (glibc static-pie) and a check that it is static.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target x86_64-unknown-linux-gnu -p wharf
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/wharf
if { ldd "$bin" 2>&1 || true; } | grep -Eq "not a dynamic executable|statically linked"; then
  echo "static binary: $bin ($(du -h "$bin" | cut -f1))"
else
  echo "error: $bin is not statically linked:" >&2; ldd "$bin" >&2; exit 1
fi
