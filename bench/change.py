#!/usr/bin/python3
"""change.py: the change-driven refresh (issue 24).

    PCD_BUILD=build /usr/bin/python3 bench/change.py [--programs 1000]
        [--edits 20] [--idle-programs 10000] [--idle-seconds 120]
        [--output BENCH.md | --no-write]

Tutor's layout: one redis-server (notify-keyspace-events K$) holds the
LMS's cache (db 1) and Discovery's, where Discovery's api_timestamp is
bumped the way Discovery bumps it (django-redis, KEY_PREFIX "discovery",
VERSION 1: cache.set('api_timestamp', time.time(), None)); the Python fake
Discovery with timestamps (tests/support/fakedisco.py); the daemon with
[discovery] change_key = discovery:1:api_timestamp, refresh_interval 1h,
incremental_interval 10m, the rest at the defaults (change_poll 1s,
change_debounce 1s).

  latency   --programs programs; --edits times: a pause of 2 to 3 s, one
            program edited in the fake (its data_modified_timestamp moves),
            the bump, and the time from the bump until Django's reader
            (django-redis, the LMS's db) reads the new title.  Once with
            the keyspace notifications (change_notify auto, the server has
            K$) and once polling only (change_notify off).  Median and p99
            (the 99th percentile by nearest rank: with 20 edits, the
            largest).
  idle      --idle-programs programs: Discovery's requests, counted by the
            fake, over --idle-seconds after the first full refresh with a
            change source and nothing changing (incremental_interval 2h,
            longer than refresh_interval 1h: no scheduled incremental
            refresh between the full ones), the change key's polls in the
            same time (/metrics); then, without a change source, the
            requests of one full refresh and of an idle incremental one
            (the median of 3, incremental_interval 1s).

Discovery's requests per idle hour are then computed from those counts:
with a change source, the full refreshes alone (refresh_interval 1h: one
an hour; plus 6 idle incrementals with incremental_interval 10m kept as a
safety net); incremental refresh without one at the defaults (a full one
every 15 min, 56 incrementals between); upstream's cache_programs every 15
min (4 full fetches: the same requests as the daemon's full refresh).

Results go to BENCH.md between this script's own markers (other sections
are left alone).  Nothing asserts a time; the targets are printed beside
the figures.
"""

import argparse
import datetime
import math
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import catalog, harness  # noqa: E402
from tests.support.fakedisco import FakeDiscovery  # noqa: E402
from tests.support.rediscache import RedisReader, RedisServer  # noqa: E402

MARK_BEGIN = "<!-- bench-change:begin (written by bench/change.py) -->"
MARK_END = "<!-- bench-change:end -->"
DOMAIN = "lms.example.com"
KEY = "discovery:1:api_timestamp"


def ts(dt):
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


def kinds_of(reqs):
    out = {}
    for r in reqs:
        out[r.kind] = out.get(r.kind, 0) + 1
    return out


def spread(cat):
    """data_modified_timestamps over the past days, one every 10 minutes
    (a real catalogue's), so that the filtered list is short."""
    now = datetime.datetime.now(datetime.timezone.utc)
    n = len(cat["uuids"])
    for i, u in enumerate(cat["uuids"]):
        cat["programs"][u]["data_modified_timestamp"] = ts(
            now - datetime.timedelta(minutes=10 * (n - i) + 10))
    return cat


def sections(fake, srv, state_dir, discovery=None, daemon=None):
    disc = {"auth": "none"}
    disc.update(discovery or {})
    d = {"state_dir": state_dir, "refresh_interval": "1h",
         "incremental_interval": "10m", "log_format": "json",
         "verify_interval": "1h", "listen": "127.0.0.1:0"}
    d.update(daemon or {})
    return {"discovery": disc, "redis": {"url": srv.url(1)}, "daemon": d,
            "site " + DOMAIN: {"site_id": 1, "catalog_api_url": fake.base_url()}}


