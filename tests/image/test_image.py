"""The image (contrib/container/Containerfile), run by podman beside a
loopback memcached or redis-server and the fake Discovery (make
check-image builds it first).

- --once and the daemon write what Django's readers read, equal to what
  cache_programs writes (the parity catalogues of the integration tests),
  into memcached and into Redis;
- it runs as its own non-root user on a read-only root, with only the
  state volume writable;
- podman stop (SIGTERM) ends it cleanly within 2 s, podman kill -s HUP
  refreshes;
- its health check (programs-cached --health) is healthy after the first
  publish and unhealthy with the cache server stopped;
- a bad configuration exits 2 with the cause on stderr."""

import copy
from pathlib import Path

from tests.integration.test_parity import two_catalogues
from tests.image.container import APP_UID, BASE, IMAGE, STATE, ImageTestCase, podman
from tests.support import reference
from tests.support.harness import free_port
from tests.support.rediscache import RedisReader, RedisServer

SITES = [("a.example", 1, ""), ("b.example", 2, ""),
         ("c.example", 3, "/c"), ("d.example", 4, None)]
REDIS_PASSWORD = "a-redis-password"


def ms(ts):
    """Milliseconds of the day of an event's ts (2026-11-25T04:24:11.151Z)."""
    h, m, sec = ts[11:-1].split(":")
    return round(((int(h) * 60 + int(m)) * 60 + float(sec)) * 1000)


class ImageCase(ImageTestCase):

    # Under Django's key function (Redis) a key over 250 bytes is not
    # written: the Redis cases leave out the run key that long.
    long_run_key = True

    def setUp(self):
        super().setUp()
        self.a, self.c = two_catalogues(long_run_key=self.long_run_key)
        self.fake = self.start_fake(self.a, require_auth=True)
        self.fake.set_catalogue(self.c, "/c")

    def expected(self):
        return reference.expected_cache([
            {"domain": "a.example", "site_id": 1, "catalogue": self.a},
            {"domain": "b.example", "site_id": 2, "catalogue": self.a},
            {"domain": "c.example", "site_id": 3, "catalogue": self.c},
            {"domain": "d.example", "site_id": 4, "catalogue": None},
        ])

    def start_redis(self):
        s = RedisServer(password=REDIS_PASSWORD)
        self.addCleanup(s.close)
        return s.start()

    def sections(self, backend, daemon=None):
        """The parity sites against the fake, the client secret (and the
        Redis password) from the credentials directory, not the file."""
        oauth = {"oauth_url": self.fake.oauth_url, "client_id": self.fake.client_id}
        if hasattr(backend, "address"):
            return self.config(self.fake, [backend], SITES, auth=False, discovery=oauth,
                               daemon=daemon)
        s = self.config(self.fake, [], SITES, auth=False, discovery=oauth, daemon=daemon)
        del s["memcached"]
        return dict([("redis", {"url": backend.url(1)})] + list(s.items()))

    def secrets(self, backend):
        sec = {"client-secret": self.fake.client_secret + "\n"}
        if not hasattr(backend, "address"):
            sec["redis-password"] = REDIS_PASSWORD + "\n"
        return sec

    def reader_for(self, backend):
        if hasattr(backend, "address"):
            return self.reader([backend])
        r = RedisReader(backend, db=1)
        self.addCleanup(r.close)
        return r

    def assertExactly(self, backend, r, expected):
        """The cache holds expected and nothing else."""
        self.assertCacheMatches(r, expected)
        keys = set(backend.dump_keys()) if hasattr(backend, "address") else backend.keys(1)
        self.assertEqual(keys, {r.make_key(k) for k in expected})


class Parity(ImageCase):
    """What --once and the daemon write (the checks; the backends below)."""

    def check_once(self, backend):
        c = self.container(self.sections(backend), secrets=self.secrets(backend))
        rc, events, stderr = c.run_once()
        self.assertEqual(rc, 0, stderr[-3000:])
        self.assertTrue([e for e in events if e["event"] == "refresh_succeeded"], stderr)
        self.assertExactly(backend, self.reader_for(backend), self.expected())
        # The snapshot is in the volume, the image's user's.
        snap = c.volume / "programs-cache.snapshot"
        self.assertTrue(snap.is_file(), list(c.volume.iterdir()))
        self.assertEqual(snap.stat().st_uid, APP_UID)

    def check_daemon(self, backend):
        c = self.container(self.sections(backend, daemon={"refresh_interval": "1h",
                                                          "incremental_interval": 0}),
                           secrets=self.secrets(backend))
        c.start()
        c.wait_event("refresh_succeeded", timeout=60)
        r = self.reader_for(backend)
        self.assertExactly(backend, r, self.expected())

        # SIGHUP (podman kill -s HUP): a refresh now, with what changed.
        a2 = copy.deepcopy(self.a)
        uuid = a2["uuids"][0]
        a2["programs"][uuid]["title"] = "Retitled, then SIGHUP"
        self.fake.set_catalogue(a2)
        self.a = a2
        mark = c.mark()
        c.kill("HUP")
        c.wait_event("refresh_succeeded", since=mark, timeout=30)
        self.assertEqual(r.get("program-" + uuid)["title"], "Retitled, then SIGHUP")
        self.assertExactly(backend, r, self.expected())

        # SIGTERM (podman stop -t 2): a clean exit before podman's SIGKILL
        # 2 s later (killed, it would exit 137), within a second of the
        # signal by the daemon's own clock.
        mark = c.mark()
        rc, took = c.stop(timeout=2)
        self.assertEqual(rc, 0, c.stderr_text[-2000:])
        sig = c.wait_event("signal", since=mark)
        self.assertEqual(sig["signal"], "SIGTERM")
        down = c.wait_event("shutdown", since=mark)
        self.assertLess(ms(down["ts"]) - ms(sig["ts"]), 1000, (sig, down, took))


