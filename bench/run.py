"""run.py: the benchmark suite (issue 7, and issue 3's concurrency figure).

    make bench                      # full: 1,000 and 10,000 programs, BENCH.md
    make bench-quick                # 1,000 programs, one run, build/bench/
    make bench-profile              # callgrind of one 1,000-program refresh
    PCD_BUILD=build /usr/bin/python3 bench/run.py --help
    PCD_BUILD=build /usr/bin/python3 bench/run.py --pump --in-flight 32,8
                                    # the request pump alone (issue 22)

For each catalogue size, side by side, with a fresh memcached for every run:
  daemon   programs-cached --once, a full refresh (wall time of the process,
           its refresh_succeeded duration_ms, and its peak RSS);
  peer     upstream's cache_programs for one site (bench/peer.py: serial
           requests, Django's PyMemcacheCache set_many with pickle);
  floor    bench-floor: the same bytes parsed with jansson, pickled and
           pipelined into memcached, no HTTP (its own clock: the bytes are
           loaded before it starts);
  again    the daemon in daemon mode: first refresh, SIGHUP, second refresh
           with nothing changed (duration, keys written: must be 0), and the
           peak RSS of a process that has held two generations.
Discovery is bench-fakedisco (C, libevent) serving a catalogue that
bench/gen.py writes once into build/bench/cat-N.  Then, with 1,000
programs and a latency added to every detail request, the daemon with the
default max_in_flight (8) against max_in_flight = 1 (and the peer), and at
--in-flight (32): its fetch against the bound N·L/C, where the rest of its
wall time goes, what the fake server saw (how many requests it held at
once, how late its replies and the client's next requests were) and the
CPU of the loop thread and of the others while fetching.  And the event
loop's responsiveness: /healthz every 50 ms during a first refresh, a
repair of every key (SIGUSR1) and with one of two memcached stopped, at
each --loop-sizes; with --baseline BUILD, another build's binary (of main,
say) alternately with this one, and the ratios.

Nothing here asserts a time: figures are reported, with the targets next
to them.  A run that fails (exit code, wrong key count, keys written on an
unchanged refresh) is reported as such and makes the exit code 1.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import gen  # noqa: E402
from tests.support import harness, reader  # noqa: E402
from tests.support.rediscache import RedisServer  # noqa: E402

MARK_BEGIN = "<!-- bench:begin (written by bench/run.py; edit outside) -->"
MARK_END = "<!-- bench:end -->"
DOMAIN = "lms.example.com"


# The concurrency at which the daemon meets issue 7's 20x over the serial
# peer when Discovery, not the machine, is what takes time (--in-flight).
WIDE = 32


def log(msg):
    print("bench: %s" % msg, file=sys.stderr, flush=True)


def build_dir():
    b = Path(os.environ.get("PCD_BUILD", "build"))
    return b if b.is_absolute() else REPO / b


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# --- processes -----------------------------------------------------------------

class Result(dict):
    """What one process run gave: rc, wall (s), maxrss_kb, stdout, stderr."""


def run_proc(argv, workdir, name, timeout=3600, env=None, on_start=None):
    """Run argv to completion with stdout/stderr in files under workdir;
    wall time and peak RSS (wait4's ru_maxrss) of the process, and when it
    started and ended by the wall clock (to place its events).  on_start:
    called with the pid once it runs."""
    out_path = Path(workdir) / ("%s.stdout" % name)
    err_path = Path(workdir) / ("%s.stderr" % name)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0, started = time.monotonic(), time.time()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=env, preexec_fn=harness._die_with_parent)
        if on_start is not None:
            on_start(p.pid)
        killer = threading.Timer(timeout, lambda: os.kill(p.pid, signal.SIGKILL))
        killer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        wall, ended = time.monotonic() - t0, time.time()
    p.returncode = os.waitstatus_to_exitcode(status)
    return Result(rc=p.returncode, wall=wall, maxrss_kb=ru.ru_maxrss,
                  cpu=ru.ru_utime + ru.ru_stime, started=started, ended=ended,
                  stdout=out_path.read_text("utf-8", "replace"),
                  stderr=err_path.read_text("utf-8", "replace"))


class ThreadCPU:
    """Every thread's CPU time (user + sys) of a running process, read
    from /proc every 10 ms on a thread until the process is gone; cpu_at()
    says how much each had used by a wall-clock time (the last sample
    before it)."""

    def __init__(self, pid):
        self.pid = pid
        self.samples = []       # (wall clock, {tid: seconds})
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while True:
            row = {}
            try:
                tids = os.listdir("/proc/%d/task" % self.pid)
            except OSError:
                return
            for tid in tids:
                c = proc_cpu_path("/proc/%d/task/%s/stat" % (self.pid, tid))
                if c is not None:
                    row[int(tid)] = c
            if not row:
                return
            self.samples.append((time.time(), row))
            time.sleep(0.01)

    def join(self):
        self._t.join(10)

    def cpu_at(self, when):
        got = {}
        for t, row in self.samples:
            if t > when:
                break
            got = row
        return got

    def shares(self, t0, t1):
        """(loop, others): CPUs' worth the loop thread and the other
        threads used between t0 and t1."""
        a, b = self.cpu_at(t0), self.cpu_at(t1)
        span = max(t1 - t0, 0.001)
        loop = (b.get(self.pid, 0) - a.get(self.pid, 0)) / span
        others = sum(b[t] - a.get(t, 0) for t in b if t != self.pid) / span
        return loop, others


HZ = os.sysconf("SC_CLK_TCK")
# Other processes using less than this many CPUs leave a run undisturbed
# enough (a run itself keeps about two busy: the client, the fake server
# and memcached on two CPUs).
QUIET = 0.2


def machine_busy():
    """CPU seconds the whole machine has been busy (all CPUs), /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / HZ


def proc_cpu_path(path):
    """CPU seconds (user + sys) in a /proc .../stat file; None if gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except (OSError, IndexError, ValueError):
        return None


def proc_cpu(pid):
    """CPU seconds (user + sys) of a live process so far; 0 if it is gone."""
    return proc_cpu_path("/proc/%d/stat" % pid) or 0.0


def self_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Meter:
    """How much CPU the rest of the machine used during a run: the busy
    time of every CPU, less what the run itself (the measured process,
    the fake server, memcached, this script) used.  The machine is shared;
    this says how much a figure may be off."""

    def __init__(self, pids):
        self.pids = [p for p in pids if p]
        self.t0 = time.monotonic()
        self.busy0 = machine_busy()
        self.self0 = self_cpu()
        self.cpu0 = [proc_cpu(p) for p in self.pids]

    def stop(self, own_cpu):
        """CPUs' worth used by other processes since the start (0.5: half
        a CPU, on average)."""
        ours = own_cpu + self_cpu() - self.self0 + sum(
            max(0.0, proc_cpu(p) - c) for p, c in zip(self.pids, self.cpu0))
        span = max(time.monotonic() - self.t0, 0.01)
        return max(0.0, machine_busy() - self.busy0 - ours) / span


class Fake:
    """bench-fakedisco serving a catalogue directory."""

    def __init__(self, catdir, latency_ms=0, scope="all"):
        argv = [str(build_dir() / "bench-fakedisco"), "-d", str(catdir)]
        if latency_ms:
            argv += ["-l", str(latency_ms), "-L", scope]
        work = build_dir() / "bench" / "work"
        work.mkdir(parents=True, exist_ok=True)
        self.err_path = work / ("fakedisco-%d.stderr" % os.getpid())
        self.err = open(self.err_path, "w+b")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err,
                                     preexec_fn=harness._die_with_parent)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("READY "):
            raise RuntimeError("bench-fakedisco did not start: %r %s" % (
                line, self.err_path.read_text("utf-8", "replace")))
        self.base = line.split(" ", 1)[1]

    def _lines(self):
        return self.err_path.read_text("utf-8", "replace").splitlines()

    def pace(self):
        """Its pace line since the last call (SIGUSR1; see bench/fakedisco.c),
        as a dict: connections, max_waiting, mean_waiting, late_ms and
        client_gap_ms as (p50, p90, max)."""
        before = len(self._lines())
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = self._lines()
            if len(lines) > before:
                return parse_pace(lines[-1])
            time.sleep(0.01)
        return {}

    def stop(self):
        """Stop; the request counts it printed."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.err.close()
        served = [x for x in self._lines() if " served " in x]
        return served[-1].strip() if served else ""