def scrape(addr):
    with urllib.request.urlopen("http://%s/metrics" % addr, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def p99(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


def latency(a, tmp, notify):
    """--edits edit-and-bump samples; seconds from the bump to the read."""
    srv = RedisServer(extra_args=["--notify-keyspace-events", "K$"]).start()
    cat = spread(catalog.generate(a.programs, seed=24))
    fake = FakeDiscovery(cat, timestamps=True).start()
    state_dir = os.path.join(tmp, "state-" + notify)
    os.makedirs(state_dir)
    d = harness.Daemon(tmp, sections(fake, srv, state_dir, discovery={
        "change_key": KEY, "change_notify": notify}), name="latency-" + notify)
    lms = RedisReader(srv, db=1)
    bumper = RedisReader(srv, db=1, prefix="discovery", version="1")
    rng = random.Random(24)
    out = {"samples": [], "details": [], "refreshes": 0, "hows": {}}
    try:
        d.start()
        d.wait_event("refresh_succeeded", timeout=300)
        if notify != "off":
            d.wait_event("change_source_available", timeout=10,
                         predicate=lambda e: e["how"] == "notification")
        mark0 = d.mark()
        for i in range(a.edits):
            time.sleep(rng.uniform(2.0, 3.0))
            u = cat["uuids"][rng.randrange(len(cat["uuids"]))]
            title = "Edited %d (%s)" % (i, notify)
            fake.reset_requests()
            fake.edit_program(u, {"title": title})
            t0 = time.monotonic()
            bumper.cache.set("api_timestamp", time.time(), None)
            while True:
                v = lms.get("program-" + u)
                if v is not None and v.get("title") == title:
                    break
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("edit %d never reached the cache" % i)
                time.sleep(0.005)
            out["samples"].append(time.monotonic() - t0)
            out["details"].append(len([r for r in fake.requests if r.kind == "program"]))
            print("%s: edit %d to the LMS in %.3f s" % (notify, i, out["samples"][-1]),
                  flush=True)
        time.sleep(1.5)
        started = [e for e in d.events_named("refresh_started", mark0)]
        out["refreshes"] = len([e for e in started if e.get("reason") == "change"])
        out["other_refreshes"] = len(started) - out["refreshes"]
        for e in d.events_named("change_detected", mark0):
            out["hows"][e["how"]] = out["hows"].get(e["how"], 0) + 1
        m = scrape(d.wait_event("listening")["address"])
        out["publish_sum"] = m.get("programs_cached_change_to_publish_seconds_sum")
        out["publish_count"] = m.get("programs_cached_change_to_publish_seconds_count")
        out["poll_max"] = m.get("programs_cached_change_poll_max_seconds")
    finally:
        d.stop()
        lms.close()
        bumper.close()
        fake.stop()
        srv.close()
    return out


def idle(a, tmp):
    """Requests over --idle-seconds with a change source; one full and
    one idle incremental refresh's requests without."""
    srv = RedisServer(extra_args=["--notify-keyspace-events", "K$"]).start()
    t0 = time.monotonic()
    cat = spread(catalog.generate(a.idle_programs, seed=7))
    print("catalogue: %d programs, %d pathways (%.0f s to generate)"
          % (len(cat["uuids"]), len(cat["pathways"]), time.monotonic() - t0), flush=True)
    fake = FakeDiscovery(cat, timestamps=True).start()
    res = {"programs": len(cat["uuids"]), "pathways": len(cat["pathways"]),
           "pw_pages": (len(cat["pathways"]) + 19) // 20}
    try:
        state_dir = os.path.join(tmp, "state-idle")
        os.makedirs(state_dir)
        bumper = RedisReader(srv, db=1, prefix="discovery", version="1")
        bumper.cache.set("api_timestamp", time.time(), None)   # Discovery ran
        bumper.close()
        d = harness.Daemon(tmp, sections(fake, srv, state_dir,
                                         discovery={"change_key": KEY},
                                         daemon={"incremental_interval": "2h"}),
                           name="idle-change")
        d.start()
        full = d.wait_event("refresh_succeeded", timeout=900)
        res["full_requests"] = len(fake.requests)
        res["full_kinds"] = kinds_of(fake.requests)
        res["full_ms"] = full["duration_ms"]
        print("full refresh: %d ms, %d requests %s" % (
            full["duration_ms"], res["full_requests"], res["full_kinds"]), flush=True)
        addr = d.wait_event("listening")["address"]
        time.sleep(2)                      # the first polls
        m0 = scrape(addr)
        fake.reset_requests()
        mark = d.mark()
        time.sleep(a.idle_seconds)
        m1 = scrape(addr)
        res["idle_requests"] = len(fake.requests)
        res["idle_refreshes"] = len(d.events_named("refresh_started", mark))
        res["idle_polls"] = m1["programs_cached_change_polls_total"] - \
            m0["programs_cached_change_polls_total"]
        res["idle_poll_secs"] = m1["programs_cached_change_poll_seconds_total"] - \
            m0["programs_cached_change_poll_seconds_total"]
        print("idle with a change source: %d requests, %d refreshes, %d polls in %d s"
              % (res["idle_requests"], res["idle_refreshes"], res["idle_polls"],
                 a.idle_seconds), flush=True)
        d.stop()

        # Without a change source: idle incremental refreshes.
        d = harness.Daemon(tmp, sections(fake, srv, state_dir,
                                         daemon={"incremental_interval": "1s"}),
                           name="idle-incremental")
        d.start()
        d.wait_event("refresh_succeeded", timeout=300)   # continues from the snapshot
        incr = []
        for _ in range(3):
            fake.reset_requests()
            mark = d.mark()
            d.wait_event("refresh_succeeded", timeout=120, since=mark,
                         predicate=lambda e: e.get("kind") == "incremental")
            incr.append((len(fake.requests), kinds_of(fake.requests)))
            print("idle incremental: %d requests %s" % incr[-1], flush=True)
        d.stop()
        incr.sort(key=lambda x: x[0])
        res["incr_requests"], res["incr_kinds"] = incr[len(incr) // 2]
    finally:
        fake.stop()
        srv.close()
    return res


def report(a, lat, res):
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        MARK_BEGIN,
        "## Fresh within seconds: the change key (bench/change.py)",
        "",
        "%s; %s, %d cores; one redis-server (K$) holding the LMS's cache and "
        "Discovery's api_timestamp (Tutor's layout), the Python fake Discovery "
        "with timestamps (loopback, no added latency), django-redis as the LMS's "
        "reader and as Discovery's bumper; refresh_interval 1h, "
        "incremental_interval 10m, change_poll 1s, change_debounce 1s.  Command: "
        "`PCD_BUILD=build /usr/bin/python3 bench/change.py%s`." % (
            when, platform.machine(), os.cpu_count(), a.argline),
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    for notify, name in (("auto", "keyspace notifications"), ("off", "polling only")):
        r = lat.get(notify)
        if r is None:
            continue
        s = r["samples"]
        lines.append(
            "| edit to LMS cache, %d programs, %s: median, p99 (%d edits) | %.2f s, %.2f s "
            "(min %.2f s) | 1.5 s, 3 s |" % (a.programs, name, len(s), statistics.median(s),
                                              p99(s), min(s)))
        lines.append(
            "| ... refreshes with reason=change, others; details fetched per edit | %d, %d; "
            "%s | %d, 0; 1 |" % (r["refreshes"], r["other_refreshes"],
                                 "/".join(sorted(set(str(x) for x in r["details"]))),
                                 len(s)))
        lines.append(
            "| ... changes seen by how; bump to publish done (the histogram's mean); "
            "longest poll | %s; %.2f s; %.2f ms | - |" % (
                ", ".join("%s %d" % kv for kv in sorted(r["hows"].items())),
                r["publish_sum"] / max(1, r["publish_count"]), r["poll_max"] * 1000))
    lines.append("| edit to LMS cache, incremental schedule only (incremental_interval "
                 "1 min) | up to 1 min + a refresh, mean ~30 s (bench/incremental.py) "
                 "| - |")
    lines.append("| edit to LMS cache, upstream's cache_programs | whenever a person "
                 "runs it (a full run: %.1f s at %d programs here) | - |" % (
                     res["full_ms"] / 1000, res["programs"]) if res else
                 "| edit to LMS cache, upstream's cache_programs | whenever a person "
                 "runs it | - |")
    if res:
        full, incr = res["full_requests"], res["incr_requests"]
        lines += [
            "| Discovery requests, %d programs, idle %d s with a change source "
            "(between full refreshes) | %d (%d refreshes; %d polls of the key, %.1f ms "
            "of the loop's time) | 0 |" % (
                res["programs"], a.idle_seconds, res["idle_requests"],
                res["idle_refreshes"], res["idle_polls"], res["idle_poll_secs"] * 1000),
            "| requests of one full refresh; of one idle incremental | %d (%s); %d (%s) "
            "| - |" % (full, ", ".join("%s %d" % kv for kv in sorted(res["full_kinds"].items())),
                       incr, ", ".join("%s %d" % kv for kv in sorted(res["incr_kinds"].items()))),
            "| per idle hour, change source, refresh_interval 1h, no scheduled "
            "incremental | %d between full refreshes; %d with the full one | 0 between |" % (
                res["idle_requests"] * 3600 // max(1, a.idle_seconds), full),
            "| per idle hour, change source, refresh_interval 1h, incremental_interval "
            "10m | %d between full refreshes; %d with the full one | - |" % (
                5 * incr, full + 5 * incr),
            "| per idle hour, incremental only (defaults: full every 15 min, 56 "
            "incrementals) | %d between full refreshes; %d with the full ones | - |" % (
                56 * incr, 4 * full + 56 * incr),
            "| per idle hour, upstream's cache_programs every 15 min | %d (4 full "
            "fetches) | - |" % (4 * full),
        ]
    lines += [
        "",
        "The per-hour rows are computed from the counts measured above (a "
        "full refresh's requests, an idle incremental's, and the requests "
        "seen while idle with a change source, scaled to the hour); the "
        "refreshes an hour are the schedule's.  A change costs Discovery an "
        "incremental refresh (the UUID list, the filtered list, the pathway "
        "pages and the edited details); polling the key costs Discovery "
        "nothing (one GET a second on the cache).",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write(path, text):
    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END, 1)
        new = head + text.rstrip("\n") + tail
    else:
        new = old + ("\n" if old and not old.endswith("\n\n") else "") + text
    p.write_text(new, encoding="utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--idle-programs", type=int, default=10000)
    ap.add_argument("--idle-seconds", type=int, default=120)
    ap.add_argument("--no-idle", action="store_true")
    ap.add_argument("--output", default=str(REPO / "BENCH.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    a.argline = "".join(" " + x for x in (argv if argv is not None else sys.argv[1:])
                        if x != "--no-write")
    tmp = tempfile.mkdtemp(prefix="pcd-bench-change-")
    lat = {n: latency(a, tmp, n) for n in ("auto", "off")}
    res = None if a.no_idle else idle(a, tmp)
    text = report(a, lat, res)
    print(text)
    if not a.no_write:
        write(a.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
