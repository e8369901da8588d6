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
import urllib.request

from tests.support import catalog, reference
from tests.systemd import deps_check
from tests.support.fakedisco import FakeDiscovery
from tests.support.harness import Memcached
from tests.support.reader import Reader

UNIT = "programs-cached.service"
CONF = "/etc/programs-cached/programs-cached.conf"
SECRET_PATH = "/etc/programs-cached/client-secret"
SECRET = "secret-from-a-systemd-credential"
DROPIN = "/etc/systemd/system/programs-cached.service.d/test.conf"
SITE = "lms.example.com"
LISTEN = "127.0.0.1:9640"


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


def systemctl_timed(*args):
    """systemctl args...: (CompletedProcess, seconds).  A hang ends at 60 s
    (TimeoutStartSec= is 90 s): an exception, not a pass."""
    t = time.monotonic()
    r = subprocess.run(("systemctl",) + args, capture_output=True, text=True, timeout=60)
    return r, time.monotonic() - t


def check_ready_while_first_refresh_hangs(fake, reader, cat):
    """READY=1 once the daemon runs: `systemctl start` returns while the
    first refresh hangs, STATUS= says there is nothing in the cache yet,
    and a reload then is delivered at once."""
    fd = os.open(SECRET_PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, SECRET.encode())
    os.close(fd)
    first = cat["uuids"][0]
    hang = fake.set_fault(fake.program_path(first), kind="hang", times=1)
    r, took = systemctl_timed("start", UNIT)
    assert r.returncode == 0, r.stderr
    fake.wait_requests(lambda r: r.uuid == first, timeout=30)
    assert prop("ActiveState") == "active", prop("ActiveState")
    status = prop("StatusText")
    assert "not ready: nothing published yet" in status, status
    assert reader.get("program-uuids-" + SITE) is None, "published while hung"
    hups = len(events("signal"))
    r, reload_took = systemctl_timed("reload", UNIT)
    assert r.returncode == 0, r.stderr
    got = wait_until(lambda: events("signal")[hups:], 10, "the SIGHUP")
    assert got[0].get("MESSAGE", "").startswith("signal signal=SIGHUP refreshing=true"), got
    hang.release()
    wait_until(lambda: "not ready" not in prop("StatusText"), 30, "ready once published")
    assert_cache(reader, cat, "once published")
    log("ok: systemctl start returned in %.1f s while the first refresh hung (STATUS=%r); "
        "a reload then took %.1f s and reached the daemon; ready once published, "
        "cache = reference" % (took, status, reload_took))


def check_reload_while_activating(fake):
    """No snapshot, Discovery hanging, and a reload asked for while the
    unit may still be activating: it returns at once, it does not wait
    for a publish (systemd 252 merges it into the start job)."""
    sh("systemctl", "stop", UNIT)
    sh("systemctl", "clean", "--what=state", UNIT)
    hang = fake.set_fault(fake.uuids_path(), kind="hang", times=100)
    before, hups = len(events("refresh_started")), len(events("signal"))
    sh("systemctl", "start", "--no-block", UNIT)
    state = prop("ActiveState")
    r, took = systemctl_timed("reload", UNIT)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert took < 10, "reload took %.1f s" % took
    wait_until(lambda: len(events("refresh_started")) > before, 10, "the first refresh")
    # Asked for before READY=1, it was merged into the start job: no
    # SIGHUP, and the configuration is the one start-up read.
    time.sleep(0.5)
    hup = "a SIGHUP" if events("signal")[hups:] else "merged into the start job"
    status = prop("StatusText")
    assert prop("ActiveState") == "active", prop("ActiveState")
    assert "not ready: nothing published yet" in status, status
    hang.release()
    fake.clear_faults()
    wait_until(lambda: "not ready" not in prop("StatusText"), 30, "ready once published")
    log("ok: no snapshot, Discovery hanging: a reload asked for with the unit %s returned "
        "%d in %.1f s (%s; it used to wait for TimeoutStartSec=); STATUS=%r"
        % (state, r.returncode, took, hup, status))


def metric(name):
    """A sample of the daemon's /metrics (listen = LISTEN)."""
    with urllib.request.urlopen("http://%s/metrics" % LISTEN, timeout=5) as resp:
        body = resp.read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def check_broken_reload(fake, mc):
    """A broken file fails `systemctl reload` (ExecReload checks it first)
    and the daemon never sees it; a SIGHUP sent by hand with the file
    broken keeps "reload failed" in STATUS= and /metrics through the next
    refresh, until a good reload."""
    write_config(fake, mc, extra="listen = %s\n" % LISTEN)
    sh("systemctl", "reload", UNIT)
    wait_until(lambda: metric("programs_cached_config_last_reload_success") == 1, 10,
               "the listener")
    pid, hups = prop("MainPID"), len(events("signal"))
    write_config(fake, mc, extra="listen = %s\nno_such_key = 1\n" % LISTEN)
    r, took = systemctl_timed("reload", UNIT)
    assert r.returncode != 0, "a broken file reloaded"
    assert UNIT in r.stderr, r.stderr
    status = sh("systemctl", "status", "--no-pager", "-n", "20", UNIT, check=False).stdout
    assert "no_such_key" in status, status
    errors = [e for e in events("config_error") if "no_such_key" in e.get("MESSAGE", "")]
    assert errors and errors[-1].get("_PID") != pid, errors
    assert (prop("ActiveState"), prop("MainPID")) == ("active", pid)
    assert len(events("signal")) == hups, "the daemon got the SIGHUP"
    cause = r.stderr.strip().splitlines()[0]

    done = len(events("refresh_succeeded"))
    sh("systemctl", "kill", "--kill-who=main", "-s", "HUP", UNIT)
    wait_until(lambda: len(events("refresh_succeeded")) > done, 30, "the refresh after it")
    time.sleep(0.5)
    status = prop("StatusText")
    assert status.startswith("reload failed: ") and "no_such_key" in status, status
    assert metric("programs_cached_config_last_reload_success") == 0
    write_config(fake, mc, extra="listen = %s\n" % LISTEN)
    sh("systemctl", "reload", UNIT)
    wait_until(lambda: not prop("StatusText").startswith("reload failed"), 10,
               "STATUS= after a good reload")
    assert metric("programs_cached_config_last_reload_success") == 1
    log("ok: a broken file: systemctl reload exit %d in %.1f s (%r), the config_error "
        "with the key in systemctl status, no SIGHUP sent; sent by hand, STATUS=%r "
        "outlived the next refresh, config_last_reload_success 0 until a good reload"
        % (r.returncode, took, cause, status[:90]))


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
        check_ready_while_first_refresh_hangs(fake, reader, cat)
        check_credential(fake)
        cat = check_reload(fake, reader)
        check_broken_reload(fake, mc)
        check_refresh_failed_in_journal(fake, reader, cat)
        check_reload_while_activating(fake)
        check_watchdog()
        check_config_error_does_not_loop(fake, mc)
        deps_check.run()
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
