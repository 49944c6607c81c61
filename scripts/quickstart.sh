#!/usr/bin/env bash
# Builds wharf as one static binary, makes a busybox image from Debian's busybox-static (no
# registry needed) and runs a container with it. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! [ -x /bin/busybox ] || ! command -v gcc >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq busybox-static gcc >/dev/null
fi
. scripts/ensure-rust.sh
scripts/build-static.sh
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/wharf
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
scripts/busybox-rootfs.sh "$tmp/busybox.tar"
"$bin" import "$tmp/busybox.tar" busybox:latest >/dev/null
"$bin" images busybox
"$bin" run --rm busybox echo hello