class ParityMemcached(Parity):
    """Into memcached, read by Django's PyMemcacheCache with safe_key."""

    def test_once_memcached(self):
        self.check_once(self.start_memcached())

    def test_daemon_memcached(self):
        self.check_daemon(self.start_memcached())


class ParityRedis(Parity):
    """The same into Redis, read by django-redis as Tutor's LMS reads it;
    the Redis password from the credentials directory."""

    long_run_key = False

    def test_once_redis(self):
        self.check_once(self.start_redis())

    def test_daemon_redis(self):
        self.check_daemon(self.start_redis())


class Confinement(ImageCase):
    """Its own user, a read-only root, only the state volume writable."""

    def test_non_root_read_only_root(self):
        mc = self.start_memcached()
        c = self.container(self.sections(mc, daemon={"refresh_interval": "1h"}),
                           secrets=self.secrets(mc))
        c.start()
        c.wait_event("snapshot_saved", timeout=60)
        pid = c.pid()
        status = Path("/proc/%d/status" % pid).read_text()
        uids = next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1:]
        gids = next(l for l in status.splitlines() if l.startswith("Gid:")).split()[1:]
        self.assertEqual(set(uids), {str(APP_UID)}, status)
        self.assertEqual(set(gids), {str(APP_UID)}, status)
        self.assertIn("CapEff:\t0000000000000000", status)
        # Every mount of a real file system is read-only but the volume.
        pseudo = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "tmpfs",
                  "devtmpfs", "securityfs", "none"}
        writable = []
        for line in Path("/proc/%d/mounts" % pid).read_text().splitlines():
            dev, where, fstype, opts = line.split()[:4]
            if fstype not in pseudo and "rw" in opts.split(","):
                writable.append(where)
        self.assertEqual(writable, [STATE], Path("/proc/%d/mounts" % pid).read_text())
        root = [l.split() for l in Path("/proc/%d/mounts" % pid).read_text().splitlines()
                if l.split()[1] == "/"]
        self.assertTrue(root and "ro" in root[-1][3].split(","), root)
        self.assertEqual(c.stop()[0], 0)


    def test_adds_one_executable_to_its_base(self):
        """No tools beyond the base's: of executables, the image adds the
        daemon alone."""
        def executables(image):
            p = podman("run", "--rm", "--user", "0", "--entrypoint", "/usr/bin/find", image,
                       "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin",
                       "/usr/libexec", "!", "-type", "d", check=False)
            return set(p.stdout.split())
        base = executables(BASE)
        self.assertIn("/usr/bin/sh", base)      # the listing worked
        self.assertEqual(executables(IMAGE) - base, {"/usr/sbin/programs-cached"})


class Health(ImageCase):
    """programs-cached --health, the image's HEALTHCHECK (on Redis)."""

    long_run_key = False

    def test_healthy_after_publish_unhealthy_without_the_cache(self):
        srv = self.start_redis()
        port = free_port()
        # Discovery answers the first UUID list slowly: the daemon is up
        # but has published nothing yet.
        self.fake.set_latency(8, match=self.fake.uuids_target())
        c = self.container(self.sections(srv, daemon={
            "listen": "0.0.0.0:%d" % port, "check_interval": "1s",
            "refresh_interval": "1h"}), secrets=self.secrets(srv))
        c.start()
        c.wait_event("listening", timeout=60)
        rc, out = c.health()
        self.assertEqual(rc, 1, out)
        self.assertIn("not ready", out)
        self.fake.clear_latency()
        c.wait_event("refresh_succeeded", timeout=60)
        c.wait_health(0)
        # The cache server goes away: the monitor notices, the check fails.
        srv.kill9()
        out = c.wait_health(1, timeout=30)
        self.assertIn("not ready: redis unreachable", out)
        self.assertEqual(c.stop()[0], 0)

    def test_health_without_listen_is_unhealthy(self):
        mc = self.start_memcached()
        c = self.container(self.sections(mc, daemon={"refresh_interval": "1h"}),
                           secrets=self.secrets(mc))
        c.start()
        c.wait_event("refresh_succeeded", timeout=60)
        rc, out = c.health()
        self.assertEqual(rc, 1, out)
        self.assertIn("sets no [daemon] listen", out)
        self.assertEqual(c.stop()[0], 0)


class BadConfig(ImageCase):

    def test_unknown_key_exits_2_naming_it(self):
        mc = self.start_memcached()
        s = self.sections(mc)
        s["daemon"]["no_such_key"] = "1"
        c = self.container(s, secrets=self.secrets(mc))
        rc, events, stderr = c.run()
        self.assertEqual(rc, 2, stderr)
        err = [e for e in events if e["event"] == "config_error"]
        self.assertEqual(len(err), 1, stderr)
        self.assertEqual(err[0]["key"], "no_such_key")
        self.assertEqual(err[0]["file"], "/etc/programs-cached/programs-cached.conf")

    def test_missing_secret_exits_2(self):
        mc = self.start_memcached()
        c = self.container(self.sections(mc))       # no client-secret
        rc, events, stderr = c.run_once()
        self.assertEqual(rc, 2, stderr)
        err = [e for e in events if e["event"] == "config_error"]
        self.assertTrue(err and "/run/secrets/client-secret" in str(err), stderr)
