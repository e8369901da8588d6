#!/bin/sh
# deps.sh: make sure the Debian 12 packages that building and testing need are
# installed.  As root, install what is missing with apt-get; otherwise print
# the command to run and fail.
#
# usage: tools/deps.sh build|test|bench|fuzz|lint|deb|systemd|image|all
#        tools/deps.sh install PACKAGE...   (these, the same way)
#        tools/deps.sh list TARGET          (its packages, one a line)
#
# It leaves the host as it was, but for the new packages:
# - No service starts.  For the duration of apt-get, /usr/sbin/policy-rc.d
#   denies every action (exit 101), which invoke-rc.d and
#   deb-systemd-invoke obey; the machine's own policy-rc.d, if it has one,
#   is moved aside and put back afterwards, also when apt-get fails or
#   this script is interrupted (a run killed outright is cleaned up by the
#   next).  The units of the packages it installed are then disabled, so
#   that a reboot does not start them either (the tests start their own
#   memcached, redis-server and fake Discovery on loopback ports).
# - Installed packages change as little as possible.  apt-get gets
#   --no-upgrade; a package built from the same source as an installed one
#   is asked for at the installed version when the archive still has it
#   (systemd-container must match systemd, libcurl4-openssl-dev libcurl4),
#   and so are its dependencies of that source.  When the archive no longer
#   has that version (a Debian 12 machine behind its security updates), the
#   installed packages the new ones need are upgraded, and named; with
#   PCD_DEPS_UPGRADE=no it stops and names them instead.  Nothing is
#   removed: it stops and names what would be, unless PCD_DEPS_UPGRADE=yes.
set -eu

# libssl-dev: libmemcached.pc requires libcrypto (pkg-config fails without).
build="gcc make pkg-config libcurl4-openssl-dev libevent-dev libjansson-dev
libmemcached-dev libinih-dev libsodium-dev nettle-dev libxxhash-dev
libhiredis-dev libssl-dev libzstd-dev"
# systemd: systemd-analyze checks the unit; mandoc lints the man pages;
# prometheus: promtool checks /metrics and contrib/prometheus/alerts.yml
# (19 MB, about 7 s to install).  memcached, prometheus and redis-server
# ship services: installed here, they are neither started nor enabled.
# zstd: test_hostile rewrites a snapshot file by hand.
test="memcached python3 python3-django python3-pymemcache python3-pylibmc
openssl python3-prometheus-client systemd mandoc prometheus redis-server
python3-django-redis zstd"
bench="python3-requests valgrind"
fuzz="clang libclang-rt-14-dev"
lint="cppcheck clang-tidy"
# make check-deb: dpkg-buildpackage with debhelper, and lintian.
deb="build-essential dpkg-dev debhelper lintian"
# make check-systemd: systemd-nspawn.
systemd="systemd-container"
# make check-image: podman (rootful, with runc), a base image made by
# mmdebstrap from Debian's mirrors, and the Tutor plugin's templates
# rendered with Jinja2 and parsed as YAML.
image="podman runc mmdebstrap python3-jinja2 python3-yaml"

POLICY=/usr/sbin/policy-rc.d
SAVED=$POLICY.pcd-deps-saved
MARK="written by programs-cached's tools/deps.sh"

# Put the machine's policy-rc.d back (or remove ours if it had none).
restore_policy() {
	if [ -e "$SAVED" ] || [ -L "$SAVED" ]; then
		mv -f "$SAVED" "$POLICY"
	else
		rm -f "$POLICY"
	fi
}

