#!/usr/bin/python3
"""runtests.py: the integration modules, JOBS at a time.

    PCD_BUILD=build /usr/bin/python3 tools/runtests.py [-j JOBS] [MODULE ...]

Each module (tests/integration/test_*.py, or the ones named) runs in a
unittest process of its own; JOBS of them run at once, the largest files
first so that the longest modules do not come last.  Most of a test's time
is spent waiting for a daemon, a server or a timer, not on a CPU, so two
or three at once on two cores cut the suite's wall time without making the
machine the bottleneck.  Every test already starts its own servers on free
loopback ports and works in a directory of its own.

A module's output is printed whole once it ends (so that the modules'
lines do not interleave); the exit status is 1 if any module failed.
"""

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def modules(names):
    if names:
        return [n if n.startswith("tests.") else "tests.integration." + n for n in names]
    files = sorted((REPO / "tests" / "integration").glob("test_*.py"),
                   key=lambda p: p.stat().st_size, reverse=True)
    return ["tests.integration." + p.stem for p in files]


def run(mod, flags):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "unittest", *flags, mod], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return mod, p.returncode, p.stdout, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("PCD_TEST_JOBS", "2")))
    ap.add_argument("--flag", action="append", default=[],
                    help="passed to unittest (e.g. --flag=-v)")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    mods = modules(a.names)
    t0 = time.monotonic()
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        for mod, rc, out, secs in ex.map(lambda m: run(m, a.flag), mods):
            # ex.map yields in order; each has ended by then.
            last = out.strip().splitlines()[-3:]
            status = "ok" if rc == 0 else "FAILED"
            print("== %s: %s in %.0f s (%s)" % (mod, status, secs,
                  " ".join(l for l in last if l.startswith("Ran"))), flush=True)
            if rc != 0:
                failed.append(mod)
                print(out, flush=True)
    print("runtests: %d modules, %d failed, %.0f s with -j%d%s" % (
        len(mods), len(failed), time.monotonic() - t0, a.jobs,
        (": " + " ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
