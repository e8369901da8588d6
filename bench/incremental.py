"""incremental.py: incremental refresh at scale (issue 17).

    PCD_BUILD=build /usr/bin/python3 bench/incremental.py [--programs 10000]
        [--samples 3] [--interval 60] [--output BENCH.md | --no-write]

Against the Python fake Discovery with timestamps (tests/support/fakedisco.py:
the C bench fake has no `timestamp` filter), a real memcached, the daemon:
  full     the first (full) refresh: requests and duration_ms;
  idle     incremental refreshes with nothing changed (incremental_interval
           1 s): Discovery requests per refresh by kind, details fetched, keys
           written, duration_ms (fetch + publish) and the wall time between
           its refresh_started and refresh_succeeded events;
  latency  with incremental_interval = --interval (default 60 s, the
           default): one program edited in the fake at a random moment, the
           time until the LMS's reader sees the new value; --samples times;
  per hour Discovery requests at the defaults (full every 15 min,
           incremental every minute) against full refreshes only (today, and
           upstream's cache_programs from cron every 15 min: the same
           requests), from the counts measured.
The programs carry data_modified_timestamps spread over the past days (as a
real catalogue's are), so the filtered list holds what changed in the last
incremental_overlap, not the whole catalogue.

Results go to BENCH.md between this script's own markers (other sections
are left alone).  Nothing asserts a time; the targets are printed next to
the figures.
"""

import argparse
import datetime
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import catalog, harness, reader  # noqa: E402
from tests.support.fakedisco import FakeDiscovery  # noqa: E402

MARK_BEGIN = "<!-- bench-incremental:begin (written by bench/incremental.py) -->"
MARK_END = "<!-- bench-incremental:end -->"
DOMAIN = "lms.example.com"


def ts(dt):
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_time(e):
    return datetime.datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()


def kinds_of(reqs):
    out = {}
    for r in reqs:
        out[r.kind] = out.get(r.kind, 0) + 1
    return out


def config(fake, mc, state_dir, interval):
    return {
        "discovery": {"auth": "none", "max_in_flight": 8},
        "memcached": {"servers": [mc.address]},
        "daemon": {"state_dir": state_dir, "refresh_interval": "15m",
                   "incremental_interval": interval, "log_format": "json",
                   "verify_interval": "1h"},
        "site " + DOMAIN: {"site_id": 1, "catalog_api_url": fake.base_url()},
    }


def wait_ok(d, kind, since, timeout=900):
    return d.wait_event("refresh_succeeded", timeout=timeout, since=since,
                        predicate=lambda e: e.get("kind") == kind)


