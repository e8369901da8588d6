"""The operator's side of the package: the systemd unit (systemd-analyze
verify and security, offline: no systemd runs as PID 1 here), `make install`
and `make uninstall` into a DESTDIR, and the man pages (mandoc -Tlint, and
every option and key documented)."""

import os
import re
import shutil
import stat
import subprocess
import unittest
from pathlib import Path

from tests.support.harness import REPO, PcdTestCase, daemon_binary

UNIT = REPO / "systemd" / "programs-cached.service"
MAX_EXPOSURE = 2.0


def unit_settings(text):
    """{key: [values]} of a unit file (sections merged; keys repeat)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def analyze(*args, env=None):
    """systemd-analyze args...; (returncode, stdout + stderr)."""
    p = subprocess.run(["systemd-analyze", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def check_unit(test, unit_path, binary, manpath=None):
    """Verify a copy of unit_path whose ExecStart= and ExecReload= run
    binary (verify insists that it exists), and return its exposure score.  With manpath,
    Documentation=man: pages are looked up there too."""
    text = Path(unit_path).read_text()
    copy_dir = Path(test.tmpdir) / "unit-check"
    copy_dir.mkdir(exist_ok=True)
    copy = copy_dir / "programs-cached.service"
    copy.write_text(re.sub(r"^(ExecStart|ExecReload)=\S+/programs-cached ",
                           lambda m: "%s=%s " % (m.group(1), binary), text, flags=re.M))
    env = dict(os.environ)
    if manpath and shutil.which("man"):
        env["MANPATH"] = manpath
        rc, out = analyze("verify", str(copy), env=env)
    else:
        rc, out = analyze("verify", "--man=no", str(copy))
    test.assertEqual((rc, out), (0, ""), "systemd-analyze verify")
    rc, out = analyze("security", "--offline=yes", "--threshold=%d" % (MAX_EXPOSURE * 10),
                      str(copy))
    m = re.search(r"Overall exposure level for programs-cached\.service: (\d+\.\d+)", out)
    test.assertIsNotNone(m, out)
    exposure = float(m.group(1))
    test.assertEqual(rc, 0, out)
    test.assertLessEqual(exposure, MAX_EXPOSURE, out)
    if os.environ.get("PCD_TEST_VERBOSE"):
        print("\n%s: exposure %.1f" % (unit_path, exposure))
    return exposure


class Unit(PcdTestCase):

    def test_declares_what_the_daemon_relies_on(self):
        s = unit_settings(UNIT.read_text())
        one = {k: v[-1] for k, v in s.items()}
        self.assertEqual(one["Type"], "notify")
        self.assertEqual(one["NotifyAccess"], "main")
        # The file is checked before the SIGHUP: a broken one fails the reload.
        self.assertEqual(s["ExecReload"], [
            "/usr/local/sbin/programs-cached --check-config -c "
            "/etc/programs-cached/programs-cached.conf", "/bin/kill -HUP $MAINPID"])
        self.assertRegex(one["ExecStart"], r"^/usr/local/sbin/programs-cached -c "
                                           r"/etc/programs-cached/programs-cached\.conf$")
        self.assertRegex(one["WatchdogSec"], r"^\d+s$")
        self.assertEqual(one["Restart"], "on-failure")
        self.assertEqual(one["StateDirectory"], "programs-cached")
        self.assertEqual(one["LoadCredential"],
                         "client-secret:/etc/programs-cached/client-secret")
        for k in ("DynamicUser", "ProtectSystem", "NoNewPrivileges", "PrivateTmp",
                  "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
                  "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
                  "ProtectHostname", "RestrictNamespaces", "RestrictRealtime",
                  "LockPersonality", "MemoryDenyWriteExecute", "SystemCallArchitectures"):
            self.assertIn(one.get(k), ("yes", "strict", "native"), k)
        self.assertEqual(one["CapabilityBoundingSet"], "")
        self.assertEqual(one["UMask"], "0077")
        self.assertEqual(one["RestrictAddressFamilies"], "AF_UNIX AF_INET AF_INET6")
        self.assertEqual(s["SystemCallFilter"][0], "@system-service")
        # The daemon's default state_dir is the StateDirectory.
        conf = (REPO / "conf" / "programs-cached.conf").read_text()
        self.assertIn("#state_dir = /var/lib/programs-cached\n", conf)

    def test_verify_is_clean_and_exposure_at_most_2(self):
        check_unit(self, UNIT, daemon_binary())


class Install(PcdTestCase):

    def make(self, *args):
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        build = os.environ.get("PCD_BUILD", "build")
        p = subprocess.run(["make", "-s", "-C", str(REPO), "BUILD=" + build, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout.decode())

    def files_under(self, root):
        return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*")
                      if p.is_file() or p.is_symlink())

    def test_install_and_uninstall_into_destdir(self):
        for prefix, sysconf in (("/usr", "/etc"), ("/usr/local", "/opt/etc")):
            with self.subTest(prefix=prefix, sysconfdir=sysconf):
                dest = Path(self.tmpdir) / ("dest" + prefix.replace("/", "-"))
                # The operator's own configuration is neither overwritten
                # nor removed.
                mine = dest / sysconf.lstrip("/") / "programs-cached" / "programs-cached.conf"
                mine.parent.mkdir(parents=True)
                mine.write_text("# mine\n")
                args = ["DESTDIR=" + str(dest), "PREFIX=" + prefix, "SYSCONFDIR=" + sysconf]
                self.make("install", *args)
                p, e = prefix.lstrip("/"), sysconf.lstrip("/")
                want = sorted([
                    "%s/programs-cached/programs-cached.conf" % e,
                    "%s/programs-cached/programs-cached.conf.example" % e,
                    "%s/lib/systemd/system/programs-cached.service" % p,
                    "%s/sbin/programs-cached" % p,
                    "%s/share/man/man5/programs-cached.conf.5" % p,
                    "%s/share/man/man8/programs-cached.8" % p])
                self.assertEqual(self.files_under(dest), want)
                self.assertEqual(mine.read_text(), "# mine\n")
                binary = dest / p / "sbin" / "programs-cached"
                self.assertEqual(stat.S_IMODE(binary.stat().st_mode), 0o755)
                out = subprocess.run([str(binary), "--version"], stdout=subprocess.PIPE,
                                     check=True).stdout.decode()
                self.assertTrue(out.startswith("programs-cached "), out)
                unit = dest / p / "lib/systemd/system/programs-cached.service"
                self.assertEqual(stat.S_IMODE(unit.stat().st_mode), 0o644)
                s = unit_settings(unit.read_text())
                self.assertEqual(s["ExecStart"], ["%s/sbin/programs-cached -c %s/programs-cached/"
                                                  "programs-cached.conf" % (prefix, sysconf)])
                self.assertEqual(s["ExecReload"][0], "%s/sbin/programs-cached --check-config -c "
                                 "%s/programs-cached/programs-cached.conf" % (prefix, sysconf))
                self.assertEqual(s["LoadCredential"],
                                 ["client-secret:%s/programs-cached/client-secret" % sysconf])
                man5 = (dest / p / "share/man/man5/programs-cached.conf.5").read_text()
                self.assertIn("%s/programs-cached/programs-cached.conf" % sysconf, man5)
                check_unit(self, unit, binary, manpath=str(dest / p / "share/man"))

                self.make("uninstall", *args)
                self.assertEqual(self.files_under(dest),
                                 ["%s/programs-cached/programs-cached.conf" % e])
                mine.unlink()
                self.make("uninstall", *args)  # twice is fine
                self.assertFalse(mine.parent.exists())


class ManPages(unittest.TestCase):

    PAGES = [REPO / "man" / "programs-cached.8", REPO / "man" / "programs-cached.conf.5"]

    def test_mandoc_lint_is_clean(self):
        if not shutil.which("mandoc"):
            self.skipTest("mandoc is not installed (tools/deps.sh test)")
        for page in self.PAGES:
            p = subprocess.run(["mandoc", "-Tlint", "-Wwarning", str(page)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual((p.returncode, p.stdout.decode()), (0, ""), page)

    def section(self, page, start, end):
        """The text of page from the line start to the line end."""
        text = page.read_text()
        i = text.index(start + "\n")
        return text[i:text.index(end + "\n", i)]

    def test_options_agree_with_the_option_table(self):
        """main.c's option table, --help, and programs-cached(8)'s synopsis
        and option list name the same flags."""
        src = (REPO / "src" / "main.c").read_text()
        table = src[src.index("longopts[] = {"):]
        table = set(re.findall(r'\{ "([a-z][a-z-]*)",', table[:table.index("};")]))
        shorts = set(re.search(r'getopt_long\(argc, argv, "([^"]*)"', src).group(1)
                     .replace(":", ""))
        self.assertGreater(len(table), 8)
        self.assertEqual(shorts, {"c", "h"})
        out = subprocess.run([daemon_binary(), "--help"], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        self.assertEqual(set(re.findall(r"--([a-z][a-z-]+)", out)), table, "--help")
        self.assertEqual(set(re.findall(r"(?<![\w-])-([a-z])\b", out)), shorts, "--help")
        page = self.PAGES[0]
        synopsis = self.section(page, ".Sh SYNOPSIS", ".Sh DESCRIPTION")
        self.assertEqual(set(re.findall(r"Fl \\-([a-z][a-z-]+)", synopsis)) | {"config"},
                         table, "synopsis (-c stands for --config)")
        self.assertEqual(set(re.findall(r"Fl ([a-z])\b", synopsis)), {"c"}, "synopsis")
        options = self.section(page, "The options are as follows:", ".Sh SIGNALS")
        items = "\n".join(l for l in options.splitlines() if l.startswith(".It "))
        self.assertEqual(set(re.findall(r"Fl \\-([a-z][a-z-]+)", items)), table, "options")
        self.assertEqual(set(re.findall(r"Fl ([a-z])\b", items)), shorts, "options")

    def listed(self, start, end):
        """The names of the .It Li lines of a section of programs-cached(8)."""
        text = self.section(self.PAGES[0], start, end)
        names = set()
        for line in text.splitlines():
            if line.startswith(".It Li "):
                for item in line[len(".It Li "):].split(" , "):
                    names.add(re.sub(r"\{.*", "", item.strip()))
        return names

    def test_every_metric_is_documented(self):
        """Every series name src/metrics.c and src/ops.c can emit is in the
        man page's list of metrics, and the list names no other."""
        code = set()
        for f in ("metrics.c", "ops.c"):
            code |= set(re.findall(r'"((?:programs_cached|process)_[a-z_]+)',
                                   (REPO / "src" / f).read_text()))
        # A summary's or a histogram's own series are its name's.
        code = {n for n in code if not any(n.endswith(x) and n[:-len(x)] in code
                                           for x in ("_sum", "_count", "_bucket"))}
        self.assertGreater(len(code), 35)
        self.assertEqual(self.listed(".Ss Metrics", ".Sh LOGGING"), code)

    def test_every_event_is_documented(self):
        """Every event the code logs is in the man page's list of events,
        and the list names no other."""
        code = set()
        for f in (REPO / "src").glob("*.c"):
            code |= set(re.findall(r'log_event\(\s*[^,"]+,\s*"(\w+)"', f.read_text()))
        code.discard("debug")
        self.assertGreater(len(code), 35)
        self.assertEqual(self.listed(".Ss Events", ".Ss Message IDs"), code)

    def test_every_key_is_documented(self):
        """Each key of the example configuration is in programs-cached.conf(5),
        in the right section."""
        conf = (REPO / "conf" / "programs-cached.conf").read_text()
        page = self.PAGES[1].read_text()
        sections = re.split(r"^\.Ss ", page, flags=re.M)[1:]
        by_section = {s.split("\n", 1)[0].split()[0].strip("[]"): s for s in sections}
        current, n = None, 0
        for line in conf.splitlines():
            m = re.match(r"^\[(\w+)", line)
            if m:
                current = m.group(1)
                continue
            m = re.match(r"^#?([a-z_]+) = ", line)
            if m and current:
                n += 1
                self.assertRegex(by_section[current], r"\.It Ic (\S+ , Ic )*%s\b" % m.group(1),
                                 "%s in [%s]" % (m.group(1), current))
        self.assertGreater(n, 30)


