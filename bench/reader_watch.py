#!/usr/bin/python3
"""reader_watch.py: the cost of the reader watch (issue 23) on memcached.

    PCD_BUILD=build /usr/bin/python3 bench/reader_watch.py [--seconds 30]
        [--conns 4] [--threads 4] [--repeat 2] [--samples 20]
        [--json FILE]

One memcached (-t THREADS, 256 MB) holding 1,000 programs and 10,000
sessions; bench-getload reads it (99 % sessions, 1 % program-family keys,
pipelined batches of 50 gets over CONNS connections); bench-watchcount is
the watch: one mcwatch.c connection, every fetched key classified by
readers.c.  Runs, each SECONDS long, in this order:

  unpaced, no watch      memcached's throughput alone       } REPEAT times,
  unpaced, watch         the same, the watch consuming it   } alternated
  unpaced, no watch      once more, to bracket the noise of a shared machine
  50,000 gets/s, alone   memcached's CPU per get without the watch
  50,000 gets/s, watch   the watch up before the load starts: the first
                         burst after an idle spell (memcached's logger
                         thread sleeps up to 1 s when idle) loses lines
  50,000 gets/s, steady  the watch joins a running load (2 s in) and counts
                         for SECONDS - 4: lines, skipped, dropped by the
                         server, the watch's CPU
  100,000 gets/s, steady the same at twice the rate
  latency                a reader's get to its line, after 2 s of quiet,
                         SAMPLES times, without and with mcwatch's
                         keep-awake (awake_ms 100)

(memcached's CPU, from /proc, is taken over each run but the steady ones)
and prints one JSON object per run, then a summary against the targets:
watch CPU per 100,000 lines (100,000 lines/s within 25 % of one core),
lines lost at 50,000 gets/s (0), and the throughput with the watch against
the mean of the runs without it (at most 10 % lower; on a machine where
the load generator shares the cores with memcached, the watch's own CPU
and memcached's logger thread come out of the same cores, so memcached's
CPU per get at a fixed rate is given too).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_dir():
    b = Path(os.environ.get("PCD_BUILD", "build"))
    return b if b.is_absolute() else REPO / b


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_memcached(port, threads):
    argv = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
            "-m", "256", "-t", str(threads)]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"version\r\n")
                if s.recv(64).startswith(b"VERSION"):
                    return p
        except OSError:
            time.sleep(0.01)
    p.kill()
    raise RuntimeError("memcached did not start")


MC = {"pid": None}


def mc_cpu():
    """memcached's CPU seconds so far (user + system, /proc)."""
    with open("/proc/%d/stat" % MC["pid"]) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(fn, *args):
    """fn(*args), with memcached's CPU over it (and per 100,000 gets)."""
    c0 = mc_cpu()
    r = fn(*args)
    c = mc_cpu() - c0
    r["memcached_cpu_s"] = round(c, 3)
    r["memcached_cpu_s_per_100k_gets"] = round(c / r["load"]["gets"] * 100000, 4)
    return r


def alone(addr, seconds, rate, conns):
    return {"load": getload(addr, seconds, rate, conns)}


