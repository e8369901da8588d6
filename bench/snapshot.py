"""snapshot.py: what the snapshot file costs (issue 22).

    make bench-bins
    PCD_BUILD=build /usr/bin/python3 bench/snapshot.py [--sizes 1000,10000]
        [--baseline OTHER-BUILD/programs-cached] [--output BENCH.md | --no-write]

With --baseline, every measure is taken with that binary too, in the same
run, against the same catalogues and memcached (columns side by side).

Against bench-fakedisco (the C fake Discovery) and a real memcached, for each
catalogue size (bench/gen.py), with a fresh state directory each time:
  once      programs-cached --once: wall time against its refresh's
            duration_ms (what it spends after its last write: the snapshot),
            the snapshot_saved duration_ms, the files in state_dir against the
            value bytes written, and the process's disk writes (wait4's
            ru_oublock: /proc/PID/io write_bytes);
  daemon    daemon mode: the first refresh, then SIGHUP for a refresh with
            nothing changed upstream (duration_ms, disk writes from
            /proc/PID/io write_bytes), then the fake restarted on the same
            port with one program's title edited and SIGHUP again: the
            refresh that changed one program (duration_ms, disk writes,
            against the size of state_dir), and a restart that loads the
            file (snapshot_loaded duration_ms).
Disk writes are what the process sent towards the disk (write_bytes counts
pages dirtied in the page cache), measured until its snapshot_saved (or a
quiet second when a refresh saves nothing).

Nothing asserts a time; the targets are printed next to the figures.
Results go to BENCH.md between this script's own markers.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import gen  # noqa: E402
import run  # noqa: E402
from tests.support import harness  # noqa: E402

MARK_BEGIN = "<!-- bench-snapshot:begin (written by bench/snapshot.py) -->"
MARK_END = "<!-- bench-snapshot:end -->"
DOMAIN = run.DOMAIN


def log(msg):
    print("bench-snapshot: %s" % msg, file=sys.stderr, flush=True)


def write_bytes(pid):
    """/proc/PID/io write_bytes of a live process (its threads included)."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "write_bytes":
                return int(v)
    return None


def dir_bytes(path):
    """Bytes of the regular files in a directory."""
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fake(run.Fake):
    """bench-fakedisco on a given port (so that a second one, serving an
    edited catalogue, can take the first one's place)."""

    def __init__(self, catdir, port):
        argv = [str(run.build_dir() / "bench-fakedisco"), "-d", str(catdir),
                "-p", str(port)]
        work = run.build_dir() / "bench" / "work"
        work.mkdir(parents=True, exist_ok=True)
        self.err_path = work / ("fakedisco-%d-%d.stderr" % (os.getpid(), port))
        self.err = open(self.err_path, "w+b")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err,
                                     preexec_fn=harness._die_with_parent)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("READY "):
            raise RuntimeError("bench-fakedisco did not start: %r %s" % (
                line, self.err_path.read_text("utf-8", "replace")))
        self.base = line.split(" ", 1)[1]


