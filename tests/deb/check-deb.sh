#!/bin/sh
# check-deb.sh: build the Debian package from a copy of this tree (so the
# tree's build/ and ../ stay untouched), lintian it (no errors, no
# warnings), unpack it into a throw-away root and check what landed there:
# the paths (the documentation and the alerting rules included), the
# conffile, the unit's paths, and the binary's --version and
# --check-config of the shipped configuration.
#
# usage: tests/deb/check-deb.sh OUTDIR   (make check-deb: build/deb)
set -eu

out=${1:?usage: $0 OUTDIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$out"
mkdir -p "$out/src/programs-cached" "$out/root"
out=$(cd "$out" && pwd)
src=$out/src/programs-cached

# The tree as it is, committed or not; without git, everything but build/.
cd "$top"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C "$src"
else
	tar -cf - --exclude=./build . | tar -xf - -C "$src"
fi

# build_info's revision: the tree's (the copy has no .git).
REVISION=${REVISION:-$(git describe --always --dirty 2>/dev/null || echo unknown)}
echo "== dpkg-buildpackage -us -uc -b"
start=$(date +%s)
(cd "$src" && REVISION="$REVISION" dpkg-buildpackage -us -uc -b \
    >"$out/build.log" 2>&1) || { tail -40 "$out/build.log"; exit 1; }
echo "   built in $(( $(date +%s) - start )) s (log: $out/build.log)"
deb=$(ls "$out"/src/programs-cached_*.deb)
changes=$(ls "$out"/src/programs-cached_*.changes)
cp "$deb" "$out/"

echo "== lintian"
lintian --fail-on error,warning --pedantic -I "$changes"

echo "== dpkg -x into $out/root"
dpkg -x "$deb" "$out/root"
dpkg-deb -e "$deb" "$out/control"
fail=0
for f in usr/sbin/programs-cached lib/systemd/system/programs-cached.service \
    usr/share/man/man8/programs-cached.8.gz \
    usr/share/man/man5/programs-cached.conf.5.gz \
    etc/programs-cached/programs-cached.conf \
    usr/share/doc/programs-cached/examples/programs-cached.conf \
    usr/share/doc/programs-cached/README.Debian \
    usr/share/doc/programs-cached/copyright \
    usr/share/doc/programs-cached/README.md \
    usr/share/doc/programs-cached/NEWS.md \
    usr/share/doc/programs-cached/docs/operations.md \
    usr/share/doc/programs-cached/docs/configuration.md \
    usr/share/doc/programs-cached/docs/design.md \
    usr/share/doc/programs-cached/docs/troubleshooting.md \
    usr/share/doc/programs-cached/examples/prometheus/alerts.yml \
    usr/share/doc/programs-cached/examples/prometheus/alerts_test.yml; do
	[ -e "$out/root/$f" ] || { echo "missing: /$f" >&2; fail=1; }
done
grep -qx /etc/programs-cached/programs-cached.conf "$out/control/conffiles" ||
    { echo "not a conffile: /etc/programs-cached/programs-cached.conf" >&2; fail=1; }
unit=$out/root/lib/systemd/system/programs-cached.service
grep -qx 'ExecStart=/usr/sbin/programs-cached -c /etc/programs-cached/programs-cached.conf' \
    "$unit" || { echo "unit: ExecStart= does not name /usr/sbin" >&2; fail=1; }
grep -q 'deb-systemd-helper enable' "$out/control/postinst" ||
    { echo "postinst does not enable the unit" >&2; fail=1; }
n=$(nm -D "$out/root/usr/sbin/programs-cached" | grep -c '_chk@' || true)
[ "$n" -gt 0 ] || { echo "no _FORTIFY_SOURCE (_chk) symbols" >&2; fail=1; }
# The alerts' runbook_url names the installed troubleshooting.md.
grep -q 'runbook_url: "file:///usr/share/doc/programs-cached/docs/troubleshooting.md#' \
    "$out/root/usr/share/doc/programs-cached/examples/prometheus/alerts.yml" ||
    { echo "alerts.yml: no runbook_url into the installed docs" >&2; fail=1; }
[ "$fail" -eq 0 ]

echo "== the unpacked binary"
"$out/root/usr/sbin/programs-cached" --version
"$out/root/usr/sbin/programs-cached" --check-config \
    -c "$out/root/etc/programs-cached/programs-cached.conf" >/dev/null
echo "check-deb: ok: $(basename "$deb"), $n fortified calls"
