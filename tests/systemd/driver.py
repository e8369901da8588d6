"""driver.py: the checks make check-systemd runs inside a booted systemd
container (see check-systemd.sh), as root, against the installed unit.

Memcached and the fake Discovery (with OAuth2, require_auth) run here, in
this process's service, on the container's own loopback; the daemon is
programs-cached.service as installed, with its DynamicUser, LoadCredential,
Type=notify and watchdog.  Each check raises on failure; the first failure
ends the run.  The transcript goes to stdout (the host prints it), the
verdict to /pcd-out/result ("ok" or the failure).

    /usr/bin/python3 -m tests.systemd.driver     (cwd: the source tree)
"""

import json
import os
import signal
import subprocess
import sys
import time
import traceback

from tests.support import catalog, reference
from tests.support.fakedisco import FakeDiscovery
from tests.support.harness import Memcached
from tests.support.reader import Reader

UNIT = "programs-cached.service"
CONF = "/etc/programs-cached/programs-cached.conf"
SECRET_PATH = "/etc/programs-cached/client-secret"
SECRET = "secret-from-a-systemd-credential"
DROPIN = "/etc/systemd/system/programs-cached.service.d/test.conf"
SITE = "lms.example.com"


def log(msg):
    print("check-systemd: " + msg, flush=True)


def sh(*argv, check=True):
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d: %s%s" % (" ".join(argv), r.returncode,
                                                   r.stdout, r.stderr))
    return r


def prop(name):
    return sh("systemctl", "show", "-P", name, UNIT).stdout.strip()


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, v))
        time.sleep(0.1)


def events(name):
    """The daemon's journal entries with EVENT=name (journalctl's match)."""
    r = sh("journalctl", "-q", "--no-pager", "-o", "json", "-u", UNIT, "EVENT=" + name)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def write_config(fake, mc, extra=""):
    with open(CONF, "w", encoding="utf-8") as f:
        f.write("[discovery]\noauth_url = %s\nclient_id = %s\n"
                "[memcached]\nservers = %s\n"
                "[daemon]\nrefresh_interval = 1h\n%s"
                "[site %s]\nsite_id = 1\ncatalog_api_url = %s\n"
                % (fake.oauth_url, fake.client_id, mc.address, extra, SITE,
                   fake.base_url()))


def expected(cat):
    return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])


def assert_cache(reader, cat, what):
    diffs = reader.compare(expected(cat), limit=5)
    if diffs:
        raise AssertionError("%s: the cache differs: %s" % (what, diffs))