# Ours, in place of the machine's: no service starts, stops or restarts.
deny_services() {
	# What a run killed outright left behind.
	if [ -f "$POLICY" ] && grep -qF "$MARK" "$POLICY"; then
		restore_policy
	elif [ ! -e "$POLICY" ] && [ ! -L "$POLICY" ] &&
	    { [ -e "$SAVED" ] || [ -L "$SAVED" ]; }; then
		mv "$SAVED" "$POLICY"
	elif [ -e "$SAVED" ] || [ -L "$SAVED" ]; then
		echo "deps: $SAVED exists, but $POLICY is not ours: put the" \
		    "right one in place by hand" >&2
		exit 1
	fi
	if [ -e "$POLICY" ] || [ -L "$POLICY" ]; then
		mv "$POLICY" "$SAVED"
	fi
	trap restore_policy EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	cat >"$POLICY.pcd-deps-new" <<EOF
#!/bin/sh
# $MARK while apt-get installs:
# no service starts.  Removed when it ends (the one it replaced, if any,
# is put back).
exit 101
EOF
	chmod 755 "$POLICY.pcd-deps-new"
	mv -f "$POLICY.pcd-deps-new" "$POLICY"
}

# The version to ask for: that of an installed package built from the same
# source, if the archive has it and it is not the candidate anyway.
pinned_version() {
	src=$(apt-cache show --no-all-versions "$1" 2>/dev/null |
	    sed -n 's/^Source: \([^ ]*\).*/\1/p' | head -n 1)
	installed=$(dpkg-query -W -f '${db:Status-Status} ${source:Package} ${Version}\n' \
	    2>/dev/null | awk -v s="${src:-$1}" '$1 == "installed" && $2 == s { print $3 }')
	[ -n "$installed" ] || return 0
	cand=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
	# madison lists the newest first: the newest that is installed.
	for v in $(apt-cache madison "$1" 2>/dev/null | awk -F' *[|] *' '{ print $2 }'); do
		if printf '%s\n' "$installed" | grep -qxF "$v"; then
			[ "$v" = "$cand" ] || echo "$v"
			return 0
		fi
	done
}

# The dependencies to pin with the names: name=version for each package the
# plan for "$@" would newly install that was built from the same source as
# an installed package, at that package's version (when the archive has
# it).  A pinned libevent-dev needs libevent-extra-2.1-7 of its own version;
# left to apt, a dependency not installed yet comes at the candidate (a
# security update, say) and the pinned package cannot be installed.
dependency_pins() {
	# shellcheck disable=SC2086 # the names are words
	sim=$(apt-get -s install -y --no-install-recommends --no-upgrade "$@" \
	    2>/dev/null) || return 0
	fresh=$(printf '%s\n' "$sim" | sed -n 's/^Inst \([^ []*\) (.*/\1/p')
	[ -n "$fresh" ] || return 0
	srcs=$(dpkg-query -W -f '${db:Status-Status} ${source:Package}\n' \
	    2>/dev/null | awk '$1 == "installed" { print $2 }' | sort -u)
	# shellcheck disable=SC2086
	apt-cache show --no-all-versions $fresh 2>/dev/null | awk '
	    /^Package:/ { p = $2; s = $2 }
	    /^Source:/ { s = $2 }
	    /^$/ { if (p != "") print p, s; p = "" }
	    END { if (p != "") print p, s }' |
	while read -r p s; do
		printf '%s\n' "$srcs" | grep -qxF "$s" || continue
		v=$(pinned_version "$p")
		[ -z "$v" ] || echo "$p=$v"
	done
}

# Disable the units the packages named install enabled (started they are not).
disable_units() {
	command -v systemctl >/dev/null || return 0
	for p in "$@"; do
		for u in $(dpkg-query -L "$p" 2>/dev/null | sed -n \
		    's#^/\(usr/\)\{0,1\}lib/systemd/system/\([^/@]*\.\(service\|socket\|timer\)\)$#\2#p'); do
			[ "$(systemctl is-enabled "$u" 2>/dev/null)" = enabled ] || continue
			systemctl disable --quiet "$u"
			echo "deps: disabled $u (installed by tools/deps.sh; not started):" \
			    "systemctl enable --now $u if this host should run it" >&2
		done
	done
}

