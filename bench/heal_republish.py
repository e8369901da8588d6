#!/usr/bin/python3
"""heal_republish.py: how long re-publishing a snapshot into an empty
memcached takes (issue 5's target: under 1 s for 10,000 programs).

    make && /usr/bin/python3 bench/heal_republish.py [--programs 10000]
        [--bytes 65000] [--rounds 3] [--backend memcached|redis]

The daemon publishes a generated catalogue (tests/support/catalog.py,
about --bytes of JSON per program) from the test suite's fake Discovery
into a real memcached and saves its snapshot.  Discovery is then stopped,
and each round kills memcached (-9), starts it again empty, and sends the
daemon SIGUSR1; the cache_repaired event's duration_ms is the time from the
first write to the last round trip of the re-publish.  The last round also
lets the daemon find the restart itself (check_interval) instead.  A
second daemon then loads the snapshot file, to time that too.  Every round
checks that every key is back.  Prints one line per measurement and a
summary line.  --backend redis does the same with a redis-server (no
persistence, so kill -9 empties it) and [redis] instead of [memcached].
"""

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import catalog  # noqa: E402
from tests.support.fakedisco import FakeDiscovery  # noqa: E402
from tests.support.harness import Daemon, Memcached  # noqa: E402
from tests.support.rediscache import RedisServer  # noqa: E402


def log(msg):
    print(msg, flush=True)


def sections(fake, mc, state, check):
    cache = ("redis", {"url": mc.url(1)}) if isinstance(mc, RedisServer) \
        else ("memcached", {"servers": mc.address})
    return {
        "discovery": {"auth": "none", "max_in_flight": 8, "retries": 0,
                      "request_timeout": "120s", "refresh_deadline": "1h"},
        cache[0]: cache[1],
        "daemon": {"refresh_interval": "24h", "check_interval": check,
                   "verify_interval": "24h", "state_dir": state},
        "site lms.example.com": {"site_id": 1,
                                 "catalog_api_url": fake.base_url("")},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=10000)
    ap.add_argument("--bytes", type=int, default=65000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backend", choices=("memcached", "redis"),
                    default="memcached")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="pcd-bench-")
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    t0 = time.monotonic()
    cat = catalog.generate(a.programs, seed=1, target_bytes=a.bytes)
    log("catalogue: %d programs of about %d bytes generated in %.1f s"
        % (a.programs, a.bytes, time.monotonic() - t0))

    if a.backend == "redis":
        mc = RedisServer().start()

        def count():
            return len(mc.keys(1))
    else:
        mc = Memcached(memory_mb=4096, threads=2).start()

        def count():
            return mc.stats()["curr_items"]
    fake = FakeDiscovery(cat).start()
    d = Daemon(tmp, sections(fake, mc, state, "24h"))
    d2 = None
    try:
        d.start()
        ok = d.wait_event("refresh_succeeded", timeout=3600)
        saved = d.wait_event("snapshot_saved", timeout=600)
        d.wait_event("cache_verified", timeout=600)
        log("publish: %d keys, %.1f MB in %d ms (whole refresh); snapshot "
            "saved in %d ms" % (ok["keys_written"], ok["bytes_written"] / 1e6,
                                ok["duration_ms"], saved["duration_ms"]))
        fake.stop()
        keys = saved["entries"]
        took = []
        for r in range(a.rounds):
            mc.kill9()
            mc.restart()
            mark = d.mark()
            d.send_signal(signal.SIGUSR1)
            rep = d.wait_event("cache_repaired", since=mark, timeout=600)
            have = count()
            if rep["keys_failed"] or have != keys:
                raise SystemExit("round %d: %s, %d of %d keys in memcached\n%s"
                                 % (r, rep, have, keys,
                                    "\n".join(d.raw_lines[-10:])))
            took.append(rep["duration_ms"])
            log("round %d: SIGUSR1 re-published %d keys, %.1f MB into an "
                "empty %s in %d ms" % (r + 1, rep["keys"], rep["bytes"] / 1e6,
                                       a.backend, rep["duration_ms"]))
        d.stop()

        # The daemon finds the restart itself; then a fresh daemon loads
        # the file and repairs an empty memcached from it.
        d2 = Daemon(tmp, sections(fake, mc, state, "500ms"), name="pcd2")
        d2.start()
        loaded = d2.wait_event("snapshot_loaded", timeout=600)
        log("snapshot loaded: %d entries, %.1f MB in %d ms"
            % (loaded["entries"], loaded["bytes"] / 1e6, loaded["duration_ms"]))
        time.sleep(1.5)
        mark = d2.mark()
        mc.kill9()
        mc.restart()
        t0 = time.monotonic()
        rep = d2.wait_event("cache_repaired", since=mark, timeout=600)
        wall = time.monotonic() - t0
        if rep["keys_failed"] or count() != keys:
            raise SystemExit("restart detection: %s" % rep)
        log("restart detected (%s) and %d keys re-published in %d ms; %.2f s "
            "from the restart to the cache full again (check_interval 500ms)"
            % (rep["reason"], rep["keys"], rep["duration_ms"], wall))
        log("summary: backend=%s programs=%d keys=%d bytes=%d "
            "republish_ms_min=%d republish_ms_median=%d target_ms=%d"
            % (a.backend, a.programs, keys, rep["bytes"], min(took),
               statistics.median(took), 1500 if a.backend == "redis" else 1000))
    finally:
        for p in (d, d2):
            if p is not None:
                p.close()
        fake.stop()
        if a.backend == "redis":
            mc.close()
        else:
            mc.kill9()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
