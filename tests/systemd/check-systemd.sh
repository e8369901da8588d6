#!/bin/sh
# check-systemd.sh: boot systemd (252 on Debian 12) in a container and run
# tests/systemd/driver.py there against the installed unit.
#
# The container is systemd-nspawn -b on an overlay of / (a tmpfs upper
# layer: nothing reaches the host's root), with a private network (only
# loopback: memcached and the fake Discovery run inside), booted into a
# target of its own (basic.target plus the driver: none of the host's
# enabled services start).  The daemon, its unit and man pages go in with
# make install PREFIX=/usr; the source tree is bound read-only at /pcd-src.
#
# Skips (exit 0, saying why) where nspawn cannot run: not root, no
# systemd-nspawn, no overlayfs, or a trial container that does not start.
#
# usage: tests/systemd/check-systemd.sh BUILD   (the build directory)
set -eu

build=${1:?usage: $0 BUILD}
top=$(cd "$(dirname "$0")/../.." && pwd)
limit=${PCD_SYSTEMD_TIMEOUT:-300}

skip() {
	echo "check-systemd: SKIPPED: $*" >&2
	exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn, mount)"
command -v systemd-nspawn >/dev/null || skip "no systemd-nspawn (apt-get install systemd-container)"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd to boot"

t=$(mktemp -d /tmp/pcd-nspawn.XXXXXX)
# The driver's transcript and the console stay in BUILD/systemd.
out=$build/systemd
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
machine=pcd-$(basename "$t" | tr -cd 'a-zA-Z0-9' | tail -c 8)
cleanup() {
	umount "$t/merged" 2>/dev/null || true
	umount "$t" 2>/dev/null || true
	rmdir "$t" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
mount -t tmpfs -o size=256m,mode=0755 tmpfs "$t" || skip "cannot mount a tmpfs"
mkdir -p "$t/upper" "$t/work" "$t/merged"
# The daemon as an operator installs it (into the overlay's upper layer,
# written before the overlay is mounted: overlayfs does not expect changes
# under it).
make -s -C "$top" install BUILD="$build" PREFIX=/usr \
    SYSTEMDUNITDIR=/usr/lib/systemd/system DESTDIR="$t/upper" >/dev/null
rm -f "$t/upper/etc/programs-cached/programs-cached.conf.example"
# Whatever the host has of ours stays out of sight: /etc/programs-cached is
# opaque (the host's secret would meet the unit's condition), and the
# state, a unit or drop-ins the host may have are whited out.
/usr/bin/python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' \
    "$t/upper/etc/programs-cached"
mkdir -p "$t/upper/var/lib/private" "$t/upper/etc/systemd/system"
for p in var/lib/programs-cached var/lib/private/programs-cached \
    etc/systemd/system/programs-cached.service \
    etc/systemd/system/programs-cached.service.d; do
	mknod "$t/upper/$p" c 0 0
done

units=$t/upper/etc/systemd/system
mkdir -p "$units"
cat >"$units/pcd-check.target" <<'UNIT'
[Unit]
Description=programs-cached check-systemd
Requires=basic.target pcd-driver.service
After=basic.target
AllowIsolate=yes
UNIT
cat >"$units/pcd-driver.service" <<'UNIT'
[Unit]
Description=programs-cached check-systemd driver
After=basic.target
[Service]
Type=exec
WorkingDirectory=/pcd-src
Environment=PYTHONDONTWRITEBYTECODE=1
ExecStart=/usr/bin/python3 -m tests.systemd.driver
StandardOutput=file:/pcd-out/driver.log
StandardError=inherit
ExecStopPost=/bin/systemctl poweroff --no-block
UNIT

mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" \
    "$t/merged" || skip "cannot mount an overlay of /"

nspawn="systemd-nspawn -q -D $t/merged -M $machine --register=no --keep-unit
    --link-journal=no --private-network --bind=$out:/pcd-out
    --bind-ro=$top:/pcd-src"
$nspawn /bin/true >"$out/trial.log" 2>&1 ||
    skip "systemd-nspawn cannot start a container here: $(tail -1 "$out/trial.log")"

echo "check-systemd: booting $(systemd-nspawn --version | head -1) in $t"
start=$(date +%s)
rc=0
timeout -k 10 "$limit" $nspawn -b -- systemd.unit=pcd-check.target >"$out/console.log" 2>&1 || rc=$?
cat "$out/driver.log" 2>/dev/null || true
result=$(cat "$out/result" 2>/dev/null || echo "no result")
echo "check-systemd: container exited $rc after $(( $(date +%s) - start )) s: $result"
if [ "$result" != ok ]; then
	echo "--- container console (last 40 lines)"
	tail -40 "$out/console.log"
	exit 1
fi
