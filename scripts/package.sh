#!/usr/bin/env bash
# Build dist/wharf_<version>_amd64.deb and dist/wharf-<version>-1.x86_64.rpm from the static
# binary (docs/packaging.md). Reproducible: the same binary, tree and SOURCE_DATE_EPOCH give
# the same bytes (fixed owners, sorted entries, mtimes clamped, single-threaded xz).
#
# Environment:
#   WHARF_BIN          the static binary to package (default: scripts/build-static.sh's)
#   WHARF_PKG_VERSION  the version (default: Cargo.toml's, +git<commits>.<hash> off a tag)
#   WHARF_DIST         output directory (default: dist)
#   SOURCE_DATE_EPOCH  timestamps (default: the last commit's time)
# Needs dpkg-deb and rpmbuild (Debian: dpkg, rpm).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
export LC_ALL=C TZ=UTC
umask 022

for tool in dpkg-deb rpmbuild gzip; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required (apt-get install dpkg rpm)" >&2; exit 1; }
done

bin=${WHARF_BIN:-}
if [ -z "$bin" ]; then
  scripts/build-static.sh >&2
  bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/wharf
fi
[ -x "$bin" ] || { echo "error: no binary at $bin" >&2; exit 1; }
bin=$(realpath "$bin")

# Version: Cargo.toml's [workspace.package] version; on a commit tagged v<version> that alone,
# else <version>+git<commit count>.<hash> (sorts after the release and by commit count, in
# both dpkg and rpm; bump Cargo.toml right after a release).
base=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "${WHARF_PKG_VERSION:-}" ]; then
  version=$WHARF_PKG_VERSION
elif git describe --exact-match --tags --match "v$base" >/dev/null 2>&1; then
  version=$base
else
  version="$base+git$(git rev-list --count HEAD).$commit"
fi
case $version in
  *[!A-Za-z0-9.+~]* | [!0-9]*) echo "error: version '$version': digits first, then [A-Za-z0-9.+~] only" >&2; exit 1 ;;
