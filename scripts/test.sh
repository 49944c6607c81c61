#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + root-level integration tests, and the
# static release build. Run as root (namespaces, mounts, cgroups) on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the tests create namespaces, mounts and cgroups" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "busybox-static is required: apt-get install busybox-static" >&2; exit 1; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/build-static.sh
cargo test --workspace --locked --no-fail-fast -- --test-threads="${WHARF_TEST_THREADS:-4}"