def parse_pace(line):
    """bench-fakedisco's pace line as a dict (see Fake.pace)."""
    out = {}
    for kv in line.split()[1:]:
        k, _, v = kv.partition("=")
        if "/" in v:
            out[k] = tuple(float(x) for x in v.split("/"))
        elif v not in ("", "-"):
            out[k] = float(v)
    return out


def parse_events(text):
    return harness.parse_events(text)


def ev_time(e):
    """An event's ts as seconds since the epoch."""
    return datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def once_phases(r, evs):
    """Where a --once run's wall time went, from its events (ms clock):
    start-up (exec to refresh_started), the fetch (to the publish's start:
    refresh_succeeded less publish_ms), the publish, the wait for the
    snapshot's save after it, and the exit."""
    started, done = event(evs, "refresh_started"), event(evs, "refresh_succeeded")
    saved = event(evs, "snapshot_saved")
    if started is None or done is None or "started" not in r:
        return {}
    t0, t2 = ev_time(started), ev_time(done)
    t1 = t2 - done.get("publish_ms", 0) / 1000
    t3 = max(t2, ev_time(saved)) if saved is not None else t2
    return {"t_fetch0": t0, "t_fetch1": t1, "startup": t0 - r["started"], "fetch": t1 - t0,
            "save_wait": t3 - t2, "exit": r["ended"] - t3}


def event(events, name, nth=0):
    got = [e for e in events if e.get("event") == name]
    return got[nth] if len(got) > nth else None


