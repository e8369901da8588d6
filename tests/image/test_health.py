"""programs-cached --health, the image's health check, run here from the
build (no container): it asks the running daemon's listener for /readyz
and exits 0 when ready, 1 otherwise, saying why on stderr."""

import os
import subprocess

from tests.support.harness import PcdTestCase, daemon_binary, free_port
from tests.support import catalog


class Health(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.fake = self.start_fake(catalog.sample())
        self.port = free_port()

    def sections(self, listen):
        return self.config(self.fake, [self.mc], [("lms.example.com", 1, "")],
                           daemon={"listen": listen, "check_interval": "1s",
                                   "refresh_interval": "1h"})

    def health(self, d, *extra, env=None):
        p = subprocess.run([daemon_binary(), "-c", str(d.config_path), "--health"] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, **(env or {})), timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_not_ready_ready_then_not(self):
        # A wildcard address is asked on loopback.
        d = self.daemon(self.sections("0.0.0.0:%d" % self.port))
        self.fake.set_latency(5, match=self.fake.uuids_target())
        d.start()
        d.wait_event("listening")
        rc, out, err = self.health(d)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "programs-cached: not ready: nothing published yet: "
                         "the first refresh is running\n")
        self.fake.clear_latency()
        d.wait_event("refresh_succeeded", timeout=20)
        rc, out, err = self.health(d)
        self.assertEqual((rc, out, err), (0, "ready\n", ""))
        # A proxy in the environment is not used for the daemon's own port.
        rc, out, err = self.health(d, env={"http_proxy": "http://127.0.0.1:9",
                                           "HTTP_PROXY": "http://127.0.0.1:9"})
        self.assertEqual((rc, out), (0, "ready\n"), err)
        self.mc.kill9()
        d.wait_event("memcached_error", timeout=20)
        rc, out, err = self.health(d)
        self.assertEqual(rc, 1)
        self.assertIn("programs-cached: not ready: memcached unreachable: %s" % self.mc.address,
                      err)

    def test_no_daemon(self):
        d = self.daemon(self.sections("127.0.0.1:%d" % self.port))
        rc, out, err = self.health(d)
        self.assertEqual(rc, 1)
        self.assertIn("programs-cached: no answer from http://127.0.0.1:%d/readyz: " % self.port,
                      err)

    def test_no_listen(self):
        d = self.daemon(self.sections(None))
        rc, out, err = self.health(d)
        self.assertEqual(rc, 1)
        self.assertEqual(err, "programs-cached: --health asks the daemon's listener, and %s "
                         "sets no [daemon] listen = host:port\n" % d.config_path)

    def test_bad_config_is_unhealthy_not_2(self):
        """Docker reserves exit status 2 in health checks."""
        s = self.sections("127.0.0.1:%d" % self.port)
        s["daemon"]["bogus"] = "1"
        d = self.daemon(s)
        rc, out, err = self.health(d)
        self.assertEqual(rc, 1)
        self.assertIn('"event":"config_error"', err)
        self.assertIn('"key":"bogus"', err)

    def test_secrets_are_not_read(self):
        """The health check runs as the daemon's user but needs no secret."""
        s = self.sections("127.0.0.1:%d" % self.port)
        s["discovery"] = {"oauth_url": "http://127.0.0.1:9", "client_id": "x",
                          "client_secret_file": "/nonexistent/secret"}
        d = self.daemon(s)
        rc, out, err = self.health(d)
        self.assertEqual(rc, 1)
        self.assertIn("no answer from", err)
        self.assertNotIn("secret", err)

    def test_not_with_another_mode(self):
        d = self.daemon(self.sections("127.0.0.1:%d" % self.port))
        for other in ("--once", "--verify", "--check-config", "--dry-run", "--force"):
            rc, out, err = self.health(d, other)
            self.assertEqual(rc, 2, other)
            self.assertIn("--health cannot be combined", err)