class CommandLine(unittest.TestCase):

    def test_once_and_dry_run_exclude_each_other(self):
        """Either order: exit 2 and a message naming both, before any
        configuration is read (the file named does not exist)."""
        for args in (["--once", "--dry-run"], ["--dry-run", "--once"]):
            with self.subTest(args=args):
                p = subprocess.run([daemon_binary(), "-c", "/nonexistent.conf", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 2, err)
                self.assertIn("--once and --dry-run exclude each other", err)
                self.assertIn("--help", err)
                self.assertNotIn("nonexistent", err)


class Deps(unittest.TestCase):

    def test_readme_lists_what_deps_installs(self):
        """README's table of packages is tools/deps.sh's, group by group."""
        def listed(target):
            return set(subprocess.run(["sh", str(REPO / "tools" / "deps.sh"), "list", target],
                                      stdout=subprocess.PIPE, check=True).stdout.decode().split())
        base = {"build": set(), "test": listed("build"), "systemd": listed("test"),
                "deb": listed("build"), "bench": listed("test"), "fuzz": listed("build"),
                "lint": listed("build"), "image": listed("test")}
        readme = (REPO / "README.md").read_text()
        rows = dict(re.findall(r"^\| (\w+): `([^`]+)` \|", readme, flags=re.M))
        self.assertEqual(set(rows), set(base))
        for group, packages in rows.items():
            with self.subTest(group=group):
                self.assertEqual(set(packages.split()), listed(group) - base[group])
        self.assertEqual(set().union(*(set(p.split()) for p in rows.values())), listed("all"))


class Alerts(unittest.TestCase):

    def test_every_rule_has_a_runbook_in_troubleshooting(self):
        """Each rule of contrib/prometheus/alerts.yml has a runbook_url, the
        section of docs/troubleshooting.md named after it."""
        rules = (REPO / "contrib" / "prometheus" / "alerts.yml").read_text()
        doc = (REPO / "docs" / "troubleshooting.md").read_text()
        # GitHub's anchors: lower case, punctuation dropped, spaces to "-".
        anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                   for h in re.findall(r"^#+ (.*)$", doc, flags=re.M)}
        blocks = re.split(r"^      - alert: ", rules, flags=re.M)[1:]
        self.assertGreaterEqual(len(blocks), 13)
        for block in blocks:
            name = block.split("\n", 1)[0].strip()
            with self.subTest(alert=name):
                m = re.search(r'runbook_url: "file:///usr/share/doc/programs-cached/docs/'
                              r'troubleshooting\.md#([\w-]+)"', block)
                self.assertIsNotNone(m, "no runbook_url")
                self.assertEqual(m.group(1), name.lower())
                self.assertIn(m.group(1), anchors)
