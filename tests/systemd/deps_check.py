"""deps_check.py: tools/deps.sh's install step, run by driver.py in the
booted container: the real apt-get and dpkg install packages built here
(dpkg-deb) from a local repository, with systemd as PID 1, so a service
that a package's maintainer scripts start really runs.  The container's
root is an overlay on a tmpfs: nothing installed here reaches the host.

The packages: pcd-svc ships a unit and the maintainer scripts debhelper
writes for one (enable it, deb-systemd-invoke start it); pcd-lib 1.0 and
2.0, and pcd-lib-dev and pcd-lib-extra built from the same source, each
wanting its own version of the others (as systemd-container wants
systemd's, libevent-dev libevent-extra-2.1-7's); pcd-tool, of another
source, which needs pcd-lib 2.0 (as a security update's -dev package
needs the new library); pcd-rival, which conflicts with pcd-tool;
pcd-fails, whose preinst fails.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DEPS = str(Path("tools/deps.sh").resolve())
POLICY = Path("/usr/sbin/policy-rc.d")
SAVED = Path("/usr/sbin/policy-rc.d.pcd-deps-saved")
UNIT = "pcd-svc.service"
# A machine's own policy that lets everything start: only deps.sh's stops it.
MACHINE_POLICY = b"#!/bin/sh\n# the machine's own policy: everything may start\nexit 0\n"

SERVICE = """[Unit]
Description=check-systemd: a package's own service
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
"""
# debhelper 13's autoscripts for one unit (postinst-systemd-enable,
# postinst-systemd-restart, prerm-systemd, postrm-systemd).
POSTINST = """#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	deb-systemd-helper unmask pcd-svc.service >/dev/null || true
	if deb-systemd-helper --quiet was-enabled pcd-svc.service; then
		deb-systemd-helper enable pcd-svc.service >/dev/null || true
	else
		deb-systemd-helper update-state pcd-svc.service >/dev/null || true
	fi
fi
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			_dh_action=restart
		else
			_dh_action=start
		fi
		deb-systemd-invoke $_dh_action pcd-svc.service >/dev/null || true
	fi
fi
"""
PRERM = """#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ] ; then
	deb-systemd-invoke stop pcd-svc.service >/dev/null || true
fi
"""
POSTRM = """#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge pcd-svc.service >/dev/null || true
	fi
