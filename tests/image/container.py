"""container.py: the image under test, run by podman the way an operator
runs it, driven like tests/support/harness.py's Daemon.

    c = self.container(sections)            # ImageTestCase helper
    rc, events, stderr = c.run_once()       # podman run ... IMAGE --once
    c.start(); c.wait_event("refresh_succeeded")
    c.kill("HUP"); c.health(); c.stop()     # podman kill / healthcheck run / stop

The container gets --network=host (the tests' memcached, redis-server and
fake Discovery listen on loopback), a read-only root with no tmpfs
(--read-only --read-only-tmpfs=false), the configuration mounted read-only
at the image's default path, a credentials directory at /run/secrets
(read-only) and a state volume: a host directory owned by the image's
user.  Nothing else in it is writable.

PCD_IMAGE names the image (default localhost/programs-cached:latest),
PCD_BASE_IMAGE its base; PODMAN the podman binary.  make check-image sets CONTAINERS_CONF.
"""

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from tests.support.harness import Daemon, PcdTestCase

IMAGE = os.environ.get("PCD_IMAGE", "localhost/programs-cached:latest")
# The base it was built on (check-image.sh makes it).
BASE = os.environ.get("PCD_BASE_IMAGE", "localhost/programs-cached-base:bookworm")
PODMAN = os.environ.get("PODMAN", "podman")
APP_UID = 1000                      # the image's user (APP_USER_ID)
CONF = "/etc/programs-cached/programs-cached.conf"
STATE = "/var/lib/programs-cached"


def podman(*args, timeout=60, check=True):
    """Run podman; CompletedProcess with text output."""
    p = subprocess.run([PODMAN] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("podman %s: exit %d: %s" % (" ".join(map(str, args)),
                                                          p.returncode, p.stderr.strip()))
    return p


def require_image():
    """Fail (not skip) when podman or the image is missing: make
    check-image builds it before it runs these tests."""
    if shutil.which(PODMAN) is None:
        raise AssertionError("no %s: make check-image installs and uses it" % PODMAN)
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        raise AssertionError("no image %s: make check-image builds it" % IMAGE)


def owned_dir(path, mode=0o700):
    """A directory owned by the image's user (what a volume gives it)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, APP_UID, APP_UID)
    path.chmod(mode)
    return path


class Container(Daemon):
    """programs-cached in the image, by podman; see the module docstring.
    secrets: {file name: text} for /run/secrets.  extra: more podman run
    arguments.  The configuration's [daemon] state_dir defaults to the
    volume."""

    def __init__(self, tmpdir, sections, name="pcd", secrets=None, extra=(),
                 image=None, env=None):
        sections = {k: dict(v) for k, v in sections.items()}
        sections.setdefault("daemon", {}).setdefault("state_dir", STATE)
        self.image = image or IMAGE
        self.cname = "pcd-test-%s-%s" % (name, uuid.uuid4().hex[:8])
        self.extra = list(extra)
        self.cenv = dict(env or {})
        self.volume = owned_dir(Path(tmpdir) / ("%s-volume" % name))
        self.secrets_dir = Path(tmpdir) / ("%s-secrets" % name)
        self.secrets_dir.mkdir(exist_ok=True)
        for fname, text in (secrets or {}).items():
            p = self.secrets_dir / fname
            p.write_text(text, encoding="utf-8")
            os.chown(p, APP_UID, APP_UID)
            p.chmod(0o400)
        super().__init__(tmpdir, sections, binary=shutil.which(PODMAN) or PODMAN,
                         name=name)
        self.config_path.chmod(0o644)

    def write_config(self, sections=None):
        path = super().write_config(sections)
        path.chmod(0o644)
        return path

    def run_argv(self):
        """podman run and its options, up to the image."""
        a = [self.binary, "run", "--rm", "--name", self.cname, "--network=host",
             "--read-only", "--read-only-tmpfs=false",
             "-v", "%s:%s:ro" % (self.config_path, CONF),
             "-v", "%s:/run/secrets:ro" % self.secrets_dir,
             "-v", "%s:%s" % (self.volume, STATE)]
        for k, v in self.cenv.items():
            a += ["-e", "%s=%s" % (k, v)]
        return a + self.extra + [self.image]

    def argv(self, *args):
        return self.run_argv() + [str(a) for a in args]

    # -- what an operator does to a running container -------------------------
    def inspect(self, fmt):
        return podman("inspect", "--format", fmt, self.cname).stdout.strip()

    def kill(self, signame):
        """podman kill -s signame."""
        podman("kill", "-s", signame, self.cname)

    def send_signal(self, sig):
        self.kill(sig.name[3:] if hasattr(sig, "name") else str(sig))

    def health(self):
        """podman healthcheck run: (its exit status, and what the check
        printed, from the container's health log)."""
        p = podman("healthcheck", "run", self.cname, check=False)
        log = json.loads(self.inspect("{{json .State.Health}}") or "{}").get("Log") or []
        return p.returncode, log[-1]["Output"] if log else p.stdout.strip()

    def wait_health(self, want, timeout=20.0):
        """Poll the health check until it exits want; its last output."""
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.health()
            if rc == want:
                return out
            if time.monotonic() > deadline:
                raise AssertionError("health check exits %d (%s), not %d, after %.0fs"
                                     % (rc, out, want, timeout))
            time.sleep(0.5)

    def pid(self):
        """The daemon's pid, as the host sees it."""
        return int(self.inspect("{{.State.Pid}}"))

    def wait_running(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = podman("inspect", "--format", "{{.State.Running}}", self.cname, check=False)
            if p.stdout.strip() == "true":
                return
            if not self.running:
                raise AssertionError("container exited: %s" % self.stderr_text[-2000:])
            time.sleep(0.1)
        raise AssertionError("container %s not running after %.0fs" % (self.cname, timeout))

    def stop(self, timeout=10.0):
        """podman stop (SIGTERM, SIGKILL after timeout): (exit code,
        seconds podman stop took)."""
        t0 = time.monotonic()
        podman("stop", "-t", int(timeout), self.cname, timeout=timeout + 30)
        took = time.monotonic() - t0
        return self.wait_exit(30), took

    def _remove(self):
        podman("rm", "-f", "-t", "0", self.cname, check=False)

    def kill9(self):
        self._remove()
        super().kill9()

    def _kill_quietly(self):
        self._remove()
        super()._kill_quietly()


class ImageTestCase(PcdTestCase):
    """PcdTestCase with containers (removed at cleanup)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_image()

    def container(self, sections, **kw):
        c = Container(self.tmpdir, sections, **kw)
        self.addCleanup(c.close)
        return c

    def events_json(self, text):
        return [json.loads(l) for l in text.splitlines() if l.startswith("{")]
