"""The configuration file as an attacker or a mistaken operator gives it
(SPEC §8, §12): files that are not regular files or are too large, too
many servers, a secret only the unit can read, and a SIGHUP with a bad
file, seen through the exit status, the events, sd_notify's STATUS= and
/metrics; the cache is checked to be what the old configuration writes."""

import os
import signal
import time

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

from tests.integration.test_ops import scrape, wait_until

SITE = "lms.example.com"


def named(events, name):
    return [e for e in events if e["event"] == name]


class NotARegularFile(PcdTestCase):
    """-c names something that is not a regular file of at most 1 MiB: a
    config_error naming the cause and exit 2, at once (a FIFO without a
    writer must not block, /dev/zero must not be read to exhaustion)."""

    def setUp(self):
        super().setUp()
        self.d = self.daemon({"site a.example": {"site_id": 1}})

    def fifo(self):
        path = os.path.join(self.tmpdir, "fifo.conf")
        os.mkfifo(path)
        return path

    def huge(self):
        # Valid text (comments), one byte over the bound.
        path = os.path.join(self.tmpdir, "huge.conf")
        with open(path, "w") as f:
            f.write("[site a]\nsite_id = 1\n")
            f.write(("#" * 63 + "\n") * (1024 * 1024 // 64))
        return path

    def test_each_kind_is_refused_with_its_cause(self):
        cases = [
            ("/dev/zero", "not a regular file: a character device"),
            (self.fifo(), "not a regular file: a FIFO"),
            (self.tmpdir, "not a regular file: a directory"),
            (self.huge(), "too large: 1048597 bytes (at most 1048576)"),
        ]
        for path, words in cases:
            for mode in (["--check-config"], ["--once"], [], ["--verify"]):
                with self.subTest(path=path, mode=mode):
                    t0 = time.monotonic()
                    rc, events, stderr = self.d.run("-c", path, *mode, timeout=20)
                    self.assertEqual(rc, 2, stderr)
                    self.assertLess(time.monotonic() - t0, 10)
                    errs = named(events, "config_error")
                    self.assertEqual(len(errs), 1, stderr)
                    self.assertEqual(errs[0]["file"], path)
                    self.assertIn(words, errs[0]["error"])

    def test_exactly_the_bound_is_read(self):
        path = os.path.join(self.tmpdir, "full.conf")
        head = "[site a]\nsite_id = 1\n"
        with open(path, "w") as f:
            f.write(head)
            body = ("#" * 63 + "\n") * (1024 * 1024 // 64)
            f.write(body[:1024 * 1024 - len(head)])
        self.assertEqual(os.path.getsize(path), 1024 * 1024)
        rc, events, stderr = self.d.run("-c", path, "--check-config")
        self.assertEqual(rc, 0, stderr)

    def test_too_many_servers(self):
        # 64 servers is the most placement supports (STORE_MAX_SERVERS).
        hosts = [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
            [chr(c) for c in range(ord("A"), ord("Z") + 1)] + \
            [str(i) for i in range(10)] + ["aa", "bb", "cc"]
        for n, rc_want in ((64, 0), (65, 2)):
            with self.subTest(servers=n):
                path = self.write_file("servers.conf", "[memcached]\nservers = %s\n"
                                       "[site a]\nsite_id = 1\n" % " ".join(hosts[:n]))
                rc, events, stderr = self.d.run("-c", path, "--check-config")
                self.assertEqual(rc, rc_want, stderr)
                if rc_want:
                    err = named(events, "config_error")[0]
                    self.assertEqual((err["line"], err["key"]), (2, "servers"))
                    self.assertIn("more than 64 servers", err["error"])


class Secrets(PcdTestCase):
    """--check-config validates where the secret comes from but only warns
    when the caller cannot read it (the unit may, through LoadCredential);
    --verify never needs it; the daemon and --once still require it."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(6, seed=5)
        self.fake = self.start_fake(self.cat, require_auth=True)

    def make(self, discovery=None, env=None, name="pcd"):
        state = os.path.join(self.tmpdir, "state")
        os.makedirs(state, exist_ok=True)
        return self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                       discovery=discovery, daemon={"state_dir": state}),
                           env=env, name=name)

    def test_unreadable_secret_is_a_warning_for_check_config(self):
        cases = [
            ({"client_secret_file": "/nonexistent/secret"}, None, "client_secret_file",
             "cannot read /nonexistent/secret here"),
            ({"client_secret_file": None}, None, "client_secret_file",
             "no $CREDENTIALS_DIRECTORY here"),
            ({"client_secret_file": None}, {"CREDENTIALS_DIRECTORY": "/nonexistent"},
             "client_secret_file", "cannot read $CREDENTIALS_DIRECTORY/client-secret "
             "/nonexistent/client-secret here"),
            ({"client_id": None, "oauth_url": None, "client_secret_file": None,
              "token_file": "/nonexistent/token"}, None, "token_file",
             "cannot read /nonexistent/token here"),
        ]
        for disc, env, key, words in cases:
            with self.subTest(disc=disc, env=env):
                d = self.make(discovery=disc, env=env)
                rc, events, stderr = d.run("--check-config")
                self.assertEqual(rc, 0, stderr)
                self.assertEqual(named(events, "config_error"), [])
                warn = named(events, "config_warning")
                self.assertEqual(len(warn), 1, stderr)
                self.assertEqual(warn[0]["key"], key)
                self.assertIn(words, warn[0]["warning"])
                self.assertEqual(len(named(events, "config_loaded")), 1)
                # The daemon needs it: a config_error at start, exit 2,
                # nothing written.
                rc, events, stderr = d.run_once()
                self.assertEqual(rc, 2, stderr)
                self.assertEqual(named(events, "config_error")[0]["key"], key)
                self.assertEqual(self.mc.dump_keys(), set())

    def test_check_config_still_fails_on_other_errors(self):
        d = self.make(discovery={"client_secret_file": "/nonexistent/secret",
                                 "retries": "many"})
        rc, events, stderr = d.run("--check-config")
        self.assertEqual(rc, 2, stderr)
        self.assertEqual(named(events, "config_error")[0]["key"], "retries")

    def test_readable_secret_gives_no_warning(self):
        rc, events, stderr = self.make().run("--check-config")
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(named(events, "config_warning"), [])

    def test_verify_never_needs_the_secret(self):
        good = self.make(name="good")
        rc, _, stderr = good.run_once()
        self.assertEqual(rc, 0, stderr)
        for i, disc in enumerate(({"client_secret_file": "/nonexistent/secret"},
                                  {"client_secret_file": None})):
            with self.subTest(disc=disc):
                d = self.make(discovery=disc, name="verify%d" % i)
                rc, events, stderr = d.run("--verify")
                self.assertEqual(rc, 0, stderr)
                self.assertEqual(named(events, "config_error"), [])
                self.assertEqual(named(events, "config_warning"), [])
                # It did compare: a key deleted is reported.
                self.mc.delete(sorted(self.mc.dump_keys())[0])
                self.assertEqual(d.run("--verify")[0], 1)
                self.assertEqual(good.run_once()[0], 0)


    def test_daemon_reports_a_secret_that_became_unreadable(self):
        """Readable at start; gone later: a SIGHUP keeps the configuration
        (config_error), and the token the next refresh needs fails with
        token_failed naming the file, not the secret; nothing is lost."""
        d = self.make()
        d.sections["daemon"]["refresh_interval"] = "1h"
        d.write_config()
        secret = d.sections["discovery"]["client_secret_file"]
        d.start()
        d.wait_event("refresh_succeeded", timeout=20)
        before = {k: self.mc.get(k) for k in self.mc.dump_keys()}
        os.unlink(secret)
        self.fake.expire_tokens()
        d.send_signal(signal.SIGHUP)
        err = d.wait_event("config_error", predicate=lambda e: e.get("key"))
        self.assertEqual(err["key"], "client_secret_file")
        failed = d.wait_event("token_failed", timeout=20)
        self.assertIn("cannot read the secret %s" % secret, failed["error"])
        self.assertNotIn(self.fake.client_secret, d.stderr_text)
        d.wait_event("refresh_failed", timeout=20)
        self.assertTrue(d.running)
        self.assertEqual({k: self.mc.get(k) for k in self.mc.dump_keys()}, before)
        self.assertEqual(d.stop(), 0)


class ReloadFailure(PcdTestCase):
    """SIGHUP with a bad file: the old configuration stays in use (the
    refresh SIGHUP asks for still writes what it writes), /metrics says the
    reload failed and when, STATUS= says why; a good file again clears it."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(8, seed=3)
        self.fake = self.start_fake(self.cat)

    def test_bad_files_keep_the_old_configuration(self):
        d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                    daemon={"refresh_interval": "1h",
                                            "listen": "127.0.0.1:0"}),
                        notify=True)
        d.start()
        addr = d.wait_event("listening")["address"]
        d.wait_event("refresh_succeeded", timeout=20)
        samples, _ = scrape(addr)
        self.assertEqual(samples[("programs_cached_config_last_reload_success", ())], 1)
        started = samples[("programs_cached_config_last_reload_timestamp_seconds", ())]
        self.assertLessEqual(abs(started - time.time()), 30)
        self.assertEqual(started, int(started))
        good = d.config_path.read_text()
        path = str(d.config_path)

        def fifo():
            os.unlink(path)
            os.mkfifo(path)

        def directory():
            os.unlink(path)
            os.mkdir(path)

        def zero():
            os.unlink(path)
            os.symlink("/dev/zero", path)

        def huge():
            with open(path, "a") as f:
                f.write(("#" * 63 + "\n") * (1024 * 1024 // 64))

        def bad_line():
            with open(path, "a") as f:
                f.write("[daemon]\ncheck_interval = soon\n")

        def restore():
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            elif os.path.lexists(path):
                os.unlink(path)
            with open(path, "w") as f:
                f.write(good)

        lines = len(good.splitlines())
        cases = [
            (fifo, "%s: not a regular file: a FIFO" % path),
            (directory, "%s: not a regular file: a directory" % path),
            (zero, "%s: not a regular file: a character device" % path),
            (huge, "%s: too large: " % path),
            (bad_line, "%s line %d: check_interval: bad duration \"soon\""
             % (path, lines + 2)),
        ]
        n = 1
        for make_bad, why in cases:
            with self.subTest(why=why):
                make_bad()
                mark = len(d.notify.messages)
                errors = len(d.events_named("config_error"))
                before = time.time()
                d.send_signal(signal.SIGHUP)
                n += 1
                d.wait_events("refresh_succeeded", n, timeout=20)
                self.assertTrue(d.running)
                self.assertGreater(len(d.events_named("config_error")), errors)
                status = d.notify.wait("STATUS=reload failed: " + why, since=mark,
                                       prefix=True)
                self.assertIn("; running with the previous configuration", status)
                # Still said once the refresh the SIGHUP asked for ended.
                ended = wait_until(lambda: [
                    line for line in d.notify.lines(mark) if line.startswith("STATUS=")
                    and "last refresh ok" in line and "refreshing;" not in line],
                    what="STATUS= after the refresh")
                self.assertTrue(ended[-1].startswith("STATUS=reload failed: " + why), ended)
                samples, _ = scrape(addr)
                self.assertEqual(samples[("programs_cached_config_last_reload_success", ())], 0)
                t = samples[("programs_cached_config_last_reload_timestamp_seconds", ())]
                self.assertGreaterEqual(t, int(before))
                # The old configuration wrote the cache: every key is there.
                expected = reference.expected_cache(
                    [{"domain": SITE, "site_id": 1, "catalogue": self.cat}])
                self.assertCacheMatches(self.reader([self.mc]), expected)
                restore()

        mark = len(d.notify.messages)
        d.send_signal(signal.SIGHUP)
        d.wait_events("refresh_succeeded", n + 1, timeout=20)
        samples, _ = scrape(addr)
        self.assertEqual(samples[("programs_cached_config_last_reload_success", ())], 1)
        d.notify.wait("STATUS=last refresh ok", since=mark, prefix=True)
        after = [line for line in d.notify.lines(d.notify.index("RELOADING=1", since=mark))
                 if line.startswith("STATUS=")]
        self.assertEqual([line for line in after if "reload failed" in line], [], after)
        self.assertEqual(d.stop(), 0)


class PrintSettings(PcdTestCase):
    """--print-settings lists every key of the table with
    its default; uncommented, those defaults are a valid configuration,
    and every key of the example configuration is among them."""

    def test_defaults_are_a_valid_configuration(self):
        d = self.daemon({"site a.example": {"site_id": 1}})
        r = d.run("--print-settings")
        self.assertEqual(r.returncode, 0, r.stderr)
        stdout = r.stdout
        keys, lines, section = set(), [], None
        for line in stdout.splitlines():
            if line.startswith("["):
                section = line.strip("[]").split()[0]
                lines.append("[site a.example]" if section == "site" else line)
            elif line.startswith("#") and " =" in line and not line.startswith("# "):
                name, _, value = line[1:].partition(" =")
                keys.add((section, name))
                if section == "site" and name == "site_id":
                    lines.append("site_id = 1")
                elif value.strip():
                    lines.append("%s = %s" % (name, value.strip()))
        self.assertIn(("memcached", "servers"), keys)
        self.assertIn(("site", "catalog_api_url"), keys)
        path = self.write_file("defaults.conf", "\n".join(lines) + "\n")
        rc, events, stderr = d.run("-c", path, "--check-config")
        self.assertEqual(rc, 0, stderr)
        example, section = set(), None
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "conf",
                               "programs-cached.conf")) as f:
            for line in f:
                if line.startswith("["):
                    section = line.strip().strip("[]").split()[0]
                elif " =" in line and not line.startswith("# "):
                    example.add((section, line.lstrip("#").split(" =")[0]))
        self.assertEqual(example, keys)
