#!/bin/sh
# deps.sh: make sure the Debian 12 packages that building and testing need are
# installed.  As root, install what is missing with apt-get; otherwise print
# the command to run and fail.
#
# usage: tools/deps.sh build|test|bench|fuzz|lint|deb|systemd|all
set -eu

build="gcc make pkg-config libcurl4-openssl-dev libevent-dev libjansson-dev
libmemcached-dev libinih-dev libsodium-dev nettle-dev libxxhash-dev
libhiredis-dev libzstd-dev"
# systemd: systemd-analyze checks the unit; mandoc lints the man pages;
# prometheus: promtool checks /metrics and contrib/prometheus/alerts.yml
# (19 MB, about 7 s to install; on a systemd host it also starts a
# Prometheus server, as memcached's package starts memcached).
test="memcached python3 python3-django python3-pymemcache python3-pylibmc
openssl python3-prometheus-client systemd mandoc prometheus redis-server
python3-django-redis"
bench="python3-requests valgrind"
fuzz="clang libclang-rt-14-dev"
lint="cppcheck clang-tidy"
# make check-deb: dpkg-buildpackage with debhelper, and lintian.
deb="build-essential dpkg-dev debhelper lintian"
# make check-systemd: systemd-nspawn.
systemd="systemd-container"

case "${1:-all}" in
build)	want="$build" ;;
fuzz)	want="$build $fuzz" ;;
lint)	want="$build $lint" ;;
deb)	want="$build $deb" ;;
systemd)	want="$build $test $systemd" ;;
test)	want="$build $test" ;;
bench)	want="$build $test $bench" ;;
all)	want="$build $test $bench $fuzz $lint $deb $systemd" ;;
*)	echo "usage: $0 build|test|bench|fuzz|lint|deb|systemd|all" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root: apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; a stale list gives 404s.
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends $missing >&2