fi
"""


def log(msg):
    print("check-systemd: " + msg, flush=True)


class Repo:
    """The packages, a flat repository of them, and an APT_CONFIG that
    makes it apt's only source (its lists and cache apart)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pcd-deps-", dir="/var/tmp"))
        self.pool = self.dir / "pool"
        self.pool.mkdir()
        entries = []
        for name, version, extra, files, scripts in [
                ("pcd-svc", "1.0", "", {"lib/systemd/system/" + UNIT: SERVICE},
                 {"postinst": POSTINST, "prerm": PRERM, "postrm": POSTRM}),
                ("pcd-lib", "1.0", "", {}, {}),
                ("pcd-lib", "2.0", "", {}, {}),
                ("pcd-lib-extra", "1.0", "Source: pcd-lib\nDepends: pcd-lib (= 1.0)\n",
                 {}, {}),
                ("pcd-lib-extra", "2.0", "Source: pcd-lib\nDepends: pcd-lib (= 2.0)\n",
                 {}, {}),
                ("pcd-lib-dev", "1.0", "Source: pcd-lib\n"
                 "Depends: pcd-lib (= 1.0), pcd-lib-extra (= 1.0)\n", {}, {}),
                ("pcd-lib-dev", "2.0", "Source: pcd-lib\n"
                 "Depends: pcd-lib (= 2.0), pcd-lib-extra (= 2.0)\n", {}, {}),
                ("pcd-tool", "2.0", "Depends: pcd-lib (>= 2.0)\n", {}, {}),
                ("pcd-rival", "1.0", "Conflicts: pcd-tool\n", {}, {}),
                ("pcd-fails", "1.0", "", {}, {"preinst": "#!/bin/sh\nexit 1\n"})]:
            entries.append(self.build(name, version, extra, files, scripts))
        (self.pool / "Packages").write_text("\n".join(entries))
        for d in ("lists/partial", "cache/archives/partial", "parts"):
            (self.dir / d).mkdir(parents=True)
        (self.dir / "sources.list").write_text("deb [trusted=yes] file:%s ./\n" % self.pool)
        (self.dir / "apt.conf").write_text(
            'Dir::Etc::SourceList "%s/sources.list";\n'
            'Dir::Etc::SourceParts "%s/parts";\n'
            'Dir::State::Lists "%s/lists";\n'
            'Dir::Cache "%s/cache";\n' % ((self.dir,) * 4))
        self.env = dict(os.environ, APT_CONFIG=str(self.dir / "apt.conf"),
                        DEBIAN_FRONTEND="noninteractive")
        self.run("apt-get", "update", "-qq")

    def build(self, name, version, extra, files, scripts):
        root = self.dir / "build" / ("%s_%s" % (name, version))
        (root / "DEBIAN").mkdir(parents=True)
        control = ("Package: %s\nVersion: %s\nArchitecture: all\n"
                   "Maintainer: check-systemd <root@localhost>\n%s"
                   "Description: check-systemd test package\n" % (name, version, extra))
        (root / "DEBIAN" / "control").write_text(control)
        for script, text in scripts.items():
            p = root / "DEBIAN" / script
            p.write_text(text)
            p.chmod(0o755)
        for path, text in files.items():
            p = root / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        deb = self.pool / ("%s_%s_all.deb" % (name, version))
        subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root),
                        str(deb)], check=True, capture_output=True)
        data = deb.read_bytes()
        return control + "Filename: ./%s\nSize: %d\nSHA256: %s\n" % (
            deb.name, len(data), hashlib.sha256(data).hexdigest())

    def run(self, *argv, check=True, **env):
        r = subprocess.run(argv, capture_output=True, text=True, env=dict(self.env, **env))
        if check and r.returncode != 0:
            raise AssertionError("%s: exit %d: %s%s" % (" ".join(argv), r.returncode,
                                                       r.stdout, r.stderr))
        return r

    def deps(self, *packages, **env):
        return self.run("sh", DEPS, "install", *packages, check=False, **env)

    def version(self, package):
        r = self.run("dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", package,
                     check=False)
        return r.stdout.split()[1] if r.stdout.startswith("installed ") else None

    def close(self):
        self.run("apt-get", "purge", "-y", "-qq", "pcd-svc", "pcd-lib", "pcd-lib-dev",
                 "pcd-lib-extra", "pcd-tool", "pcd-rival", "pcd-fails", check=False)

    def auto(self, package):
        """Whether apt has package marked as installed automatically."""
        return self.run("apt-mark", "showauto", package).stdout.split() == [package]
        shutil.rmtree(self.dir, ignore_errors=True)


def unit_state():
    """(is-active, is-enabled) of the test package's unit."""
    def q(verb):
        return subprocess.run(["systemctl", verb, UNIT], capture_output=True,
                              text=True).stdout.strip()
    return q("is-active"), q("is-enabled")


def set_policy(content, mode=0o750):
    if content is None:
        POLICY.unlink(missing_ok=True)
    else:
        POLICY.write_bytes(content)
        POLICY.chmod(mode)


def assert_policy(content, mode, what):
    if content is None:
        assert not POLICY.exists(), "%s: %s left behind: %r" % (what, POLICY,
                                                                POLICY.read_bytes())
    else:
        got = (POLICY.read_bytes(), POLICY.stat().st_mode & 0o7777)
        assert got == (content, mode), "%s: %s is now %r" % (what, POLICY, got)
    assert not SAVED.exists(), "%s: %s left behind" % (what, SAVED)


def check_control(repo):
    """Without a policy, the package's scripts do start its service."""
    set_policy(None)
    repo.run("apt-get", "install", "-y", "-qq", "pcd-svc")
    state = unit_state()
    assert state == ("active", "enabled"), "plain apt-get: %s %s" % state
    repo.run("apt-get", "purge", "-y", "-qq", "pcd-svc")
    assert unit_state()[0] == "inactive"
    log("ok: control: plain apt-get install pcd-svc starts and enables its service")


def check_no_service_starts(repo):
    """deps.sh: installed, not started, not enabled; the machine's
    policy-rc.d back as it was (or none, as there was none)."""
    for machine in (MACHINE_POLICY, None):
        set_policy(machine)
        r = repo.deps("pcd-svc")
        assert r.returncode == 0, r.stderr
        assert repo.version("pcd-svc") == "1.0", "not installed"
        loaded = subprocess.run(["systemctl", "show", "-P", "LoadState", UNIT],
                                capture_output=True, text=True).stdout.strip()
        assert loaded == "loaded", loaded
        state = unit_state()
        assert state == ("inactive", "disabled"), "after deps.sh: %s %s" % state
        assert "disabled " + UNIT in r.stderr, r.stderr
        what = "a machine policy that allows all" if machine else "no machine policy"
        assert_policy(machine, 0o750, what)
        repo.run("apt-get", "purge", "-y", "-qq", "pcd-svc")
    log("ok: deps.sh install pcd-svc: installed, inactive and disabled; the machine's "
        "policy-rc.d (one allowing every start, then none) is as it was")


