#!/usr/bin/env bash
# The .deb's life in a Debian 12 root (tests/packages.rs runs this under
# `unshare --mount --net --pid --fork`: every mount, process, bridge and firewall rule made
# here dies with the namespaces). Prints "ok: STEP" per step; any failure exits non-zero
# with "FAIL: why".
#   deb-lifecycle.sh ROOT OLD.deb NEW.deb BUSYBOX.tar
set -euo pipefail
root=$1 old=$2 new=$3 bbtar=$4
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

mount --make-rprivate /
ip link set lo up
# the root is a mount point, as a host's / is (wharf makes / rprivate in its containers)
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
cp "$old" "$root/tmp/old.deb"
cp "$new" "$root/tmp/new.deb"
cp "$bbtar" "$root/tmp/busybox.tar"

# 1. the package manager explains the conflict with a docker package: wharf Conflicts with and
# Replaces docker.io, so dpkg says so and removes it (apt asks first)
mkdir -p "$root/tmp/fake/DEBIAN"
printf 'Package: docker.io\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: fake docker.io\n' \
  > "$root/tmp/fake/DEBIAN/control"
in_root dpkg-deb --build /tmp/fake /tmp/docker.io.deb >/dev/null
in_root dpkg -i /tmp/docker.io.deb >/dev/null
out=$(in_root dpkg -i /tmp/old.deb 2>&1) || fail "install over docker.io: $out"
echo "$out" | grep -q "will remove docker.io in favour of wharf" || fail "no conflict message: $out"
if in_root dpkg -s docker.io 2>/dev/null | grep -q "^Status: install ok installed"; then fail "docker.io still installed"; fi
in_root dpkg -P wharf docker.io >/dev/null 2>&1 || true
ok "conflict with docker.io explained by dpkg"

# 2. install the old version with a real /usr/bin/docker present: never overwritten
printf '#!/bin/sh\necho real-docker\n' > "$root/usr/bin/docker"
chmod 0755 "$root/usr/bin/docker"
in_root dpkg -i /tmp/old.deb > "$root/tmp/install.log" 2>&1 || { cat "$root/tmp/install.log"; fail "install old"; }
grep -q "wharf: host check" "$root/tmp/install.log" || fail "postinst printed no check summary"
[ "$(in_root docker)" = real-docker ] || fail "a real /usr/bin/docker was replaced"
in_root getent group wharf >/dev/null || fail "no group wharf"
[ -d "$root/run/wharf" ] || fail "postinst made no /run/wharf without systemd"
ok "install without systemd, real docker kept, group and /run/wharf made"
rm "$root/usr/bin/docker"

# 3. upgrade: the admin's conffile survives, the alternative appears, scripts idempotent
echo '{"log-driver": "json-file", "log-opts": {"max-size": "1m", "max-file": "2"}}' > "$root/etc/wharf/daemon.json"
in_root dpkg -i /tmp/new.deb > "$root/tmp/upgrade.log" 2>&1 || { cat "$root/tmp/upgrade.log"; fail "upgrade"; }
newv=$(dpkg-deb -f "$new" Version)
[ "$(in_root dpkg-query -W -f '${Version}' wharf)" = "$newv" ] || fail "version after upgrade"
grep -q '"1m"' "$root/etc/wharf/daemon.json" || fail "the admin's daemon.json was replaced"
[ "$(readlink "$root/usr/bin/docker")" = /etc/alternatives/docker ] || fail "no docker alternative link"
[ "$(readlink "$root/etc/alternatives/docker")" = /usr/bin/wharf ] || fail "docker alternative not wharf"
in_root dpkg -i /tmp/new.deb >/dev/null 2>&1 || fail "reinstall"
in_root /var/lib/dpkg/info/wharf.postinst configure "$newv" >/dev/null 2>&1 || fail "postinst twice"
ok "upgrade $(dpkg-deb -f "$old" Version) -> $newv keeps conffile; docker -> wharf; idempotent"

# 4. the seed's smoke test, through the alternatives link, in-process
in_root wharf policy check /etc/wharf/policy.toml >/dev/null || fail "shipped policy.toml refused"
in_root docker import /tmp/busybox.tar busybox >/dev/null || fail "docker import"
out=$(in_root docker run --rm busybox echo hello) || fail "docker run: $out"
[ "$out" = hello ] || fail "docker run said '$out'"
id=$(in_root docker create --name smoke busybox true) || fail "create"
in_root docker rm smoke >/dev/null
[ -n "$id" ] || fail "no id"
left=$(find /sys/fs/cgroup -maxdepth 4 -type d -name "*$id*" 2>/dev/null)
[ -z "$left" ] || fail "cgroups left: $left"
[ -z "$(in_root docker ps -aq)" ] || fail "containers left"
ok "docker run --rm busybox echo hello (alternatives link)"

# 5. the API server by socket activation (what wharf.socket does), the real docker CLI
sock=$root/run/wharf/wharf.sock
systemd-socket-activate -l "$sock" chroot "$root" /usr/bin/wharf system service > "$root/tmp/service.log" 2>&1 &
act=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "no socket"
out=$(/usr/bin/docker -H "unix://$sock" run --rm busybox echo hello-api 2>&1) || { cat "$root/tmp/service.log"; fail "API run: $out"; }
[ "$out" = hello-api ] || fail "API run said '$out'"
kill "$act"; wait "$act" 2>/dev/null || true
ok "socket-activated API: docker -H run --rm busybox echo"

# 6. remove: no units, no alternative, no processes; data and conffiles kept
[ -d "$root/var/lib/wharf" ] || fail "no store to keep"
in_root dpkg -r wharf >/dev/null 2>&1 || fail "remove"
for f in usr/bin/wharf usr/bin/docker etc/alternatives/docker usr/lib/systemd/system/wharf.socket \
  usr/lib/systemd/system/wharf.service usr/lib/systemd/system/wharf-boot.service; do
  [ -e "$root/$f" ] || [ -L "$root/$f" ] && fail "$f left after remove"
done
in_root update-alternatives --query docker >/dev/null 2>&1 && fail "docker alternative left"
[ -d "$root/var/lib/wharf" ] || fail "remove deleted /var/lib/wharf"
[ -f "$root/etc/wharf/daemon.json" ] || fail "remove deleted a conffile"
# this pid namespace's processes (its procfs is the root's /proc)
for p in "$root"/proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null || true)
  case $exe in *wharf*) fail "process ${p##*/} ($exe) left after remove" ;; esac
done
ok "remove: units, binary, alternative, processes gone; data and config kept"

# 7. purge: the data goes, without a question
in_root dpkg -P wharf >/dev/null 2>&1 || fail "purge"
[ -e "$root/var/lib/wharf" ] && fail "/var/lib/wharf left after purge"
[ -e "$root/etc/wharf" ] && fail "/etc/wharf left after purge"
in_root dpkg -s wharf >/dev/null 2>&1 && fail "still known to dpkg"
ok "purge: /var/lib/wharf and /etc/wharf gone"