def vm_status(pid):
    """VmHWM and VmRSS of a live process, in KB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


class HealthSampler:
    """GET /healthz every 50 ms (from the end of one answer to the next
    request) on a thread, until stop(): the latencies, None for a failure."""

    def __init__(self, address):
        import http.client
        self.http = http.client
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.got = []
        self.at = []            # wall clock of each request
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop.is_set():
            t0, w0 = time.monotonic(), time.time()
            try:
                c = self.http.HTTPConnection(self.host, self.port, timeout=30)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                c.close()
                self.got.append(time.monotonic() - t0 if r.status == 200 else None)
            except OSError:
                self.got.append(None)
            self.at.append(w0)
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._t.join(60)
        return self.got


def health_summary(got):
    ok = sorted(x for x in got if x is not None)
    return {"samples": len(got), "failed": len(got) - len(ok),
            "max": ok[-1] if ok else None, "p50": median(ok) if ok else None,
            "p99": ok[min(len(ok) - 1, int(len(ok) * 0.99))] if ok else None}


# --- the runs --------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.a = args
        self.bin = build_dir() / "programs-cached"
        self.work = build_dir() / "bench" / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.mc = harness.Memcached(memory_mb=args.memcached_mb, threads=2)
        self.redis = None
        self.problems = []
        self.fake_pid = None
        self.meter = None

    def fresh_memcached(self):
        """A memcached with nothing in it, as every run starts with; then
        wait for the machine to be quiet, and start metering."""
        if self.mc.running:
            self.mc.restart()
        else:
            self.mc.start()
        self.wait_quiet()
        self.meter = Meter([self.fake_pid, self.mc.pid])

    def wait_quiet(self):
        """Wait (up to --wait-quiet seconds) until other processes use less
        than QUIET CPUs over a second."""
        deadline = time.monotonic() + self.a.wait_quiet
        said = False
        while True:
            m = Meter([self.fake_pid, self.mc.pid])
            time.sleep(1.0)
            other = m.stop(0.0)
            if other < QUIET or time.monotonic() >= deadline:
                break
            if not said:
                log("the machine is busy (%.1f CPU used by others); waiting up to %ds"
                    % (other, self.a.wait_quiet))
                said = True

    def items(self):
        return reader.stats(self.mc.host, self.mc.port).get("curr_items")

    def config(self, name, base, discovery=None, daemon=None, cache=None, servers=None):
        state = self.work / ("%s-state" % name)
        state.mkdir(exist_ok=True)
        cache = cache or ("memcached", {"servers": servers or self.mc.address})
        sections = {
            "discovery": dict({"auth": "none"}, **(discovery or {})),
            cache[0]: cache[1],
            "daemon": dict({"log_format": "json", "state_dir": str(state)},
                           **({"workers": self.a.workers} if self.a.workers is not None else {}),
                           **(daemon or {})),
            "site %s" % DOMAIN: {"site_id": 1, "catalog_api_url": base},
        }
        lines = []
        for sec, kv in sections.items():
            lines.append("[%s]" % sec)
            lines += ["%s = %s" % (k, v) for k, v in kv.items()]
            lines.append("")
        path = self.work / ("%s.conf" % name)
        path.write_text("\n".join(lines))
        return path

    def problem(self, what):
        log("PROBLEM: " + what)
        self.problems.append(what)

    def daemon_once(self, fake, name, discovery=None, threads=False, pace=False):
        """One --once run.  threads: the loop's and the other threads' CPU
        during the fetch; pace: the fake's pace line for this run."""
        self.fresh_memcached()
        conf = self.config(name, fake.base, discovery)
        sampler = []
        if pace:
            fake.pace()         # what came before is not this run's
        r = run_proc([str(self.bin), "-c", str(conf), "--once"], self.work, name,
                     on_start=(lambda pid: sampler.append(ThreadCPU(pid))) if threads else None)
        other = self.meter.stop(r["cpu"])
        evs = parse_events(r["stderr"])
        ev = event(evs, "refresh_succeeded")
        if r["rc"] != 0 or ev is None:
            self.problem("%s: exit %d, no refresh_succeeded (see %s/%s.stderr)"
                         % (name, r["rc"], self.work, name))
            ev = {}
        out = {"wall": r["wall"], "cpu": r["cpu"], "other": other,
               "duration": ev.get("duration_ms", 0) / 1000,
               "publish": ev.get("publish_ms", 0) / 1000,
               "keys": ev.get("keys_written"), "bytes": ev.get("bytes_written"),
               "rss_kb": r["maxrss_kb"], "items": self.items()}
        out.update(once_phases(r, evs))
        if sampler:
            sampler[0].join()
            if "t_fetch0" in out:
                out["loop_cpus"], out["workers_cpus"] = sampler[0].shares(
                    out["t_fetch0"], out["t_fetch1"])
        if pace:
            out["pace"] = fake.pace()
        return out

    def daemon_once_redis(self, fake, name):
        """daemon --once into a redis-server started empty."""
        if self.redis is not None:
            self.redis.close()
        self.redis = RedisServer().start()
        self.wait_quiet()
        self.meter = Meter([self.fake_pid, self.redis.proc.pid])
        conf = self.config(name, fake.base, cache=("redis", {"url": self.redis.url(1)}))
        r = run_proc([str(self.bin), "-c", str(conf), "--once"], self.work, name)
        other = self.meter.stop(r["cpu"])
        ev = event(parse_events(r["stderr"]), "refresh_succeeded")
        if r["rc"] != 0 or ev is None:
            self.problem("%s: exit %d, no refresh_succeeded (see %s/%s.stderr)"
                         % (name, r["rc"], self.work, name))
            ev = {}
        items = len(self.redis.keys(1))
        self.redis.close()
        self.redis = None
        return {"wall": r["wall"], "cpu": r["cpu"], "other": other,
                "duration": ev.get("duration_ms", 0) / 1000,
                "keys": ev.get("keys_written"), "bytes": ev.get("bytes_written"),
                "rss_kb": r["maxrss_kb"], "items": items}

    def peer(self, fake, name):
        self.fresh_memcached()
        r = run_proc([sys.executable, str(REPO / "bench" / "peer.py"), "--base", fake.base,
                      "--servers", self.mc.address, "--domain", DOMAIN], self.work, name)
        other = self.meter.stop(r["cpu"])
        try:
            out = json.loads(r["stdout"].strip().splitlines()[-1])
        except (ValueError, IndexError):
            out = {}
        if r["rc"] != 0 or not out:
            self.problem("%s: exit %d (see %s/%s.stderr)" % (name, r["rc"], self.work, name))
        return {"wall": r["wall"], "cpu": r["cpu"], "other": other,
                "inner": out.get("total_s"),
                "fetch": out.get("fetch_s"),
                "write": out.get("write_s"), "keys": out.get("keys"),
                "rss_kb": r["maxrss_kb"], "items": self.items()}

    def floor(self, catdir, name):
        self.fresh_memcached()
        r = run_proc([str(build_dir() / "bench-floor"), "-d", str(catdir), "-s",
                      self.mc.address, "-D", DOMAIN], self.work, name)
        other = self.meter.stop(r["cpu"])
        try:
            out = json.loads(r["stdout"])
        except ValueError:
            out = {}
        if r["rc"] != 0 or not out:
            self.problem("%s: exit %d (see %s/%s.stderr)" % (name, r["rc"], self.work, name))
        return {"time": out.get("total_ms", 0) / 1000, "parse": out.get("parse_ms", 0) / 1000,
                "encode": out.get("encode_ms", 0) / 1000, "write": out.get("write_ms", 0) / 1000,
                "keys": out.get("keys"), "bytes": out.get("bytes"), "wall": r["wall"],
                "other": other,
                "rss_kb": r["maxrss_kb"], "items": self.items()}

    def unchanged(self, fake, name, timeout=1800):
        """Daemon mode: a refresh, SIGHUP, a second refresh with nothing
        changed upstream."""
        self.fresh_memcached()
        conf = self.config(name, fake.base, daemon={"refresh_interval": "24h"})
        err_path = self.work / ("%s.stderr" % name)
        with open(err_path, "wb") as err:
            p = subprocess.Popen([str(self.bin), "-c", str(conf)], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err,
                                 preexec_fn=harness._die_with_parent)

        def wait_for(count):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                evs = parse_events(err_path.read_text("utf-8", "replace"))
                done = [e for e in evs if e.get("event") in ("refresh_succeeded",
                                                             "refresh_failed")]
                if len(done) >= count:
                    return done[count - 1]
                if p.poll() is not None:
                    break
                time.sleep(0.02)
            return None

        first = wait_for(1)
        p.send_signal(signal.SIGHUP)
        second = wait_for(2)
        vm = vm_status(p.pid) if p.poll() is None else {}
        p.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        other = self.meter.stop(ru.ru_utime + ru.ru_stime)
        ok = (first or {}).get("event") == "refresh_succeeded" and \
            (second or {}).get("event") == "refresh_succeeded"
        if not ok:
            self.problem("%s: the two refreshes did not both succeed (see %s)" % (name, err_path))
            first, second = first or {}, second or {}
        if second.get("keys_written") not in (0, None):
            self.problem("%s: the unchanged refresh wrote %s keys" % (name, second["keys_written"]))
        return {"first": first.get("duration_ms", 0) / 1000, "other": other,
                "duration": second.get("duration_ms", 0) / 1000,
                "keys": second.get("keys_written"), "skipped": second.get("keys_skipped"),
                "hwm_kb": vm.get("VmHWM"), "rss_kb": ru.ru_maxrss}

    def measured(self, what, fn, *args, **kw):
        """fn(*args, **kw), run again (up to --noisy-retries times) while other
        processes used QUIET CPUs or more during it; the last result, with
        how many attempts it took."""
        for attempt in range(1 + self.a.noisy_retries):
            r = fn(*args, **kw)
            r["attempts"] = attempt + 1
            if r["other"] < QUIET:
                break
            if attempt < self.a.noisy_retries:
                log("%s: other processes used %.2f CPUs meanwhile; again" % (what, r["other"]))
        return r

    # -- one catalogue size ----------------------------------------------------
    def size(self, n, runs, peer_runs):
        catdir = build_dir() / "bench" / ("cat-%d" % n)
        params = gen.ensure(catdir, n, self.a.seed, self.a.target_bytes, log=log)
        fake = Fake(catdir)
        self.fake_pid = fake.proc.pid
        res = {"n": n, "params": params, "daemon": [], "peer": [], "floor": [], "again": [],
               "redis": []}
        try:
            for i in range(max(runs, peer_runs)):
                if i < runs:
                    log("%d programs, run %d/%d: daemon --once" % (n, i + 1, runs))
                    res["daemon"].append(self.measured("daemon", self.daemon_once, fake,
                                                       "once-%d-%d" % (n, i)))
                if i < runs and not self.a.no_redis:
                    log("%d programs, run %d/%d: daemon --once into Redis" % (n, i + 1, runs))
                    res["redis"].append(self.measured("daemon, Redis", self.daemon_once_redis,
                                                      fake, "redis-%d-%d" % (n, i)))
                if i < peer_runs and not self.a.no_peer:
                    log("%d programs, run %d/%d: peer" % (n, i + 1, peer_runs))
                    res["peer"].append(self.measured("peer", self.peer, fake,
                                                     "peer-%d-%d" % (n, i)))
                if i < runs:
                    log("%d programs, run %d/%d: floor" % (n, i + 1, runs))
                    res["floor"].append(self.measured("floor", self.floor, catdir,
                                                      "floor-%d-%d" % (n, i)))
                    log("%d programs, run %d/%d: daemon, unchanged refresh"
                        % (n, i + 1, runs))
                    res["again"].append(self.measured("daemon mode", self.unchanged, fake,
                                                      "again-%d-%d" % (n, i)))
        finally:
            res["fake"] = fake.stop()
        self.check_keys(res)
        return res

    def check_keys(self, res):
        """Every program writes the same number of keys (the floor's and
        the daemon's can differ by one: see bench/floor.c on lower())."""
        d = {r["keys"] for r in res["daemon"]}
        p = {r["keys"] for r in res["peer"]}
        f = {r["keys"] for r in res["floor"]}
        if len(d) > 1 or (p and d != p) or d != f:
            self.problem("%d programs: keys written differ: daemon %s, peer %s, floor %s"
                         % (res["n"], sorted(d), sorted(p), sorted(f)))

    # -- issue 3: concurrency against latency --------------------------------------
    def latency(self):
        n, ms = self.a.latency_programs, self.a.latency_ms
        catdir = build_dir() / "bench" / ("cat-%d" % n)
        gen.ensure(catdir, n, self.a.seed, self.a.target_bytes, log=log)
        fake = Fake(catdir, latency_ms=ms, scope="detail")
        self.fake_pid = fake.proc.pid
        res = {"n": n, "ms": ms, "c": self.a.in_flight[0], "default": [], "serial": [],
               "wide": [], "peer": []}
        try:
            for i in range(self.a.latency_runs):
                log("latency %d ms, %d programs, run %d/%d: default max_in_flight"
                    % (ms, n, i + 1, self.a.latency_runs))
                res["default"].append(self.measured("latency, default", self.daemon_once,
                                                    fake, "lat-default-%d" % i))
                log("latency %d ms, %d programs, run %d/%d: max_in_flight = 1"
                    % (ms, n, i + 1, self.a.latency_runs))
                res["serial"].append(self.measured("latency, serial", self.daemon_once,
                                                   fake, "lat-serial-%d" % i,
                                                   {"max_in_flight": 1}))
                log("latency %d ms, %d programs, run %d/%d: max_in_flight = %d"
                    % (ms, n, i + 1, self.a.latency_runs, self.a.in_flight[0]))
                res["wide"].append(self.measured(
                    "latency, wide", self.daemon_once, fake, "lat-wide-%d" % i,
                    {"max_in_flight": self.a.in_flight[0]}, True, True))
            for i in range(0 if self.a.no_peer else self.a.latency_peer_runs):
                log("latency %d ms, %d programs, run %d/%d: peer"
                    % (ms, n, i + 1, self.a.latency_peer_runs))
                res["peer"].append(self.measured("latency, peer", self.peer, fake,
                                                 "lat-peer-%d" % i))
        finally:
            res["fake"] = fake.stop()
        return res

    # -- issue 22: the request pump alone ------------------------------------------
    def pump(self):
        """--pump: --latency-programs details at +--latency-ms each, at each
        --in-flight concurrency, --latency-runs runs (alternated)."""
        n, ms = self.a.latency_programs, self.a.latency_ms
        catdir = build_dir() / "bench" / ("cat-%d" % n)
        gen.ensure(catdir, n, self.a.seed, self.a.target_bytes, log=log)
        fake = Fake(catdir, latency_ms=ms, scope="detail")
        self.fake_pid = fake.proc.pid
        res = {"n": n, "ms": ms, "by_c": {c: [] for c in self.a.in_flight}}
        try:
            for i in range(self.a.latency_runs):
                for c in self.a.in_flight:
                    log("pump: %d programs, +%d ms, max_in_flight = %d, run %d/%d"
                        % (n, ms, c, i + 1, self.a.latency_runs))
                    res["by_c"][c].append(self.measured(
                        "pump", self.daemon_once, fake, "pump-%d-%d" % (c, i),
                        {"max_in_flight": c}, True, True))
        finally:
            res["fake"] = fake.stop()
        return res

    # -- issue 16: the loop's responsiveness ----------------------------------------
    def start_daemon(self, conf, name, binary=None):
        """The daemon (daemon mode) on conf, stderr to a file; (proc, path)."""
        err_path = self.work / ("%s.stderr" % name)
        with open(err_path, "wb") as err:
            p = subprocess.Popen([str(binary or self.bin), "-c", str(conf)],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err,
                                 preexec_fn=harness._die_with_parent)
        return p, err_path

    @staticmethod
    def wait_event(p, err_path, name, count=1, timeout=600):
        """The count-th event called name (None if the daemon exits or
        time runs out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            evs = [e for e in parse_events(err_path.read_text("utf-8", "replace"))
                   if e.get("event") == name]
            if len(evs) >= count:
                return evs[count - 1]
            if p.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    @staticmethod
    def stop_daemon(p):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def fresh_state(self, name):
        """No snapshot from an earlier run: a first refresh."""
        shutil.rmtree(self.work / ("%s-state" % name), ignore_errors=True)

    def loop_refresh(self, fake, name, binary=None):
        """/healthz every 50 ms during a first refresh (daemon mode)."""
        self.fresh_state(name)
        self.fresh_memcached()
        conf = self.config(name, fake.base, daemon={"refresh_interval": "24h",
                                                    "listen": "127.0.0.1:0"})
        p, err_path = self.start_daemon(conf, name, binary)
        ev = self.wait_event(p, err_path, "listening", timeout=30)
        samples = HealthSampler(ev["address"]) if ev else None
        done = self.wait_event(p, err_path, "refresh_succeeded")
        got = samples.stop() if samples else []
        self.stop_daemon(p)
        other = self.meter.stop(0.0)
        if done is None or not got:
            self.problem("%s: no refresh_succeeded or no samples (see %s)" % (name, err_path))
            done = {}
        # The publish (plan and writes) ends just before refresh_succeeded:
        # the samples that overlap it, and those of the fetching before.
        def wall(e):
            return datetime.datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
        pub = done.get("publish_ms", 0) / 1000
        end = wall(done) if "ts" in done else 0
        start = self.wait_event(p, err_path, "refresh_started", timeout=1)
        t0 = wall(start) if start else 0
        # From the refresh's start (start-up before it is not measured).
        at = samples.at if samples else []
        got = [x for x, t in zip(got, at) if x is None or t + x >= t0]
        at = [t for x, t in zip(samples.got if samples else [], at) if x is None or t + x >= t0]
        fetch = [x for x, t in zip(got, at) if x is None or t + x < end - pub]
        return dict(health_summary(got), other=other, publish=pub,
                    fetch=health_summary(fetch),
                    duration=done.get("duration_ms", 0) / 1000)

    def loop_repair(self, fake, name, binary=None):
        """After a first refresh and its verify pass, SIGUSR1: /healthz
        every 50 ms during the repair of every key (cache_repaired)."""
        self.fresh_state(name)
        self.fresh_memcached()
        conf = self.config(name, fake.base, daemon={"refresh_interval": "24h",
                                                    "listen": "127.0.0.1:0",
                                                    "verify_interval": "24h"})
        p, err_path = self.start_daemon(conf, name, binary)
        ev = self.wait_event(p, err_path, "listening", timeout=30)
        done = self.wait_event(p, err_path, "refresh_succeeded")
        # The publish's own verify pass, then the snapshot's save.
        self.wait_event(p, err_path, "cache_verified")
        self.wait_event(p, err_path, "snapshot_saved")
        samples = HealthSampler(ev["address"]) if ev else None
        p.send_signal(signal.SIGUSR1)
        rep = self.wait_event(p, err_path, "cache_repaired")
        got = samples.stop() if samples else []
        self.stop_daemon(p)
        other = self.meter.stop(0.0)
        if done is None or rep is None or not got:
            self.problem("%s: no refresh, repair or samples (see %s)" % (name, err_path))
            rep = {}
        return dict(health_summary(got), other=other, keys=rep.get("keys"),
                    repair=rep.get("duration_ms", 0) / 1000)

    def loop_stopped(self, fake, name, seconds=8.0, binary=None):
        """After a refresh into two memcached servers, SIGSTOP one: /healthz
        every 50 ms while checks and verify passes (every second) meet it."""
        self.fresh_state(name)
        self.fresh_memcached()
        mc2 = harness.Memcached(memory_mb=self.a.memcached_mb, threads=2)
        mc2.start()
        try:
            conf = self.config(name, fake.base, daemon={
                "refresh_interval": "24h", "listen": "127.0.0.1:0",
                "check_interval": "1s", "verify_interval": "1s"},
                servers="%s, %s" % (self.mc.address, mc2.address))
            p, err_path = self.start_daemon(conf, name, binary)
            ev = self.wait_event(p, err_path, "listening", timeout=30)
            done = self.wait_event(p, err_path, "refresh_succeeded")
            n0 = len([e for e in parse_events(err_path.read_text("utf-8", "replace"))
                      if e.get("event") == "cache_verified"])
            mc2.proc.send_signal(signal.SIGSTOP)
            samples = HealthSampler(ev["address"]) if ev else None
            time.sleep(seconds)
            got = samples.stop() if samples else []
            mc2.proc.send_signal(signal.SIGCONT)
            evs = parse_events(err_path.read_text("utf-8", "replace"))
            verified = [e for e in evs if e.get("event") == "cache_verified"][n0:]
            self.stop_daemon(p)
        finally:
            mc2.proc.send_signal(signal.SIGCONT)
            mc2.stop()
        other = self.meter.stop(0.0)
        if done is None or not got or not verified:
            self.problem("%s: no refresh, samples or verify pass (see %s)" % (name, err_path))
        return dict(health_summary(got), other=other, passes=len(verified),
                    verify_ms=max([e.get("duration_ms", 0) for e in verified] or [0]))

    def responsiveness(self):
        """For each --loop-sizes catalogue, each kind of run, run after run:
        this build and (with --baseline) the baseline's, alternately, so
        that both meet the same machine."""
        bins = [("this", self.bin)]
        if self.a.baseline:
            bins.append(("baseline", Path(self.a.baseline) / "programs-cached"))
        out = []
        for n in self.a.loop_sizes:
            catdir = build_dir() / "bench" / ("cat-%d" % n)
            gen.ensure(catdir, n, self.a.seed, self.a.target_bytes, log=log)
            fake = Fake(catdir)
            self.fake_pid = fake.proc.pid
            res = {"n": n, "bins": {b: {"refresh": [], "repair": [], "stopped": []}
                                    for b, _ in bins}}
            try:
                for i in range(self.a.loop_runs):
                    for kind, fn in (("refresh", self.loop_refresh),
                                     ("repair", self.loop_repair),
                                     ("stopped", self.loop_stopped)):
                        for b, path in bins:
                            log("loop responsiveness, %d programs, run %d/%d, %s: %s"
                                % (n, i + 1, self.a.loop_runs, b, kind))
                            res["bins"][b][kind].append(self.measured(
                                "loop, %s" % kind, fn, fake, "loop-%s-%s-%d" % (kind, b, i),
                                binary=path))
            finally:
                fake.stop()
            out.append(res)
        return out

    # -- profile --------------------------------------------------------------------
    def profile(self):
        n = self.a.profile_programs
        catdir = build_dir() / "bench" / ("cat-%d" % n)
        gen.ensure(catdir, n, self.a.seed, self.a.target_bytes, log=log)
        fake = Fake(catdir)
        self.fake_pid = fake.proc.pid
        out_dir = build_dir() / "bench"
        try:
            self.fresh_memcached()
            conf = self.config("profile", fake.base)
            cmd = [str(self.bin), "-c", str(conf), "--once"]
            if self.a.profile_tool == "perf":
                data = out_dir / ("perf-%d.data" % n)
                argv = ["perf", "record", "-g", "-F", "2000", "-o", str(data), "--"] + cmd
            else:
                data = out_dir / ("callgrind-%d.out" % n)
                argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % data] + cmd
            log("profiling: %s" % " ".join(argv))
            r = run_proc(argv, self.work, "profile")
            if r["rc"] != 0:
                self.problem("profile run: exit %d (see %s/profile.stderr)" % (r["rc"], self.work))
        finally:
            fake.stop()
        if self.a.profile_tool == "perf":
            rep = ""
            for sort in ("dso", "dso,sym"):
                rep += subprocess.run(["perf", "report", "-i", str(data), "--stdio",
                                       "--no-children", "--sort", sort, "-g", "none",
                                       "--percent-limit", "0.5"],
                                      capture_output=True, text=True).stdout
        else:
            rep = subprocess.run(["callgrind_annotate", str(data)],
                                 capture_output=True, text=True).stdout
            rep += "\n\n==== inclusive ====\n" + subprocess.run(
                ["callgrind_annotate", "--inclusive=yes", str(data)],
                capture_output=True, text=True).stdout
        path = out_dir / ("profile-%s-%d.txt" % (self.a.profile_tool, n))
        path.write_text(rep)
        print("\n".join(rep.splitlines()[:80]))
        log("profile written to %s (data: %s)" % (path, data))


# --- the report ---------------------------------------------------------------------

def fmt_s(x):
    if x is None:
        return "–"
    return "%.2f s" % x if x < 100 else "%.0f s" % x


def fmt_mb(kb):
    return "–" if kb is None else "%.0f MB" % (kb / 1024)


def fmt_r(x):
    return "–" if x is None else "%.2f" % x


def fmt_x(x):
    return "–" if x is None else "%.1f×" % x


def fmt_cpus(x):
    return "–" if x is None else "%.2f" % x


def spread(xs, fmt=fmt_s):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    return "%s (%s … %s, n=%d)" % (fmt(median(xs)), fmt(min(xs)), fmt(max(xs)), len(xs))


def col(res, kind, field):
    return median([r.get(field) for r in res[kind]])


def results_table(sizes):
    head = "| | " + " | ".join("%s programs" % format(s["n"], ",") for s in sizes) + " |"
    rows = [head, "|---" * (len(sizes) + 1) + "|"]

    def row(label, f):
        rows.append("| %s | %s |" % (label, " | ".join(f(s) for s in sizes)))

    def ratio(a, b):
        return None if a is None or not b else a / b

    row("daemon `--once`, wall", lambda s: fmt_s(col(s, "daemon", "wall")))
    row("daemon `--once`, `duration_ms`", lambda s: fmt_s(col(s, "daemon", "duration")))
    row("daemon `--once` into Redis, wall / `duration_ms`",
        lambda s: "%s / %s" % (fmt_s(col(s, "redis", "wall")),
                               fmt_s(col(s, "redis", "duration"))))
    row("peer (upstream algorithm), wall", lambda s: fmt_s(col(s, "peer", "wall")))
    row("floor (jansson + pickle + pipelined sets, no HTTP)",
        lambda s: fmt_s(col(s, "floor", "time")))
    row("**daemon / peer**",
        lambda s: fmt_r(ratio(col(s, "daemon", "wall"), col(s, "peer", "wall"))))
    row("speed-up over the peer, peer / daemon (target ≥ 20×)",
        lambda s: fmt_x(ratio(col(s, "peer", "wall"), col(s, "daemon", "wall"))))
    row("**daemon / floor** (target ≤ 2)",
        lambda s: fmt_r(ratio(col(s, "daemon", "wall"), col(s, "floor", "time"))))
    row("second refresh, nothing changed (daemon mode, SIGHUP)",
        lambda s: fmt_s(col(s, "again", "duration")))
    row("second refresh: keys written / skipped",
        lambda s: "%s / %s" % (col(s, "again", "keys"), col(s, "again", "skipped")))
    row("daemon peak RSS, `--once`", lambda s: fmt_mb(col(s, "daemon", "rss_kb")))
    row("daemon peak RSS, daemon mode after 2 refreshes",
        lambda s: fmt_mb(col(s, "again", "rss_kb")))
    row("values written (≈ snapshot size)",
        lambda s: fmt_mb((col(s, "daemon", "bytes") or 0) / 1024))
    row("RSS target: 1.5 × snapshot + 32 MB",
        lambda s: fmt_mb(((col(s, "daemon", "bytes") or 0) * 1.5 / 1024) + 32 * 1024))
    row("peer peak RSS", lambda s: fmt_mb(col(s, "peer", "rss_kb")))
    row("keys written: daemon / peer / floor",
        lambda s: "%s / %s / %s" % (col(s, "daemon", "keys"), col(s, "peer", "keys"),
                                    col(s, "floor", "keys")))
    return "\n".join(rows)


def details_table(sizes):
    rows = ["| programs | what | median (min … max, runs) |", "|---|---|---|"]
    for s in sizes:
        n = format(s["n"], ",")
        for label, kind, field in (
                ("daemon `--once` wall", "daemon", "wall"),
                ("daemon `--once` duration_ms", "daemon", "duration"),
                ("daemon `--once` CPU (user + sys)", "daemon", "cpu"),
                ("daemon `--once`: start-up (exec to refresh_started)", "daemon", "startup"),
                ("daemon `--once`: fetch and parse (to the publish's start)", "daemon",
                 "fetch"),
                ("daemon `--once`: publish (`publish_ms`)", "daemon", "publish"),
                ("daemon `--once`: waiting for the snapshot save after it", "daemon",
                 "save_wait"),
                ("daemon `--once`: exit (after the save)", "daemon", "exit"),
                ("daemon `--once` into Redis, wall", "redis", "wall"),
                ("daemon `--once` into Redis, duration_ms", "redis", "duration"),
                ("peer wall", "peer", "wall"),
                ("peer CPU (user + sys)", "peer", "cpu"),
                ("peer: fetching (serial GETs + response.json())", "peer", "fetch"),
                ("peer: set_many of every family", "peer", "write"),
                ("floor total", "floor", "time"),
                ("floor: jansson parse", "floor", "parse"),
                ("floor: facts, pickles, keys", "floor", "encode"),
                ("floor: memcached_set + final round trip", "floor", "write"),
                ("daemon mode: first refresh", "again", "first"),
                ("daemon mode: unchanged refresh", "again", "duration")):
            rows.append("| %s | %s | %s |" % (n, label, spread([r.get(field) for r in s[kind]])))
        for label, kind in (("daemon `--once`", "daemon"),
                            ("daemon `--once` into Redis", "redis"), ("peer", "peer"),
                            ("floor", "floor"), ("daemon mode", "again")):
            att = sum(r.get("attempts", 1) for r in s[kind]) - len(s[kind])
            rows.append("| %s | other processes during a %s run, CPUs%s | %s |" % (
                n, label, "" if not att else " (%d noisy run%s redone)" % (
                    att, "s" if att > 1 else ""),
                spread([r.get("other") for r in s[kind]], fmt_cpus)))
    return "\n".join(rows)


def latency_table(lat):
    d = median([r["wall"] for r in lat["default"]])
    s = median([r["wall"] for r in lat["serial"]])
    p = median([r["wall"] for r in lat["peer"]])
    rows = ["| %s programs, +%d ms per detail request | wall, median (min … max, runs) |"
            % (format(lat["n"], ","), lat["ms"]), "|---|---|",
            "| daemon, default concurrency (`max_in_flight` 8) | %s |"
            % spread([r["wall"] for r in lat["default"]]),
            "| daemon, serial (`max_in_flight = 1`) | %s |"
            % spread([r["wall"] for r in lat["serial"]]),
            "| **default / serial** (target < 1/6 = 0.167) | %s |"
            % ("–" if not d or not s else "%.3f" % (d / s))]
    rows.append("| other processes during these runs, CPUs | %s |" % spread(
        [r.get("other") for k in ("default", "serial", "peer") for r in lat[k]], fmt_cpus))
    w = median([r["wall"] for r in lat["wide"]])
    wide = lat.get("c", WIDE)
    if lat["wide"]:
        bound = lat["n"] * lat["ms"] / 1000 / wide
        rows.append("| daemon, `max_in_flight = %d` | %s |"
                    % (wide, spread([r["wall"] for r in lat["wide"]])))
        rows.append("| **`max_in_flight = %d` / the latency bound N·L/C = %.3f s** "
                    "(target ≤ 1.3×) | %s |" % (wide, bound,
                                                "–" if not w else "%.2f×" % (w / bound)))
        wd = median([r["duration"] for r in lat["wide"]])
        rows.append("| the same by `duration_ms` (fetch to last write: no start-up, no "
                    "snapshot fsync at exit) | %s, %s |" % (
                        spread([r["duration"] for r in lat["wide"]]),
                        "–" if not wd else "%.2f×" % (wd / bound)))
        rows += pump_rows(lat["wide"], bound, wide)
    if lat["peer"]:
        rows.append("| peer (upstream: serial) | %s |" % spread([r["wall"] for r in lat["peer"]]))
        rows.append("| daemon default / peer | %s |" % ("–" if not p or not d else "%.3f" % (d / p)))
        rows.append("| speed-up over the peer: default, `max_in_flight = %d` (target ≥ 20×) | %s, %s |"
                    % (wide, "–" if not p or not d else "%.1f×" % (p / d),
                       "–" if not p or not w else "%.1f×" % (p / w)))
    return "\n".join(rows)


def fmt_ms(x):
    return "–" if x is None else "%.0f ms" % (x * 1000)


def loop_rows(lp, b):
    """Per kind of run: (label, the runs' largest latencies, p99s) of
    binary b, and its publish_ms and repair durations."""
    r = lp["bins"][b]
    fetch = [dict(x["fetch"], other=x["other"]) for x in r["refresh"]]
    return [
        ("during a first refresh, fetching and parsing (before the publish)", fetch),
        ("during a first refresh, publish included (target < 100 ms)", r["refresh"]),
        ("during a repair of every key (SIGUSR1; target < 100 ms)", r["repair"]),
        ("one of two memcached stopped (SIGSTOP), checks and verify passes every "
         "second (target < 100 ms)", r["stopped"]),
    ]


def pump_rows(runs, bound, c):
    """Rows on the request pump of --once runs at max_in_flight c (with
    daemon_once's threads and pace): the fetch against the bound, where
    the rest of the wall time went, what the fake server saw, and the
    CPU the loop and the other threads used while fetching."""
    def med(k):
        return median([r.get(k) for r in runs])

    def pace(k, i=None):
        v = [r.get("pace", {}).get(k) for r in runs]
        v = [x[i] if i is not None and x is not None else x for x in v]
        return median(v)
    f = med("fetch")
    rows = ["| … the fetch alone (refresh start to publish start) | %s, %s |" % (
                spread([r.get("fetch") for r in runs]),
                "–" if not f else "**%.2f×** the bound" % (f / bound)),
            "| … where the wall time goes: start-up / fetch / publish / waiting for the "
            "snapshot save / exit | %s / %s / %s / %s / %s |" % (
                fmt_ms(med("startup")), fmt_ms(f), fmt_ms(med("publish")),
                fmt_ms(med("save_wait")), fmt_ms(med("exit"))),
            "| … at the fake server: requests waiting for their latency, mean (of %d) / "
            "replies late, p90 / client turnaround p50, p90 | %s / %s / %s, %s |" % (
                c, "–" if pace("mean_waiting") is None else "%.1f" % pace("mean_waiting"),
                "–" if pace("late_ms", 1) is None else "%.1f ms" % pace("late_ms", 1),
                "–" if pace("client_gap_ms", 0) is None else "%.1f ms" % pace("client_gap_ms", 0),
                "–" if pace("client_gap_ms", 1) is None else "%.1f ms" % pace("client_gap_ms", 1)),
            "| … CPUs used during the fetch: the loop thread / the other threads | %s / %s |" % (
                "–" if med("loop_cpus") is None else "%.2f" % med("loop_cpus"),
                "–" if med("workers_cpus") is None else "%.2f" % med("workers_cpus"))]
    return rows


def pump_table(pp):
    """--pump's report: pump_rows for each concurrency."""
    rows = ["| %s programs, +%d ms per detail request | median (min … max, runs) |"
            % (format(pp["n"], ","), pp["ms"]), "|---|---|"]
    for c, runs in pp["by_c"].items():
        bound = pp["n"] * pp["ms"] / 1000 / c
        w = median([r["wall"] for r in runs])
        rows.append("| `max_in_flight = %d`: wall; / N·L/C = %.3f s | %s; %s |" % (
            c, bound, spread([r["wall"] for r in runs]),
            "–" if not w else "**%.2f×**" % (w / bound)))
        rows += pump_rows(runs, bound, c)
        rows.append("| … other processes, CPUs | %s |" % spread(
            [r.get("other") for r in runs], fmt_cpus))
    return "\n".join(rows)


def loop_table(lp):
    bins = list(lp["bins"])
    head = "| %s programs: `/healthz` every 50 ms, largest latency | " % format(lp["n"], ",")
    head += " | ".join("%s: median (min … max) | p99" % b for b in bins)
    if len(bins) > 1:
        head += " | ratio of medians, this / baseline"
    rows = [head + " |", "|---" * (1 + 2 * len(bins) + (len(bins) > 1)) + "|"]
    per = {b: loop_rows(lp, b) for b in bins}
    for k, (label, _) in enumerate(per[bins[0]]):
        cells, meds = [], []
        for b in bins:
            rs = per[b][k][1]
            meds.append(median([x["max"] for x in rs if x["max"] is not None] or [None])
                        if rs else None)
            p99 = [x["p99"] for x in rs if x.get("p99") is not None]
            cells += [spread([x["max"] for x in rs], fmt_ms),
                      fmt_ms(median(p99)) if p99 else "–"]
        if len(bins) > 1:
            cells.append(fmt_r(meds[0] / meds[1]) if meds[0] and meds[1] else "–")
        rows.append("| %s | %s |" % (label, " | ".join(cells)))
    for label, key, kind in (("`publish_ms` of the first refresh", "publish", "refresh"),
                             ("the repair's `duration_ms`", "repair", "repair")):
        cells = []
        for b in bins:
            cells += [spread([x[key] for x in lp["bins"][b][kind]], fmt_ms), ""]
        if len(bins) > 1:
            a = median([x[key] for x in lp["bins"][bins[0]][kind]] or [None])
            z = median([x[key] for x in lp["bins"][bins[1]][kind]] or [None])
            cells.append(fmt_r(a / z) if a and z else "–")
        rows.append("| %s | %s |" % (label, " | ".join(cells)))
    cells = []
    for b in bins:
        cells += [spread([x.get("other") for k in ("refresh", "repair", "stopped")
                          for x in lp["bins"][b][k]], fmt_cpus), ""]
    if len(bins) > 1:
        cells.append("")
    rows.append("| other processes during these runs, CPUs | %s |" % " | ".join(cells))
    return "\n".join(rows)


def sh(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(a):
    lscpu = sh(["lscpu"])
    pick = {}
    for line in lscpu.splitlines():
        k, _, v = line.partition(":")
        pick[k.strip()] = v.strip()
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    try:
        import django
        import pymemcache
        import requests
        py = "requests %s, pymemcache %s, Django %s" % (
            requests.__version__, pymemcache.__version__, django.get_version())
    except ImportError as e:
        py = str(e)
    lines = [
        "- CPU: %s, %s CPU(s), %s thread(s) per core, hypervisor %s" % (
            pick.get("Model name", "?"), pick.get("CPU(s)", "?"),
            pick.get("Thread(s) per core", "?"), pick.get("Hypervisor vendor", "none")),
        "- Memory: %s" % mem,
        "- OS: Debian %s, kernel %s" % (Path("/etc/debian_version").read_text().strip(),
                                        platform.release()),
        "- programs-cached: %s (CFLAGS `%s`)" % (
            sh([str(build_dir() / "programs-cached"), "--version"]).replace("\n", "; "),
            os.environ.get("PCD_CFLAGS_USED", "?")),
        "- memcached: %s (`-t 2 -m %d`, restarted empty before every run)" % (
            sh(["memcached", "-V"]), a.memcached_mb),
        "- %s: %s; %s" % (sys.executable, platform.python_version(), py),
        "- Compiler: %s" % (sh(["cc", "--version"]).splitlines() or ["?"])[0],
    ]
    return "\n".join(lines)


def render(a, sizes, lat, problems, started, elapsed, lp=None):
    direct = " ".join(["PCD_BUILD=%s" % os.environ.get("PCD_BUILD", "build"), sys.executable,
                       "bench/run.py"] + [shlex.quote(x) for x in sys.argv[1:]])
    if "PCD_BENCH_FLAGS" in os.environ:  # set by make
        cmd = "make bench" if not a.quick else "make bench-quick"
        if os.environ["PCD_BENCH_FLAGS"]:
            cmd += " BENCH_FLAGS=%s" % shlex.quote(os.environ["PCD_BENCH_FLAGS"])
        how = "`%s`, which ran `%s`" % (cmd, direct)
    else:
        how = "`%s`" % direct
    parts = [MARK_BEGIN, "",
             "Run on %s (%.1f minutes) by %s." % (started, elapsed / 60, how), ""]
    if problems:
        parts += ["**Problems in this run:**", ""] + ["- %s" % p for p in problems] + [""]
    if sizes:
        parts += ["### Results", "", results_table(sizes), "",
                  "Medians over the runs; every run starts with an empty memcached. "
                  "Wall times are of the whole process (start-up, connections, exit included); "
                  "the floor's time is its own clock from the first parse to the last "
                  "round trip, the bytes already in memory.  Peak RSS is `ru_maxrss` "
                  "from `wait4`.  The machine is shared: before each run the script waits "
                  "(up to --wait-quiet) for other processes to use less than %s CPUs, and "
                  "redoes (up to --noisy-retries) a run during which they used more; "
                  "what they used is under \"other processes\" below." % QUIET, "",
                  "### Every figure", "", details_table(sizes), ""]
        for s in sizes:
            p = s["params"]
            parts.append("- %s programs: %s bytes of details (%.1f KB each), %s course runs, "
                         "%s pathways; the fake server: `%s`." % (
                             format(s["n"], ","), format(p["detail_bytes"], ","),
                             p["detail_bytes"] / s["n"] / 1000, format(p["course_runs"], ","),
                             p["pathways"], s.get("fake", "")))
        parts.append("")
    if lat:
        parts += ["### Concurrency against latency (issue 3)", "", latency_table(lat), ""]
    if lp:
        parts += ["### The event loop's responsiveness (issues 16, 22)", ""]
        for one in lp:
            parts += [loop_table(one), ""]
        parts += ["A client GETs `/healthz` (answered by the event loop) 50 ms after each "
                  "answer; the figure is the request's whole round trip.%s" % (
                      " The baseline is %s, run alternately with this build in the same "
                      "run." % a.baseline if a.baseline else ""), ""]
    parts += ["### Machine", "", machine(a), "",
              MARK_END]
    return "\n".join(parts)


TEMPLATE = """# Benchmarks

`make bench` (bench/run.py) measures a full refresh of the daemon against
upstream's algorithm (the peer) and against the machine's floor, on
catalogues of Discovery-shaped programs served by a fast local fake
Discovery.  See bench/run.py for what each figure is.

%s
"""


def write_report(path, text):
    path = Path(path)
    if path.exists():
        old = path.read_text()
        m = re.search(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), old, re.S)
        if m:
            path.write_text(old[:m.start()] + text + old[m.end():])
            return
        path.write_text(old.rstrip("\n") + "\n\n" + text + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE % text)


# --- main -------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="1,000 programs, one run of each, latency test on 200 programs; "
                         "report in build/bench/BENCH-quick.md")
    ap.add_argument("--sizes", default=None, help="catalogue sizes (default 1000,10000)")
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per size (default 5 up to 1,000 programs, 3 above)")
    ap.add_argument("--peer-runs", type=int, default=None, help="peer runs per size "
                    "(default: as --runs)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-redis", action="store_true",
                    help="skip the daemon --once runs into a redis-server")
    ap.add_argument("--no-latency", action="store_true", help="skip the issue 3 measurement")
    ap.add_argument("--latency-ms", type=int, default=20)
    ap.add_argument("--latency-programs", type=int, default=None)
    ap.add_argument("--latency-runs", type=int, default=None)
    ap.add_argument("--latency-peer-runs", type=int, default=1)
    ap.add_argument("--in-flight", default=str(WIDE), metavar="C[,C...]",
                    help="max_in_flight of the wide latency run (the first), and of "
                         "--pump's runs (default %d)" % WIDE)
    ap.add_argument("--pump", action="store_true",
                    help="only the request pump: --latency-programs details at "
                         "+--latency-ms, --latency-runs runs at each --in-flight, with "
                         "the fetch against N·L/C, the fake's pace and the loop's CPU; "
                         "report in build/bench/BENCH-pump.md")
    ap.add_argument("--workers", type=int, default=None,
                    help="[daemon] workers of every daemon run (default: the daemon's, auto)")
    ap.add_argument("--no-loop", action="store_true",
                    help="skip the issue 16 measurement (/healthz during a refresh and "
                         "with a memcached stopped)")
    ap.add_argument("--loop-sizes", default=None,
                    help="its catalogue sizes (default: --sizes)")
    ap.add_argument("--baseline", default=None, metavar="BUILD",
                    help="also run the responsiveness measurement with BUILD/programs-cached "
                         "(another build, e.g. of main), alternately, for ratios")
    ap.add_argument("--loop-runs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-bytes", type=int, default=65000)
    ap.add_argument("--memcached-mb", type=int, default=2048)
    ap.add_argument("--noisy-retries", type=int, default=None, metavar="N",
                    help="run again, up to N times, a run during which other processes "
                         "used %s CPUs or more (default 2; 0 with --quick)" % QUIET)
    ap.add_argument("--wait-quiet", type=int, default=None, metavar="SECONDS",
                    help="before each run, wait up to this long for other processes to "
                         "leave the CPUs alone (default 120; 0 with --quick)")
    ap.add_argument("--output", default=None, help="report file (default BENCH.md, "
                    "or build/bench/BENCH-quick.md with --quick)")
    ap.add_argument("--profile", action="store_true",
                    help="only profile one refresh (see --profile-tool)")
    ap.add_argument("--profile-tool", choices=("callgrind", "perf"), default="callgrind")
    ap.add_argument("--profile-programs", type=int, default=1000)
    a = ap.parse_args(argv)
    a.in_flight = [int(x) for x in a.in_flight.split(",")]

    for b in ("programs-cached", "bench-fakedisco", "bench-floor"):
        if not os.access(build_dir() / b, os.X_OK):
            log("%s is not built: run make bench-bins" % (build_dir() / b))
            return 2
    if a.baseline and not os.access(Path(a.baseline) / "programs-cached", os.X_OK):
        log("%s/programs-cached is not built" % a.baseline)
        return 2

    if a.wait_quiet is None:
        a.wait_quiet = 0 if a.quick or a.profile else 120
    if a.noisy_retries is None:
        a.noisy_retries = 0 if a.quick or a.profile else 2
    b = Bench(a)
    if a.pump:
        a.latency_programs = a.latency_programs or 1000
        a.latency_runs = a.latency_runs or 3
        started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        t0 = time.monotonic()
        try:
            pp = b.pump()
        finally:
            b.mc.stop()
        text = "\n".join([
            "Run on %s (%.1f minutes) by `%s`." % (
                started, (time.monotonic() - t0) / 60, " ".join(
                    ["PCD_BUILD=%s" % os.environ.get("PCD_BUILD", "build"), sys.executable,
                     "bench/run.py"] + [shlex.quote(x) for x in sys.argv[1:]])), "",
            pump_table(pp), "",
            "The fake server: `%s`." % pp["fake"], ""] + (
            ["**Problems:**", ""] + ["- %s" % x for x in b.problems] + [""]
            if b.problems else []) + ["### Machine", "", machine(a)])
        print(text)
        out = Path(a.output or build_dir() / "bench" / "BENCH-pump.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        log("report written to %s" % out)
        return 1 if b.problems else 0
    if a.profile:
        try:
            b.profile()
        finally:
            b.mc.stop()
        return 1 if b.problems else 0

    if a.quick:
        sizes = [int(x) for x in (a.sizes or "1000").split(",")]
        a.latency_programs = a.latency_programs or 200
        a.latency_runs = a.latency_runs or 1
        a.output = a.output or str(build_dir() / "bench" / "BENCH-quick.md")
    else:
        sizes = [int(x) for x in (a.sizes or "1000,10000").split(",")]
        a.latency_programs = a.latency_programs or 1000
        a.latency_runs = a.latency_runs or 3
        a.output = a.output or str(REPO / "BENCH.md")

    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t0 = time.monotonic()
    results, lat, lp = [], None, None
    a.loop_sizes = [int(x) for x in a.loop_sizes.split(",")] if a.loop_sizes else sizes
    a.loop_runs = a.loop_runs or (1 if a.quick else 3)
    try:
        for n in sizes:
            runs = a.runs or (1 if a.quick else 5 if n <= 1000 else 3)
            peer_runs = a.peer_runs if a.peer_runs is not None else runs
            results.append(b.size(n, runs, peer_runs))
        if not a.no_latency:
            lat = b.latency()
        if not a.no_loop:
            lp = b.responsiveness()
    finally:
        b.mc.stop()
        if b.redis is not None:
            b.redis.close()
    text = render(a, results, lat, b.problems, started, time.monotonic() - t0, lp)
    print(text.replace(MARK_BEGIN, "").replace(MARK_END, "").strip())
    write_report(a.output, text)
    log("report written to %s" % a.output)
    return 1 if b.problems else 0


if __name__ == "__main__":
    sys.exit(main())
