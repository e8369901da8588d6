"""soak.py: run the daemon for a while against a misbehaving world and say
how often the LMS would have missed a program, and whether memory grew.

Not part of `make check` (it runs for minutes to hours).  Usage:

    make && /usr/bin/python3 tests/soak/soak.py --minutes 10 [--programs 200]
        [--seed 1] [--fault-every 5] [--restart-every 45] [--keep]

What it does, every second for the whole duration:
  - samples the cache the way the LMS reads it (Django + pymemcache with
    safe_key): every key of the reference catalogue, one get_many;
  - records the daemon's RSS (VmRSS) from /proc;
and, at random (seeded) moments:
  - injects a Discovery fault for a while (5xx on the UUID list or on some
    details, hangs, truncated or malformed bodies, 429 with Retry-After,
    latency), and sends SIGHUP so a refresh meets it;
  - kill -9s memcached and starts it again empty, or flush_alls it;
  - changes a program's title upstream (a real edit), so the expected
    cache moves and refreshes have work to do.

It prints, at the end: the seconds in which any expected key was missing
(the LMS would have logged a miss), the longest such gap, the repairs and
refreshes the daemon logged, and RSS at the start of the second half versus
the end (a growth of more than 10 % is reported as a possible leak).  The
exit status is 0 when no second lost a key outside the gaps that follow a
memcached restart or flush by less than check_interval + 2 s, and RSS did
not grow by more than 10 % over the second half; 1 otherwise.
"""

import argparse
import copy
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support import catalog, reference  # noqa: E402
from tests.support.fakedisco import FakeDiscovery  # noqa: E402
from tests.support.harness import Daemon, Memcached  # noqa: E402
from tests.support.reader import Reader  # noqa: E402

SITE = "lms.example.com"
CHECK_MS = 1000


def rss_kb(pid):
    """VmRSS of a process, in KiB (0 if it is gone)."""
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def expected_for(cat):
    return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])


