"""The configuration file as an attacker or a mistaken operator gives it
(docs/configuration.md; design.md, Security): files that are not regular files or are too large, too
many servers, a secret only the unit can read, a site with no way to get
a token, a URL left in the example's domain, and a SIGHUP with a bad
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


def line_of(path, prefix):
    """The 1-based number of the first line of path starting with prefix."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith(prefix):
                return n
    raise AssertionError("%s: no line starting with %r" % (path, prefix))


class Auth(PcdTestCase):
    """A site that asks Discovery needs a way to get a token: OAuth2
    (oauth_url and client_id) or token_file, or auth = none saying that
    this Discovery wants none (as the fake does unless require_auth).
    Without one, every mode refuses the file at once, naming the file, the
    line and the key, before any request."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(4, seed=9)
        self.fake = self.start_fake(self.cat)

    def make(self, discovery=None, sites=((SITE, 1, ""),), auth=False, name="pcd"):
        state = os.path.join(self.tmpdir, "state")
        os.makedirs(state, exist_ok=True)
        return self.daemon(self.config(self.fake, [self.mc], list(sites), auth=auth,
                                       discovery=discovery, daemon={"state_dir": state}),
                           name=name)

    def test_no_way_to_authenticate_is_refused_in_every_mode(self):
        d = self.make(discovery={"auth": None})
        path = str(d.config_path)
        line = line_of(path, "catalog_api_url")
        for mode in (["--check-config"], ["--once"], ["--dry-run"], []):
            with self.subTest(mode=mode):
                rc, events, stderr = d.run(*mode, timeout=20)
                self.assertEqual(rc, 2, stderr)
                errs = named(events, "config_error")
                self.assertEqual(len(errs), 1, stderr)
                self.assertEqual((errs[0]["file"], errs[0]["line"], errs[0]["key"]),
                                 (path, line, "catalog_api_url"))
                self.assertIn("[site %s] asks Discovery, but [discovery] has no way "
                              "to get a token" % SITE, errs[0]["error"])
                self.assertIn("auth = none", errs[0]["error"])
        self.assertEqual(self.fake.requests, [])
        self.assertEqual(self.mc.dump_keys(), set())

    def test_oauth_url_alone_is_no_way(self):
        d = self.make(discovery={"auth": None, "oauth_url": self.fake.oauth_url})
        rc, events, stderr = d.run("--check-config")
        self.assertEqual(rc, 2, stderr)
        self.assertEqual(named(events, "config_error")[0]["key"], "catalog_api_url")

    def test_unconfigured_sites_need_no_token(self):
        d = self.make(discovery={"auth": None}, sites=[(SITE, 1, None), ("b.example", 2, None)])
        rc, events, stderr = d.run("--check-config")
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(named(events, "config_warning"), [])

    def test_auth_none_says_so_and_sends_no_token(self):
        d = self.make(discovery={"auth": "none"})
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertTrue(self.fake.requests)
        self.assertEqual([r.path for r in self.fake.requests
                          if "authorization" in r.headers], [])
        self.assertEqual(named(events, "config_warning"), [])

    def test_explicit_ways(self):
        token = self.write_file("token", "abc.def.ghi\n")
        cases = [
            ({"auth": "oauth2"}, True, 0, None, None),
            ({"auth": "token", "token_file": token}, False, 0, None, None),
            ({"auth": "oauth2"}, False, 2, "auth", "auth = oauth2 needs client_id and oauth_url"),
            ({"auth": "token"}, False, 2, "auth", "auth = token needs token_file"),
            ({"auth": "none"}, True, 2, "auth", "auth = none, but client_id is set"),
            ({"auth": "none", "token_file": token}, False, 2, "auth",
             "auth = none, but token_file is set"),
            ({"auth": "anonymous"}, False, 2, "auth",
             "bad value \"anonymous\" (want auto, oauth2, token or none)"),
        ]
        for i, (disc, auth, rc_want, key, words) in enumerate(cases):
            with self.subTest(disc=disc, auth=auth):
                d = self.make(discovery=disc, auth=auth, name="auth%d" % i)
                rc, events, stderr = d.run("--check-config")
                self.assertEqual(rc, rc_want, stderr)
                if rc_want == 0:
                    continue
                err = named(events, "config_error")[0]
                self.assertEqual((err["key"], err["line"]),
                                 (key, line_of(str(d.config_path), "auth =")))
                self.assertIn(words, err["error"])


CONF_EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "conf",
                            "programs-cached.conf")


class ExampleDomain(PcdTestCase):
    """A URL left in a domain reserved for examples, as the shipped file's
    discovery.example.com and lms.example.com are: a config_warning naming
    the key and its line, in --check-config and every other mode."""

    def run_check(self, path):
        d = self.daemon({"site a.example": {"site_id": 1}})
        return d.run("-c", path, "--check-config")

    def test_the_shipped_configuration(self):
        path = os.path.abspath(CONF_EXAMPLE)
        rc, events, stderr = self.run_check(path)
        self.assertEqual(rc, 0, stderr)
        warned = {(w["key"], w["line"]): w["warning"] for w in named(events, "config_warning")}
        url = line_of(path, "catalog_api_url =")
        oauth = line_of(path, "oauth_url =")
        self.assertIn("discovery.example.com is a domain reserved for examples",
                      warned[("catalog_api_url", url)])
        self.assertIn("lms.example.com is a domain reserved for examples",
                      warned[("oauth_url", oauth)])
        # Without its oauth_url and client_id (as it once was shipped),
        # the file is refused: its site would be asked without a token.
        with open(path) as f:
            text = f.read()
        bare = self.write_file("bare.conf", text.replace("\noauth_url =", "\n#oauth_url =")
                               .replace("\nclient_id =", "\n#client_id ="))
        rc, events, stderr = self.run_check(bare)
        self.assertEqual(rc, 2, stderr)
        err = named(events, "config_error")[0]
        self.assertEqual((err["key"], err["line"]), ("catalog_api_url", url))

    def test_reserved_domains_and_their_neighbours(self):
        cases = [
            ("https://Discovery.Example.COM/api/v1", True),
            ("http://example.org:8000/api/v1", True),
            ("https://disco.example/api/v1", True),
            ("https://[::1]:8000/api/v1", False),
            ("https://notexample.com/api/v1", False),
            ("https://example.com.internal/api/v1", False),
            ("https://discovery.example.edu/api/v1", False),
        ]
        for url, warns in cases:
            with self.subTest(url=url):
                path = self.write_file("ex.conf", "[discovery]\nauth = none\n"
                                       "[site a]\nsite_id = 1\ncatalog_api_url = %s\n" % url)
                rc, events, stderr = self.run_check(path)
                self.assertEqual(rc, 0, stderr)
                warned = named(events, "config_warning")
                self.assertEqual(len(warned), 1 if warns else 0, stderr)
                if warns:
                    self.assertEqual((warned[0]["key"], warned[0]["line"]),
                                     ("catalog_api_url", 5))

    def test_other_modes_warn_too(self):
        # --verify reads no network: the warning comes from loading alone.
        state = os.path.join(self.tmpdir, "state")
        os.makedirs(state)
        path = self.write_file("ex.conf", "[discovery]\nauth = none\n"
                               "[daemon]\nstate_dir = %s\n"
                               "[site a]\nsite_id = 1\n"
                               "catalog_api_url = http://127.0.0.1:1/api\n"
                               "[site b]\nsite_id = 2\n"
                               "catalog_api_url = https://discovery.example.com/api/v1\n"
                               % state)
        d = self.daemon({"site a.example": {"site_id": 1}})
        rc, events, stderr = d.run("-c", path, "--verify", timeout=20)
        self.assertEqual(rc, 2, stderr)     # no snapshot yet
        warned = named(events, "config_warning")
        self.assertEqual([(w["key"], w["line"]) for w in warned], [("catalog_api_url", 10)])


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