def run(a):
    tmp = tempfile.mkdtemp(prefix="pcd-bench-incr-")
    state_dir = os.path.join(tmp, "state")
    os.makedirs(state_dir)
    t0 = time.monotonic()
    cat = catalog.generate(a.programs, seed=7)
    now = datetime.datetime.now(datetime.timezone.utc)
    n = len(cat["uuids"])
    for i, u in enumerate(cat["uuids"]):
        # One program modified every ~10 minutes over the past days.
        cat["programs"][u]["data_modified_timestamp"] = ts(
            now - datetime.timedelta(minutes=10 * (n - i) + 10))
    gen_s = time.monotonic() - t0
    size = sum(len(catalog.to_json(p)) for p in list(cat["programs"].values())[:200]) / 200
    print("catalogue: %d programs, %d pathways, ~%.0f KB a detail (%.0f s to generate)"
          % (n, len(cat["pathways"]), size / 1024, gen_s), flush=True)

    mc = harness.Memcached(memory_mb=max(256, a.programs * 64 // 1000 + 256)).start()
    fake = FakeDiscovery(cat, timestamps=True).start()
    res = {"programs": n, "pathways": len(cat["pathways"]),
           "pw_pages": (len(cat["pathways"]) + 19) // 20, "detail_kb": size / 1024}
    try:
        # --- full, then idle incrementals ---
        d = harness.Daemon(tmp, config(fake, mc, state_dir, "1s"), name="idle")
        d.start()
        full = wait_ok(d, "full", 0)
        res["full_ms"] = full["duration_ms"]
        res["full_requests"] = len(fake.requests)
        res["full_kinds"] = kinds_of(fake.requests)
        print("full refresh: %d ms, %d requests %s" % (full["duration_ms"],
              len(fake.requests), res["full_kinds"]), flush=True)
        wait_ok(d, "incremental", d.mark(), timeout=120)      # the probe's
        idle = []
        for _ in range(a.idle_runs):
            fake.reset_requests()
            mark = d.mark()
            ev = wait_ok(d, "incremental", mark, timeout=120)
            start = [e for e in d.events_named("refresh_started", since=mark)
                     if e.get("kind") == "incremental"][-1]
            reqs = fake.requests
            wall = event_time(ev) - event_time(start)
            span = max(r.time for r in reqs) - min(r.time for r in reqs)
            idle.append({"ms": ev["duration_ms"], "wall": wall, "requests": len(reqs),
                         "kinds": kinds_of(reqs), "details": ev["details_fetched"],
                         "written": ev["keys_written"], "span": span})
            print("idle incremental: %d ms (events %.3f s; first to last request "
                  "%.3f s), %d requests %s, %d details, %d keys written"
                  % (ev["duration_ms"], wall, span, len(reqs), kinds_of(reqs),
                     ev["details_fetched"], ev["keys_written"]), flush=True)
        res["idle"] = idle
        # One program edited: the incremental that fetches it.
        u = cat["uuids"][n // 2]
        mark = d.mark()
        fake.edit_program(u, {"title": "Edited once"})
        ev = d.wait_event("refresh_succeeded", timeout=120, since=mark,
                          predicate=lambda e: e.get("kind") == "incremental"
                          and e.get("details_fetched", 0) > 0)
        res["one"] = {"ms": ev["duration_ms"], "details": ev["details_fetched"],
                      "written": ev["keys_written"]}
        print("one edit: %d ms, %d details, %d keys written" % (
            ev["duration_ms"], ev["details_fetched"], ev["keys_written"]), flush=True)
        d.stop()

        # --- edit-to-cache latency at incremental_interval ---
        d = harness.Daemon(tmp, config(fake, mc, state_dir, "%ds" % a.interval),
                           name="latency")
        d.start()
        ev = wait_ok(d, "incremental", 0, timeout=300)     # a restart continues
        res["restart"] = {"ms": ev["duration_ms"], "details": ev["details_fetched"]}
        print("after a restart: incremental, %d ms, %d details" % (
            ev["duration_ms"], ev["details_fetched"]), flush=True)
        r = reader.Reader([mc.address])
        rng = random.Random(5)
        lat = []
        for i in range(a.samples):
            time.sleep(rng.uniform(0, a.interval))
            u = cat["uuids"][rng.randrange(n)]
            title = "Edited %d at %f" % (i, time.time())
            t_edit = time.monotonic()
            fake.edit_program(u, {"title": title})
            while True:
                v = r.get("program-" + u)
                if v is not None and v.get("title") == title:
                    break
                if time.monotonic() - t_edit > a.interval * 3 + 60:
                    raise RuntimeError("the edit of %s never reached the cache" % u)
                time.sleep(0.05)
            lat.append(time.monotonic() - t_edit)
            print("edit to cache: %.2f s" % lat[-1], flush=True)
        res["latency"] = lat
        r.close()
        d.stop()
    finally:
        fake.stop()
        mc.kill9()
    return res


def report(a, res):
    idle = res["idle"]
    med = sorted(idle, key=lambda x: x["ms"])[len(idle) // 2]
    per_incr = med["requests"]
    per_full = res["full_requests"]
    incr_per_hour = 60 - 4
    lines = [
        MARK_BEGIN,
        "## Incremental refresh (bench/incremental.py)",
        "",
        "%s; %s, %d cores; Python fake Discovery with timestamps (loopback, no "
        "added latency), one memcached.  %d programs (~%.0f KB a detail), %d "
        "pathways (%d pages); data_modified_timestamps spread over the past "
        "days, one every 10 min." % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            platform.machine(), os.cpu_count(), res["programs"], res["detail_kb"],
            res["pathways"], res["pw_pages"]),
        "",
        "| measure | result | target |",
        "|---|---|---|",
        "| full refresh (first) | %d ms, %d requests | - |" % (res["full_ms"], per_full),
        "| idle incremental: requests | %d (%s) | <= 2 + pathway pages = %d |" % (
            per_incr, ", ".join("%s %d" % kv for kv in sorted(med["kinds"].items())),
            2 + res["pw_pages"]),
        "| idle incremental: details fetched, keys written | %d, %d | 0, 0 |" % (
            med["details"], med["written"]),
        "| idle incremental: duration_ms (median of %d) | %d ms (all: %s) | < 500 ms |" % (
            len(idle), med["ms"], ", ".join(str(x["ms"]) for x in idle)),
        "| idle incremental: first to last request at the fake | %.0f ms | - |" % (
            med["span"] * 1000),
        "| incremental with one program edited: duration_ms, details, keys written "
        "| %d ms, %d, %d | - |" % (res["one"]["ms"], res["one"]["details"],
                                   res["one"]["written"]),
    ]
    if res.get("restart"):
        lines.append("| first refresh after a restart (incremental, from the snapshot): "
                     "duration_ms, details | %d ms, %d | - |" % (
                         res["restart"]["ms"], res["restart"]["details"]))
    if res.get("latency"):
        lat = res["latency"]
        lines.append("| edit to cache, incremental_interval = %d s | max %.1f s, mean %.1f s "
                     "(%d samples) | <= interval + 1 s |" % (a.interval, max(lat),
                                                             sum(lat) / len(lat), len(lat)))
        lines.append("| edit to cache, full refreshes only (today; upstream from cron "
                     "every 15 min) | up to 15 min + a full run (%.1f s here): mean "
                     "~%.1f min | - |" % (res["full_ms"] / 1000,
                                          7.5 + res["full_ms"] / 60000))
    lines += [
        "| Discovery requests per hour, defaults (4 full + %d incremental) | %d "
        "(of which details: %d) | - |" % (
            incr_per_hour, 4 * per_full + incr_per_hour * per_incr,
            4 * res["full_kinds"].get("program", 0)),
        "| Discovery requests per hour, full refreshes only (today; upstream "
        "every 15 min) | %d (of which details: %d) | - |" % (
            4 * per_full, 4 * res["full_kinds"].get("program", 0)),
        "",
        "The incremental refreshes add requests for the lists (the UUID list, "
        "the filtered list, every pathway page) but no detail, Discovery's "
        "heaviest response; a change reaches the cache within the interval "
        "instead of the next full refresh.  duration_ms is fetch and publish.  "
        "An idle incremental refresh whose generation is the one published, "
        "record for record, is not planned or written again (its time is the "
        "lists: 125 sequential pathway pages here); one with a change plans "
        "every key from the records held, writes what differs and saves the "
        "snapshot file again (about half a second of it at this size).",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write(path, text):
    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END + "\n", 1) if MARK_END + "\n" in rest \
            else rest.split(MARK_END, 1)
        new = head + text + tail
    else:
        new = old + ("\n" if old and not old.endswith("\n\n") else "") + text
    p.write_text(new, encoding="utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=10000)
    ap.add_argument("--idle-runs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--interval", type=int, default=60, help="incremental_interval, s")
    ap.add_argument("--output", default=str(REPO / "BENCH.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    res = run(a)
    text = report(a, res)
    print(text)
    if not a.no_write:
        write(a.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