class World:
    """The fake Discovery, memcached and the daemon, and what to break."""

    def __init__(self, args, tmp):
        self.args = args
        self.rng = random.Random(args.seed)
        self.cat = catalog.generate(args.programs, seed=args.seed, dangling_pathway=False)
        self.mc = Memcached().start()
        self.fake = FakeDiscovery(self.cat).start()
        self.daemon = Daemon(tmp, {
            "discovery": {"auth": "none", "retries": 2, "retry_backoff": "100ms",
                          "retry_backoff_max": "1s", "request_timeout": "3s",
                          "refresh_deadline": "20s"},
            "memcached": {"servers": [self.mc.address]},
            "daemon": {"refresh_interval": "30s", "check_interval": "%dms" % CHECK_MS,
                       "verify_interval": "5s"},
            "site %s" % SITE: {"site_id": 1, "catalog_api_url": self.fake.base_url()},
        })
        self.reader = Reader([self.mc.address])
        self.expected = expected_for(self.cat)
        self.disrupted_until = 0.0
        self.log = []

    def note(self, what):
        self.log.append((time.monotonic(), what))
        print("soak: %s" % what, flush=True)

    def fault(self):
        """One Discovery fault for a few seconds, met by a refresh."""
        f, uuid = self.fake, self.rng.choice(self.cat["uuids"])
        kind = self.rng.choice(["uuids500", "detail500", "hang", "truncate", "malformed",
                                "429", "latency"])
        if kind == "uuids500":
            f.set_fault(f.uuids_path(), kind="status", status=503)
        elif kind == "detail500":
            f.set_fault(f.program_path(uuid), kind="status", status=500)
        elif kind == "hang":
            f.set_fault(f.program_path(uuid), kind="hang")
        elif kind == "truncate":
            f.set_fault(f.program_path(uuid), kind="truncate",
                        framing=self.rng.choice(["length", "chunked", "close"]))
        elif kind == "malformed":
            f.set_fault(f.program_path(uuid), kind="malformed")
        elif kind == "429":
            f.set_fault(f.uuids_path(), kind="status", status=429,
                        headers={"Retry-After": "1"}, times=1)
        else:
            f.set_latency(0.2)
        self.note("fault %s" % kind)
        self.daemon.send_signal(signal.SIGHUP)
        return kind

    def clear(self):
        self.fake.clear_faults()
        self.fake.clear_latency()

    def memcached_trouble(self):
        if self.rng.random() < 0.5:
            self.mc.kill9()
            self.mc.start()
            self.reader.reconnect()
            self.note("memcached killed and restarted empty")
        else:
            self.mc.flush()
            self.note("memcached flushed")
        self.disrupted_until = time.monotonic() + CHECK_MS / 1000 + 2

    def edit(self):
        """A program changes upstream; the expected cache follows once a
        refresh has published it (the sampler tolerates the old value)."""
        cat = copy.deepcopy(self.cat)
        uuid = self.rng.choice(cat["uuids"])
        cat["programs"][uuid]["title"] = "Edited %d" % self.rng.randrange(10 ** 6)
        self.cat = cat
        self.fake.set_catalogue(cat)
        self.expected = expected_for(cat)
        self.note("edited program %s" % uuid)
        self.daemon.send_signal(signal.SIGHUP)

    def missing(self):
        """Expected keys the LMS would not find now."""
        got = self.reader.get_many(list(self.expected))
        return [k for k in self.expected if k not in got]

    def stop(self):
        rc = self.daemon.stop(timeout=30)
        self.fake.stop()
        self.mc.stop()
        return rc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--programs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fault-every", type=float, default=5, help="seconds, on average")
    ap.add_argument("--restart-every", type=float, default=45, help="seconds, on average")
    ap.add_argument("--edit-every", type=float, default=20, help="seconds, on average")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="pcd-soak-")
    w = World(args, tmp)
    d = w.daemon
    d.start()
    d.wait_event("refresh_succeeded", timeout=120)
    start = time.monotonic()
    end = start + args.minutes * 60
    half = start + (end - start) / 2
    rss_first_half = rss_second = None
    bad_seconds, excused, longest, gap = 0, 0, 0, 0
    fault_until = 0.0
    samples = 0
    while time.monotonic() < end:
        t = time.monotonic()
        if not d.running:
            print("soak: the daemon exited (%s)" % d.proc.returncode)
            return 1
        if fault_until and t > fault_until:
            w.clear()
            fault_until = 0.0
        r = w.rng.random()
        if not fault_until and r < 1 / args.fault_every:
            w.fault()
            fault_until = t + w.rng.uniform(2, 6)
        elif r < 1 / args.fault_every + 1 / args.restart_every:
            w.memcached_trouble()
        elif r < 1 / args.fault_every + 1 / args.restart_every + 1 / args.edit_every:
            w.edit()
        miss = w.missing()
        samples += 1
        if miss:
            if t < w.disrupted_until:
                excused += 1
            else:
                bad_seconds += 1
                gap += 1
                longest = max(longest, gap)
                print("soak: %d keys missing, e.g. %s" % (len(miss), miss[:3]), flush=True)
        else:
            gap = 0
        rss = rss_kb(d.proc.pid)
        if rss_first_half is None:
            rss_first_half = rss
        if t >= half and rss_second is None:
            rss_second = rss
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    rss_end = rss_kb(d.proc.pid)
    counts = {name: len(d.events_named(name)) for name in (
        "refresh_succeeded", "refresh_failed", "cache_empty_detected", "cache_miss",
        "cache_repaired", "memcached_error", "http_retry", "program_rejected")}
    rc = w.stop()
    grew = rss_second and rss_end > rss_second * 1.10
    print("\nsoak: %.1f minutes, %d samples, %d programs, seed %d"
          % (args.minutes, samples, args.programs, args.seed))
    print("soak: seconds with a key missing: %d outside restart windows "
          "(longest run %d s), %d within %d ms + 2 s of a restart/flush"
          % (bad_seconds, longest, excused, CHECK_MS))
    print("soak: RSS %d KiB at start, %d KiB at half time, %d KiB at the end%s"
          % (rss_first_half or 0, rss_second or 0, rss_end,
             " (grew by more than 10 % over the second half)" if grew else ""))
    print("soak: events %s" % ", ".join("%s=%d" % kv for kv in counts.items()))
    print("soak: daemon exit code %d" % rc)
    if args.keep:
        print("soak: kept %s" % tmp)
    else:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if bad_seconds == 0 and not grew and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