esac
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
maintainer=${WHARF_MAINTAINER:-wharf maintainers <wharf-maintainers@example.org>}
maint_email=${maintainer#*<}
maint_email=${maint_email%>}
url=${WHARF_URL:-https://example.org/wharf}
out=${WHARF_DIST:-dist}
mkdir -p "$out"
out=$(realpath "$out")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The files both packages carry, under $1; $2 is the zsh completion directory (Debian's
# vendor-completions, else site-functions).
stage() {
  local d=$1 zshdir=$2
  install -D -m 0755 "$bin" "$d/usr/bin/wharf"
  for u in wharf.socket wharf.service wharf-boot.service; do
    install -D -m 0644 "contrib/systemd/$u" "$d/usr/lib/systemd/system/$u"
  done
  install -D -m 0644 packaging/tmpfiles.conf "$d/usr/lib/tmpfiles.d/wharf.conf"
  install -D -m 0644 packaging/sysusers.conf "$d/usr/lib/sysusers.d/wharf.conf"
  install -D -m 0644 packaging/daemon.json "$d/etc/wharf/daemon.json"
  install -D -m 0644 packaging/policy.toml "$d/etc/wharf/policy.toml"
  # completions and man pages come from the binary being packaged
  mkdir -p "$d/usr/share/bash-completion/completions" "$d$zshdir" \
    "$d/usr/share/fish/vendor_completions.d" "$d/usr/share/man/man1"
  "$bin" completion bash > "$d/usr/share/bash-completion/completions/wharf"
  "$bin" completion zsh > "$d$zshdir/_wharf"
  "$bin" completion fish > "$d/usr/share/fish/vendor_completions.d/wharf.fish"
  "$bin" man "$work/man" >/dev/null
  for m in "$work"/man/*.1; do
    gzip -9nc "$m" > "$d/usr/share/man/man1/$(basename "$m").gz"
  done
  rm -rf "$work/man"
  local doc=$d/usr/share/doc/wharf
  install -D -m 0644 README.md "$doc/README.md"
  for f in daemon.md policy.md packaging.md; do
    install -m 0644 "docs/$f" "$doc/$f"
  done
}

# Every mtime clamped, modes normalized: the archives then depend on content alone.
normalize() {
  chmod -R u+rwX,go+rX,go-w "$1"
  find "$1" -depth -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

changelog_date_deb=$(date -u -d "@$SOURCE_DATE_EPOCH" -R)
changelog_date_rpm=$(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')
relations="docker, docker-ce, docker-ee, docker-engine, docker.io, lxc-docker, moby-engine, podman-docker"

# ---- .deb
deb=$work/deb
stage "$deb" /usr/share/zsh/vendor-completions
install -m 0644 packaging/copyright "$deb/usr/share/doc/wharf/copyright"
printf 'wharf (%s) unstable; urgency=medium\n\n  * Built from git %s.\n\n -- %s  %s\n' \
  "$version" "$commit" "$maintainer" "$changelog_date_deb" | gzip -9n > "$deb/usr/share/doc/wharf/changelog.gz"
install -D -m 0644 packaging/deb/lintian-overrides "$deb/usr/share/lintian/overrides/wharf"
mkdir -p "$deb/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$deb/DEBIAN/$s"; done
printf '/etc/wharf/daemon.json\n/etc/wharf/policy.toml\n' > "$deb/DEBIAN/conffiles"
(cd "$deb" && find etc usr -type f ! -path 'etc/*' -print0 | sort -z | xargs -0 md5sum) > "$deb/DEBIAN/md5sums"
size=$(du -sk --apparent-size "$deb/usr" "$deb/etc" | awk '{s += $1} END {print s}')
cat > "$deb/DEBIAN/control" <<EOF
Package: wharf
Version: $version
Architecture: amd64
Maintainer: $maintainer
Installed-Size: $size
Depends: passwd
Conflicts: $relations
Replaces: $relations
Provides: docker-engine
Section: admin
Priority: optional
Homepage: $url
Description: Docker-compatible container engine in one static binary
 wharf runs Docker images without a daemon: one static binary with its own
 container runtime (namespaces, overlayfs, cgroups v1/v2/hybrid, seccomp), the
 docker command line (docker is an alternative for wharf), and the Docker
 Engine API on /run/wharf/wharf.sock through systemd socket activation
 (wharf.socket). It runs on kernels from 3.10; "wharf check" says what this
 host supports and what degrades.
EOF
normalize "$deb"
debfile=$out/wharf_${version}_amd64.deb
dpkg-deb --root-owner-group --threads-max=1 -Zxz -z9 --build "$deb" "$debfile" >/dev/null

# ---- .rpm
rs=$work/rpmstage
stage "$rs" /usr/share/zsh/site-functions
install -D -m 0644 LICENSE "$rs/usr/share/licenses/wharf/LICENSE"
normalize "$rs"
sed -e "s|@STAGE@|$rs|g" -e "s|@VERSION@|$version|g" -e "s|@URL@|$url|g" \
  -e "s|@LICENSE@|/usr/share/licenses/wharf/LICENSE|" \
  -e "s|@CHANGELOG_DATE@|$changelog_date_rpm|" -e "s|@MAINTAINER_EMAIL@|$maint_email|" -e "s|@MAINTAINER@|$maintainer|" \
  -e "s|@COMMIT@|$commit|" packaging/rpm/wharf.spec.in > "$work/wharf.spec"
mkdir -p "$work/rpm"
HOME=$work rpmbuild -bb --quiet \
  --define "_topdir $work/rpm" \
  --define "_rpmdir $work/rpm/out" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "_buildhost reproducible" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_epoch 1" \
  --define "source_date_epoch_from_changelog 0" \
  --define "_binary_payload w9.xzdio" \
  --define "_binary_filedigest_algorithm 8" \
  --define "_build_id_links none" \
  --define "debug_package %{nil}" \
  --define "__os_install_post %{nil}" \
  --define "_unpackaged_files_terminate_build 1" \
  --define "_dbpath $work/rpmdb" \
  "$work/wharf.spec" >/dev/null
rpmfile=$out/wharf-${version}-1.x86_64.rpm
cp "$work/rpm/out/wharf-${version}-1.x86_64.rpm" "$rpmfile"
touch -d "@$SOURCE_DATE_EPOCH" "$debfile" "$rpmfile"
echo "$debfile"
echo "$rpmfile"