# Install the arguments (names, name=version), host-safe as said above.
install_packages() {
	args=""
	for p in "$@"; do
		case $p in
		*=* | */*) ;;
		*)	v=$(pinned_version "$p")
			[ -z "$v" ] || p="$p=$v" ;;
		esac
		args="$args $p"
	done
	# Asked of the names as given: pinned, the plan may not be possible.
	deps=""
	for d in $(dependency_pins "$@"); do
		case " $* " in
		*" ${d%%=*} "*) ;;
		*)	deps="$deps $d" ;;
		esac
	done
	args="$args$deps"
	# shellcheck disable=SC2086 # the names are words
	if ! plan=$(apt-get -s install -y --no-install-recommends --no-upgrade \
	    $args 2>&1); then
		# Not every package of a source is in the archive at the
		# installed version any more: take the names as apt-get would.
		args=" $*"
		deps=""
		plan=$(apt-get -s install -y --no-install-recommends \
		    --no-upgrade "$@" 2>&1) ||
		    { printf '%s\n' "$plan" >&2; exit 1; }
	fi
	upgrades=$(printf '%s\n' "$plan" | sed -n \
	    's/^Inst \([^ ]*\) \[\([^]]*\)\] (\([^ ]*\).*/  upgrade \1 (\2 -> \3)/p')
	removals=$(printf '%s\n' "$plan" | sed -n 's/^Remv \([^ ]*\).*/  remove \1/p')
	if [ -n "$removals" ] && [ "${PCD_DEPS_UPGRADE:-}" != yes ]; then
		echo "deps: installing$args would remove installed packages:" >&2
		printf '%s\n' "$removals" >&2
		echo "deps: nothing installed; remove them yourself, or allow" \
		    "it: PCD_DEPS_UPGRADE=yes $0" >&2
		exit 1
	fi
	if [ -n "$upgrades" ] && [ "${PCD_DEPS_UPGRADE:-}" = no ]; then
		echo "deps: installing$args would upgrade installed packages:" >&2
		printf '%s\n' "$upgrades" >&2
		echo "deps: nothing installed (PCD_DEPS_UPGRADE=no); upgrade" \
		    "them yourself first (apt-get upgrade)" >&2
		exit 1
	fi
	if [ -n "$upgrades" ]; then
		# The archive has moved on (a security or point release): the
		# new packages need the installed ones' newer versions.
		echo "deps: installing$args upgrades what it needs:" >&2
		printf '%s\n' "$upgrades" >&2
	fi
	new=$(printf '%s\n' "$plan" | sed -n 's/^Inst \([^ []*\) (.*/\1/p')
	echo "deps: installing$args (services not started)" >&2
	deny_services
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends --no-upgrade $args >&2
	restore_policy
	trap - EXIT HUP INT TERM
	# What was pinned only to keep a source in step was installed as a
	# dependency, and stays marked as one.
	for p in $deps; do
		apt-mark auto "${p%%=*}" >/dev/null
	done
	# shellcheck disable=SC2086
	disable_units $new
}

# The packages of a target.
want_of() {
	case $1 in
	build)	echo "$build" ;;
	fuzz)	echo "$build $fuzz" ;;
	lint)	echo "$build $lint" ;;
	deb)	echo "$build $deb" ;;
	systemd)	echo "$build $test $systemd" ;;
	image)	echo "$build $test $image" ;;
	test)	echo "$build $test" ;;
	bench)	echo "$build $test $bench" ;;
	all)	echo "$build $test $bench $fuzz $lint $deb $systemd $image" ;;
	*)	return 1 ;;
	esac
}

usage() {
	echo "usage: $0 build|test|bench|fuzz|lint|deb|systemd|image|all" >&2
	echo "       $0 install PACKAGE..." >&2
	echo "       $0 list TARGET" >&2
	exit 2
}

case "${1:-all}" in
install)
	shift
	[ $# -gt 0 ] || usage
	[ "$(id -u)" -eq 0 ] || { echo "deps: run as root" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	install_packages "$@"
	exit 0 ;;
list)
	want=$(want_of "${2:-}") || usage
	# shellcheck disable=SC2086
	printf '%s\n' $want
	exit 0 ;;
*)	want=$(want_of "${1:-all}") || usage ;;
esac

missing=""
for p in $want; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root: $0 ${1:-all}" >&2
	echo "deps: (it installs them without starting or enabling their" \
	    "services, and upgrades only what the new ones need)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; a stale list gives 404s.
apt-get update -qq >&2 || true
# shellcheck disable=SC2086
install_packages $missing
