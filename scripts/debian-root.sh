#!/usr/bin/env bash
# A Debian 12 (bookworm) minbase root at DIR, for the package tests (tests/packages.rs):
# debootstrap from the Debian mirror this machine's apt uses, cached under
# /var/cache/wharf-test (the downloaded debs, then the finished root), so reruns take seconds.
#   scripts/debian-root.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
cache=${WHARF_TEST_CACHE:-/var/cache/wharf-test}
root_tar=$cache/bookworm-minbase-root.tar.zst
debs_tgz=$cache/bookworm-minbase.tgz
mkdir -p "$cache" "$dir"
if [ ! -s "$root_tar" ]; then
  command -v debootstrap >/dev/null || { echo "error: debootstrap is required (apt-get install debootstrap)" >&2; exit 1; }
  # the first deb.debian.org-style mirror of apt's sources that is not the security archive
  mirror=${WHARF_DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n -e 's/^deb \(\[[^]]*\] \)\{0,1\}\(https\{0,1\}:[^ ]*\) .*/\2/p' -e 's/^URIs: *\(https\{0,1\}:[^ ]*\).*/\1/p' |
    grep -v security | grep '/debian/\{0,1\}$' | head -n 1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  tmp=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  if [ ! -s "$debs_tgz" ]; then
    debootstrap --variant=minbase --make-tarball="$tmp/debs.tgz" bookworm "$tmp/work" "$mirror" >&2
    mv "$tmp/debs.tgz" "$debs_tgz"
  fi
  debootstrap --variant=minbase --unpack-tarball="$debs_tgz" bookworm "$tmp/root" "$mirror" >&2
  rm -rf "$tmp/root/var/cache/apt/archives/"*.deb
  tar --zstd --numeric-owner -C "$tmp/root" -cf "$tmp/root.tar.zst" .
  mv "$tmp/root.tar.zst" "$root_tar"
fi
tar --zstd --numeric-owner -C "$dir" -xf "$root_tar"