def check_condition():
    """Enabled, but a start without the client secret is skipped."""
    sh("systemctl", "enable", UNIT)
    assert sh("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    sh("systemctl", "start", UNIT)
    state, cond = prop("ActiveState"), prop("ConditionResult")
    assert (state, cond) == ("inactive", "no"), (state, cond)
    log("ok: enabled; without %s the start is skipped (ConditionResult=no)" % SECRET_PATH)


def check_ready_after_publish(fake, reader, cat):
    """READY=1 only once the first refresh is in memcached."""
    fd = os.open(SECRET_PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, SECRET.encode())
    os.close(fd)
    first = cat["uuids"][0]
    hang = fake.set_fault(fake.program_path(first), kind="hang", times=1)
    sh("systemctl", "start", "--no-block", UNIT)
    fake.wait_requests(lambda r: r.uuid == first, timeout=30)
    time.sleep(1.0)
    state = prop("ActiveState")
    assert state == "activating", "ready before the publish: " + state
    assert reader.get("program-uuids-" + SITE) is None, "published while hung"
    hang.release()
    wait_until(lambda: prop("ActiveState") == "active", 30, "active after the publish")
    assert_cache(reader, cat, "at READY=1")
    log("ok: activating while the first refresh hung; active once published, "
        "cache = reference")


def check_credential(fake):
    """The secret came from LoadCredential= ($CREDENTIALS_DIRECTORY)."""
    toks = fake.requests_of("token")
    assert toks, "no token request"
    assert fake.tokens, "no token issued (a wrong secret gets 401)"
    assert events("token_acquired"), "no token_acquired event"
    log("ok: client secret loaded as a credential; %d token request(s), "
        "API calls authorised" % len(toks))


def check_reload(fake, reader):
    """systemctl reload refreshes: a changed catalogue reaches the cache."""
    before = len(events("refresh_succeeded"))
    cat2 = catalog.generate(15, seed=22)
    fake.set_catalogue(cat2)
    sh("systemctl", "reload", UNIT)
    wait_until(lambda: len(events("refresh_succeeded")) > before, 30,
               "refresh_succeeded after reload")
    wait_until(lambda: prop("ActiveState") == "active", 30, "active after reload")
    assert_cache(reader, cat2, "after reload")
    log("ok: systemctl reload refreshed (15 programs now in the cache)")
    return cat2


def check_refresh_failed_in_journal(fake, reader, cat):
    """A failed refresh is an EVENT=refresh_failed journal entry; the
    daemon stays up and the cache keeps the last publish."""
    fake.set_fault(fake.uuids_path(), kind="status", status=404, times=100)
    before = len(events("refresh_failed"))
    sh("systemctl", "reload", UNIT)
    got = wait_until(lambda: events("refresh_failed")[before:], 30,
                     "journalctl EVENT=refresh_failed")
    fake.clear_faults()
    assert prop("ActiveState") == "active"
    assert_cache(reader, cat, "after a failed refresh")
    e = got[0]
    log("ok: journalctl -u %s EVENT=refresh_failed: %d entr%s (PRIORITY=%s, "
        "MESSAGE=%r)" % (UNIT, len(got), "y" if len(got) == 1 else "ies",
                         e.get("PRIORITY"), e.get("MESSAGE", "")[:80]))


def check_watchdog():
    """A SIGSTOPped daemon misses its pings: systemd kills and restarts it."""
    os.makedirs(os.path.dirname(DROPIN), exist_ok=True)
    with open(DROPIN, "w", encoding="utf-8") as f:
        f.write("[Service]\nWatchdogSec=3s\nRestartSec=1s\nTimeoutAbortSec=3s\n")
    sh("systemctl", "daemon-reload")
    sh("systemctl", "restart", UNIT)
    pid = int(prop("MainPID"))
    restarts = int(prop("NRestarts"))
    assert pid > 0
    time.sleep(4)   # pings at half the interval keep it alive
    assert int(prop("MainPID")) == pid, "restarted while healthy"
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: int(prop("NRestarts")) > restarts, 30, "a watchdog restart")
    wait_until(lambda: prop("ActiveState") == "active", 30, "active after the restart")
    new = int(prop("MainPID"))
    assert new not in (0, pid), (pid, new)
    r = sh("journalctl", "-q", "--no-pager", "-u", UNIT, "-g", "[Ww]atchdog timeout")
    assert r.stdout.strip(), "no watchdog timeout in the journal"
    log("ok: SIGSTOPped pid %d hit the watchdog (%s); restarted as pid %d"
        % (pid, r.stdout.strip().splitlines()[-1].split(": ", 1)[-1], new))


def check_config_error_does_not_loop(fake, mc):
    """Exit 2 (a configuration error) is not restarted."""
    write_config(fake, mc, extra="no_such_key = 1\n")
    r = sh("systemctl", "restart", UNIT, check=False)
    assert r.returncode != 0, "a bad configuration started"
    time.sleep(4)   # RestartSec=1s: a loop would have restarted it by now
    state = (prop("ActiveState"), prop("ExecMainStatus"), prop("NRestarts"))
    assert state == ("failed", "2", "0"), state
    log("ok: a configuration error exits 2 and stays failed "
        "(ActiveState=failed, NRestarts=0)")


def main():
    result = "failed"
    mc = fake = reader = None
    try:
        log(sh("systemctl", "--version").stdout.splitlines()[0])
        mc = Memcached().start()
        cat = catalog.generate(12, seed=21)
        fake = FakeDiscovery(cat, require_auth=True, client_secret=SECRET)
        fake.start()
        reader = Reader([mc.address])
        write_config(fake, mc)
        check_condition()
        check_ready_after_publish(fake, reader, cat)
        check_credential(fake)
        cat = check_reload(fake, reader)
        check_refresh_failed_in_journal(fake, reader, cat)
        check_watchdog()
        check_config_error_does_not_loop(fake, mc)
        result = "ok"
    except Exception:
        traceback.print_exc(file=sys.stdout)
        result = "failed: " + traceback.format_exc().strip().splitlines()[-1]
        print(sh("journalctl", "-q", "--no-pager", "-u", UNIT, "-n", "40",
                 check=False).stdout, flush=True)
    finally:
        sh("systemctl", "stop", UNIT, check=False)
        for x in (reader, fake):
            if x is not None:
                x.close() if x is reader else x.stop()
        if mc is not None:
            mc.kill9()
        with open("/pcd-out/result", "w", encoding="utf-8") as f:
            f.write(result + "\n")
    return 0 if result == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
