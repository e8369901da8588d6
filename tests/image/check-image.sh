#!/bin/sh
# check-image.sh: build the OCI image from a copy of this tree and test it
# with podman (make check-image).
#
#  1. The base: a Debian 12 minbase made by mmdebstrap from Debian's
#     mirrors (no image registry is needed), imported into podman as
#     $PCD_BASE_IMAGE (localhost/programs-cached-base:bookworm) unless an
#     image of that name is already there.  Like debian:bookworm-slim, it
#     leaves out documentation, man pages and locales.
#  2. The image: contrib/container/Containerfile, tagged
#     localhost/programs-cached:VERSION and :latest (docker format, which
#     keeps the HEALTHCHECK), with the base as its BASE build argument.
#  3. Its size beside the base's (failing if it adds more than 40 MB), the
#     tests (tests/image: podman runs of the image, the Tutor plugin's
#     templates), and the time from podman run to the first publish.
#
# Rootful podman in a sandbox: CONTAINERS_CONF names tests/image/
# containers.conf (no rlimits, runc, cgroupfs) unless it is set already.
#
# usage: tests/image/check-image.sh OUTDIR VERSION BUILD
set -eu

out=${1:?usage: $0 OUTDIR VERSION BUILD}
version=${2:?usage: $0 OUTDIR VERSION BUILD}
build=${3:?usage: $0 OUTDIR VERSION BUILD}
top=$(cd "$(dirname "$0")/../.." && pwd)
base=${PCD_BASE_IMAGE:-localhost/programs-cached-base:bookworm}
image=localhost/programs-cached
max_added_mb=40

if [ "$(id -u)" -ne 0 ]; then
	echo "check-image: needs root (rootful podman, mmdebstrap, volumes owned by the image's user)" >&2
	exit 1
fi
export CONTAINERS_CONF="${CONTAINERS_CONF:-$top/tests/image/containers.conf}"
rm -rf "$out"
mkdir -p "$out/ctx"
out=$(cd "$out" && pwd)
now() { date +%s; }

if podman image exists "$base"; then
	echo "== base $base: present"
else
	echo "== base $base: mmdebstrap --variant=minbase bookworm"
	t0=$(now)
	mmdebstrap --variant=minbase \
	    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	    --dpkgopt='path-exclude=/usr/share/doc/*' \
	    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	    --dpkgopt='path-exclude=/usr/share/man/*' \
	    --dpkgopt='path-exclude=/usr/share/info/*' \
	    --dpkgopt='path-exclude=/usr/share/locale/*' \
	    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	    --dpkgopt='path-exclude=/usr/share/groff/*' \
	    --dpkgopt='path-exclude=/usr/share/lintian/*' \
	    bookworm "$out/base.tar" >"$out/base.log" 2>&1 ||
	    { tail -40 "$out/base.log"; exit 1; }
	podman import --quiet --change 'CMD ["/bin/bash"]' "$out/base.tar" "$base" >/dev/null
	rm -f "$out/base.tar"
	echo "   made in $(( $(now) - t0 )) s (log: $out/base.log)"
fi

# The tree as it is, committed or not, without build/ (as check-deb).
cd "$top"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C "$out/ctx"
else
	tar -cf - --exclude=./build . | tar -xf - -C "$out/ctx"
fi
REVISION=${REVISION:-$(git describe --always --dirty 2>/dev/null || echo unknown)}

echo "== podman build $image:$version"
t0=$(now)
# --network=host: this sandbox's podman has no bridge for the build's apt.
podman build --format docker --network=host \
    --build-arg BASE="$base" --build-arg VERSION="$version" \
    --build-arg REVISION="$REVISION" \
    --ignorefile "$out/ctx/contrib/container/Containerfile.dockerignore" \
    -f "$out/ctx/contrib/container/Containerfile" \
    -t "$image:$version" -t "$image:latest" "$out/ctx" >"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log"; exit 1; }
echo "   built in $(( $(now) - t0 )) s (log: $out/build.log)"

size() { podman image inspect --format '{{.Size}}' "$1"; }
bsize=$(size "$base")
isize=$(size "$image:$version")
added=$(( (isize - bsize) / 1000000 ))
echo "== size: $image:$version $(( isize / 1000000 )) MB, base $(( bsize / 1000000 )) MB: adds $added MB"
if [ "$added" -gt "$max_added_mb" ]; then
	echo "check-image: the image adds $added MB to its base (at most $max_added_mb)" >&2
	exit 1
fi

echo "== tests/image"
PCD_IMAGE="$image:$version" PCD_BASE_IMAGE="$base" PCD_BUILD="$build" \
    /usr/bin/python3 -m unittest \
    discover -s tests/image -t . ${TESTFLAGS:-}
PCD_IMAGE="$image:$version" /usr/bin/python3 -m tests.image.measure 3
echo "check-image: ok: $image:$version"