def check_policy_restored_on_failure(repo):
    """apt-get fails (a preinst exits 1): the machine's policy is back."""
    set_policy(MACHINE_POLICY)
    r = repo.deps("pcd-fails")
    failed = r.returncode
    assert failed != 0, "a failing install succeeded"
    assert repo.version("pcd-fails") is None
    assert_policy(MACHINE_POLICY, 0o750, "after a failed apt-get")
    # A run killed outright (SIGKILL) left its own policy and the saved one.
    SAVED.write_bytes(MACHINE_POLICY)
    SAVED.chmod(0o750)
    POLICY.write_text("#!/bin/sh\n# written by programs-cached's tools/deps.sh\nexit 101\n")
    r = repo.deps("pcd-lib=1.0")
    assert r.returncode == 0, r.stderr
    assert_policy(MACHINE_POLICY, 0o750, "after a killed run's leftovers")
    log("ok: apt-get failing (exit %d) and a killed run's leftovers: the machine's "
        "policy-rc.d is back, byte for byte" % failed)


def check_upgrades(repo):
    """pcd-lib 1.0 installed, 2.0 available: kept where it can be, upgraded
    where what is installed needs it, never removed."""
    assert repo.version("pcd-lib") == "1.0"
    plan = repo.run("apt-get", "-s", "install", "pcd-lib-dev").stdout
    assert "Inst pcd-lib [1.0] (2.0" in plan, "the control: " + plan
    # Pinning the name alone is not enough: pcd-lib-extra, not installed,
    # comes at 2.0 and the plan fails (libevent-dev after libevent's
    # security update, on a machine that has libevent-core of the release).
    r = repo.run("apt-get", "-s", "install", "pcd-lib-dev=1.0", check=False)
    assert r.returncode != 0, "the control: " + r.stdout
    r = repo.deps("pcd-lib-dev")
    assert r.returncode == 0, r.stderr
    got = tuple(repo.version(p) for p in ("pcd-lib-dev", "pcd-lib-extra", "pcd-lib"))
    assert got == ("1.0", "1.0", "1.0"), "pcd-lib-dev, -extra, pcd-lib: %s %s %s" % got
    assert repo.auto("pcd-lib-extra") and not repo.auto("pcd-lib-dev"), \
        "pinned as a dependency, pcd-lib-extra must stay marked as one"
    r = repo.deps("pcd-lib")
    assert r.returncode == 0 and repo.version("pcd-lib") == "1.0", (r.stderr,
                                                                    repo.version("pcd-lib"))
    r = repo.deps("pcd-tool", PCD_DEPS_UPGRADE="no")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "upgrade pcd-lib (1.0 -> 2.0)" in r.stderr, r.stderr
    assert (repo.version("pcd-tool"), repo.version("pcd-lib")) == (None, "1.0")
    r = repo.deps("pcd-tool")
    assert r.returncode == 0, r.stderr
    assert "upgrade pcd-lib (1.0 -> 2.0)" in r.stderr, r.stderr
    got = tuple(repo.version(p) for p in ("pcd-tool", "pcd-lib", "pcd-lib-dev"))
    assert got == ("2.0", "2.0", "2.0"), "pcd-tool, pcd-lib, pcd-lib-dev: %s %s %s" % got
    r = repo.deps("pcd-rival")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "remove pcd-tool" in r.stderr, r.stderr
    assert (repo.version("pcd-rival"), repo.version("pcd-tool")) == (None, "2.0")
    log("ok: deps.sh install pcd-lib-dev took 1.0, the installed pcd-lib's version, "
        "and pcd-lib-extra 1.0 with it, marked automatic (apt-get alone upgrades "
        "pcd-lib to 2.0; pinned alone, the plan fails); pcd-lib itself is not upgraded; "
        "pcd-tool, which needs pcd-lib 2.0, is refused naming the upgrade with "
        "PCD_DEPS_UPGRADE=no, and installed, naming it, without; pcd-rival, which would "
        "remove pcd-tool, is refused naming it")


def run():
    machine = POLICY.read_bytes() if POLICY.exists() else None
    mode = POLICY.stat().st_mode & 0o7777 if POLICY.exists() else 0
    repo = Repo()
    try:
        check_control(repo)
        check_no_service_starts(repo)
        check_policy_restored_on_failure(repo)
        check_upgrades(repo)
    finally:
        repo.close()
        set_policy(machine, mode)
