"""The operator's side of the package: the systemd unit, checked with
systemd-analyze verify and security, offline (no systemd runs as PID 1
here)."""

import os
import re
import shutil
import subprocess
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
    """Verify a copy of unit_path whose ExecStart= runs binary (verify
    insists that it exists), and return its exposure score.  With manpath,
    Documentation=man: pages are looked up there too."""
    text = Path(unit_path).read_text()
    copy_dir = Path(test.tmpdir) / "unit-check"
    copy_dir.mkdir(exist_ok=True)
    copy = copy_dir / "programs-cached.service"
    copy.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=" + str(binary), text,
                           flags=re.M))
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
        self.assertEqual(one["ExecReload"], "/bin/kill -HUP $MAINPID")
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