def edited_copy(catdir):
    """A copy of catdir (hard links) with one program's title changed."""
    out = Path(str(catdir) + "-edited")
    if (out / "params.json").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(["cp", "-al", str(catdir), str(out)], check=True)
    uuids = json.loads((out / "uuids.json").read_text())
    victim = out / "programs" / ("%s.json" % uuids[len(uuids) // 2])
    doc = json.loads(victim.read_text())
    doc["title"] = doc.get("title", "") + " (edited)"
    victim.unlink()                 # not the original's inode
    victim.write_bytes(json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
                       .encode("utf-8"))
    return out


class Bench(run.Bench):
    def once(self, fake, name):
        self.fresh_state(name)
        self.fresh_memcached()
        conf = self.config(name, fake.base)
        r = run.run_proc([str(self.bin), "-c", str(conf), "--once"], self.work, name)
        evs = run.parse_events(r["stderr"])
        ev = run.event(evs, "refresh_succeeded") or {}
        saved = run.event(evs, "snapshot_saved") or {}
        if r["rc"] != 0 or not ev or not saved:
            self.problem("%s: exit %d, no refresh_succeeded or snapshot_saved (see %s)"
                         % (name, r["rc"], self.work))
        state = self.work / ("%s-state" % name)
        return {"wall": r["wall"], "duration": ev.get("duration_ms", 0) / 1000,
                "values": ev.get("bytes_written"), "save_ms": saved.get("duration_ms"),
                "file": dir_bytes(state), "disk": None, "rss_kb": r["maxrss_kb"]}

    def wait_after(self, p, err_path, name, count, quiet=1.0, timeout=1800):
        """The count-th event name, then whatever the daemon saves after it
        (its snapshot_saved, or a quiet second)."""
        ev = self.wait_event(p, err_path, name, count=count, timeout=timeout)
        time.sleep(quiet)
        return ev

    def daemon(self, fake, catdir, port, name):
        self.fresh_state(name)
        self.fresh_memcached()
        conf = self.config(name, fake.base, daemon={"refresh_interval": "24h",
                                                    "incremental_interval": "0",
                                                    "verify_interval": "24h"})
        p, err_path = self.start_daemon(conf, name)
        res = {}
        try:
            first = self.wait_event(p, err_path, "refresh_succeeded")
            saved = self.wait_event(p, err_path, "snapshot_saved")
            if first is None or saved is None:
                self.problem("%s: no first refresh (see %s)" % (name, err_path))
                return res
            res["first"] = first["duration_ms"] / 1000
            res["first_save_ms"] = saved.get("duration_ms")
            time.sleep(1.0)
            # An unchanged refresh.
            w0 = write_bytes(p.pid)
            p.send_signal(signal.SIGHUP)
            ev = self.wait_after(p, err_path, "refresh_succeeded", 2)
            res["unchanged"] = ev["duration_ms"] / 1000
            res["unchanged_written"] = ev.get("keys_written")
            res["unchanged_disk"] = write_bytes(p.pid) - w0
            # One program edited: the fake serving the edited copy.
            fake.stop()
            fake = Fake(edited_copy(catdir), port)
            nsaved = len([e for e in run.parse_events(err_path.read_text())
                          if e.get("event") == "snapshot_saved"])
            w0 = write_bytes(p.pid)
            p.send_signal(signal.SIGHUP)
            ev = self.wait_event(p, err_path, "refresh_succeeded", count=3)
            sv = self.wait_event(p, err_path, "snapshot_saved", count=nsaved + 1,
                                 timeout=120)
            time.sleep(0.5)
            res["one"] = ev["duration_ms"] / 1000
            res["one_written"] = ev.get("keys_written")
            res["one_disk"] = write_bytes(p.pid) - w0
            res["one_save_ms"] = (sv or {}).get("duration_ms")
            res["state"] = dir_bytes(self.work / ("%s-state" % name))
        finally:
            self.stop_daemon(p)
            fake.stop()
        # A restart: the file is loaded.
        p, err_path = self.start_daemon(conf, name + "-restart")
        try:
            ev = self.wait_event(p, err_path, "snapshot_loaded", timeout=600)
            res["load_ms"] = (ev or {}).get("duration_ms")
            res["load_rss_kb"] = run.vm_status(p.pid).get("VmRSS") if ev else None
        finally:
            self.stop_daemon(p)
        return res

    def size(self, n, label="", binary=None):
        catdir = run.build_dir() / "bench" / ("cat-%d" % n)
        gen.ensure(catdir, n, self.a.seed, self.a.target_bytes, log=log)
        self.bin = Path(binary) if binary else run.build_dir() / "programs-cached"
        tag = "%s%d" % (label + "-" if label else "", n)
        port = free_port()
        fake = Fake(catdir, port)
        self.fake_pid = fake.proc.pid
        try:
            log("%s: --once (%s)" % (tag, self.bin))
            once = self.once(fake, "snap-once-%s" % tag)
        finally:
            fake.stop()
        fake = Fake(catdir, port)
        self.fake_pid = fake.proc.pid
        log("%s: daemon, unchanged and one-program refreshes" % tag)
        d = self.daemon(fake, catdir, port, "snap-daemon-%s" % tag)
        return {"n": n, "label": label, "once": once, "daemon": d}


def mb(x):
    return "-" if x is None else "%.1f MB" % (x / 1e6)


def secs(x):
    return "-" if x is None else "%.2f s" % x


def ms(x):
    return "-" if x is None else "%d ms" % x


def render(results, started):
    lines = [MARK_BEGIN, "## The snapshot file (bench/snapshot.py)", "",
             "%s; %s, %d cores; bench-fakedisco, one memcached, %s." % (
                 started, platform.machine(), os.cpu_count(),
                 "state_dir on the build tree's file system"), "",
             "| measure | " + " | ".join(
                 ("%s, " % r["label"] if r["label"] else "") + "%d programs" % r["n"]
                 for r in results) + " | target |",
             "|---|" + "---|" * len(results) + "---|"]

    def row(label, f, target="-"):
        lines.append("| %s | %s | %s |" % (label, " | ".join(f(r) for r in results), target))

    row("--once: wall / duration_ms", lambda r: "%s / %s = %.2f" % (
        secs(r["once"]["wall"]), secs(r["once"]["duration"]),
        r["once"]["wall"] / max(r["once"]["duration"], 1e-9)), "<= 1.15 at 10,000")
    row("--once: snapshot save", lambda r: ms(r["once"]["save_ms"]), "<= 1 s at 10,000")
    row("--once: values written / state_dir size", lambda r: "%s / %s = %.2f" % (
        mb(r["once"]["values"]), mb(r["once"]["file"]),
        r["once"]["file"] / max(r["once"]["values"] or 1, 1)), "size <= 0.4 x values")
    row("daemon: first refresh, its save", lambda r: "%s, %s" % (
        secs(r["daemon"].get("first")), ms(r["daemon"].get("first_save_ms"))))
    row("unchanged refresh: duration_ms", lambda r: secs(r["daemon"].get("unchanged")),
        "<= 1.0 s at 10,000")
    row("unchanged refresh: keys written, disk writes", lambda r: "%s, %s" % (
        r["daemon"].get("unchanged_written"), mb(r["daemon"].get("unchanged_disk"))))
    row("one program changed: duration_ms, keys written", lambda r: "%s, %s" % (
        secs(r["daemon"].get("one")), r["daemon"].get("one_written")))
    row("one program changed: disk writes / state_dir", lambda r: "%s / %s = %.1f %%" % (
        mb(r["daemon"].get("one_disk")), mb(r["daemon"].get("state")),
        100.0 * (r["daemon"].get("one_disk") or 0) / max(r["daemon"].get("state") or 1, 1)),
        "<= 10 %")
    row("one program changed: its save", lambda r: ms(r["daemon"].get("one_save_ms")))
    row("restart: snapshot_loaded duration_ms, RSS after", lambda r: "%s, %s" % (
        ms(r["daemon"].get("load_ms")),
        mb((r["daemon"].get("load_rss_kb") or 0) * 1024)))
    lines += ["", MARK_END]
    return "\n".join(lines) + "\n"


def write_report(path, text):
    """Replace this script's section of path (or append it)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1].lstrip("\n")
        path.write_text(head + text + tail, encoding="utf-8")
    else:
        path.write_text(old.rstrip("\n") + ("\n\n" if old else "") + text,
                        encoding="utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-bytes", type=int, default=65000)
    ap.add_argument("--memcached-mb", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--wait-quiet", type=int, default=30)
    ap.add_argument("--output", default=str(REPO / "BENCH.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--baseline", default=None,
                    help="another programs-cached (e.g. a main build), measured too")
    ap.add_argument("--label", default="this",
                    help="this build's column label with --baseline")
    ap.add_argument("--baseline-label", default="main")
    a = ap.parse_args(argv)
    for b in ("programs-cached", "bench-fakedisco"):
        if not os.access(run.build_dir() / b, os.X_OK):
            log("%s is not built: run make bench-bins" % (run.build_dir() / b))
            return 2
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    b = Bench(a)
    try:
        results = []
        for n in a.sizes.split(","):
            if a.baseline:
                results.append(b.size(int(n), a.label))
                results.append(b.size(int(n), a.baseline_label, a.baseline))
            else:
                results.append(b.size(int(n)))
    finally:
        b.mc.stop()
    text = render(results, started)
    print(text.replace(MARK_BEGIN, "").replace(MARK_END, "").strip())
    if not a.no_write:
        write_report(a.output, text)
    for p in b.problems:
        log("PROBLEM: " + p)
    return 1 if b.problems else 0


if __name__ == "__main__":
    sys.exit(main())