def getload(addr, seconds, rate, conns, populate=False):
    argv = [str(build_dir() / "bench-getload"), "-s", addr, "-t", str(seconds),
            "-r", str(rate), "-c", str(conns)]
    if populate:
        argv.append("-p")
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def watched(addr, seconds, rate, conns):
    """getload with bench-watchcount consuming the stream over the same
    window (the watch is up half a second before the load starts)."""
    w = subprocess.Popen([str(build_dir() / "bench-watchcount"), "-s", addr,
                          "-t", str(seconds + 1)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    load = getload(addr, seconds, rate, conns)
    out, _ = w.communicate(timeout=seconds + 30)
    return {"load": load, "watch": json.loads(out)}


def steady(addr, seconds, rate, conns):
    """The watch joining a load that runs already (2 s in), counting for
    seconds - 4 while the load goes on: the steady state."""
    argv = [str(build_dir() / "bench-getload"), "-s", addr, "-t", str(seconds),
            "-r", str(rate), "-c", str(conns)]
    g = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    out = subprocess.run([str(build_dir() / "bench-watchcount"), "-s", addr,
                          "-t", str(max(seconds - 4, 1))],
                         check=True, capture_output=True, text=True).stdout
    load, _ = g.communicate(timeout=seconds + 30)
    return {"load": json.loads(load), "watch": json.loads(out)}


def latency(addr, samples, awake_ms):
    """A reader's get to its watch line, after 2 s of quiet each time."""
    out = subprocess.run([str(build_dir() / "bench-watchcount"), "-s", addr,
                          "-L", str(samples), "-g", "2000", "-a", str(awake_ms)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2,
                    help="unpaced pairs (alone, watched), alternated")
    ap.add_argument("--samples", type=int, default=20,
                    help="latency probes, each after 2 s of quiet")
    ap.add_argument("--json")
    a = ap.parse_args()
    port = free_port()
    addr = "127.0.0.1:%d" % port
    mc = start_memcached(port, a.threads)
    MC["pid"] = mc.pid
    runs = {}
    try:
        getload(addr, 1, 0, a.conns, populate=True)          # fill, and warm up
        for i in range(a.repeat):
            runs["alone_%d" % i] = measured(alone, addr, a.seconds, 0, a.conns)
            runs["unpaced_watch_%d" % i] = measured(watched, addr, a.seconds, 0, a.conns)
        runs["alone_%d" % a.repeat] = measured(alone, addr, a.seconds, 0, a.conns)
        runs["paced_50k_alone"] = measured(alone, addr, a.seconds, 50000, a.conns)
        runs["paced_50k_watch_from_start"] = measured(watched, addr, a.seconds, 50000,
                                                      a.conns)
        runs["paced_50k_watch"] = steady(addr, a.seconds, 50000, a.conns)
        runs["paced_100k_watch"] = steady(addr, a.seconds, 100000, a.conns)
        for awake in (0, 100):
            runs["latency_awake_%d" % awake] = latency(addr, a.samples, awake)
    finally:
        mc.kill()
        mc.wait()
    for name, r in runs.items():
        print(name, json.dumps(r))
    def rate(prefix):
        return [r["load"]["gets_per_s"] for k, r in runs.items() if k.startswith(prefix)]

    alone_rate = sum(rate("alone_")) / len(rate("alone_"))
    watched_rate = sum(rate("unpaced_watch_")) / len(rate("unpaced_watch_"))
    w50 = runs["paced_50k_watch"]["watch"]
    w100 = runs["paced_100k_watch"]["watch"]
    summary = {
        "memcached_gets_per_s_alone": round(alone_rate),
        "memcached_gets_per_s_watched": round(watched_rate),
        "throughput_change_pct": round(100 * (watched_rate / alone_rate - 1), 1),
        "memcached_cpu_s_per_100k_gets_at_50k_alone":
            runs["paced_50k_alone"]["memcached_cpu_s_per_100k_gets"],
        "memcached_cpu_s_per_100k_gets_at_50k_watched":
            runs["paced_50k_watch_from_start"]["memcached_cpu_s_per_100k_gets"],
        "watch_cpu_s_per_100k_lines_at_50k": w50["cpu_s_per_100k_lines"],
        "watch_cpu_s_per_100k_lines_at_100k": w100["cpu_s_per_100k_lines"],
        "lines_per_s_at_100k": w100["lines_per_s"],
        "watch_core_share_at_100k": w100["core_share"],
        "lines_per_s_at_50k": w50["lines_per_s"],
        "lost_at_50k": {"skipped": w50["skipped"],
                        "server_worker_dropped": w50["server_worker_dropped"],
                        "server_watcher_skipped": w50["server_watcher_skipped"]},
        "lost_at_50k_watch_up_before_the_load": {
            k: runs["paced_50k_watch_from_start"]["watch"][k]
            for k in ("skipped", "server_worker_dropped", "server_watcher_skipped")},
        "lost_at_100k": {"skipped": w100["skipped"],
                         "server_worker_dropped": w100["server_worker_dropped"],
                         "server_watcher_skipped": w100["server_watcher_skipped"]},
        "latency_ms_after_2s_idle": {k[len("latency_"):]: {
            q: runs[k][q] for q in ("median_ms", "p90_ms", "max_ms")}
            for k in runs if k.startswith("latency_")},
        "seconds": a.seconds, "conns": a.conns, "memcached_threads": a.threads,
    }
    print("summary", json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
