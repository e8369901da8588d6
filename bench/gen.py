"""gen.py: write a benchmark catalogue as the files the fake Discovery serves.

    /usr/bin/python3 bench/gen.py -n 1000 -o build/bench/cat-1000

makes, from tests/support/catalog.py's generate(n, seed, target_bytes=...):

    DIR/uuids.json              the body of /programs/?...&uuids_only=1
    DIR/programs/<uuid>.json    the body of /programs/<uuid>/?exclude_utm=1
    DIR/pathways/<NNNNNN>.json  one pathway object each, in page order (the
                                server wraps them in DRF page envelopes)
    DIR/params.json             what was generated, written last: a
                                directory with the same params.json is
                                complete and is not made again

Bodies are compact UTF-8 JSON, as DRF writes them (catalog.to_json).  The
catalogue has the generator's quirks (a big int, Unicode keys, a child
program, ...) but no dangling pathway: upstream exits 1 on that one, and a
benchmark compares successful runs.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

import catalog  # noqa: E402

# Bump when the layout or the generator arguments change meaning.
FORMAT = 1


def wanted(n, seed, target_bytes):
    """The params.json a complete directory for these arguments has."""
    src = (REPO / "tests" / "support" / "catalog.py").read_bytes()
    return {"format": FORMAT, "programs": n, "seed": seed,
            "target_bytes": target_bytes, "dangling_pathway": False,
            "catalog_py_sha256": hashlib.sha256(src).hexdigest()}


def read_params(out):
    """The params.json of out, or None."""
    try:
        with open(Path(out) / "params.json", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_current(out, n, seed, target_bytes):
    """Whether out already holds this catalogue, completely."""
    have = read_params(out)
    if have is None:
        return False
    want = wanted(n, seed, target_bytes)
    return all(have.get(k) == v for k, v in want.items())


def write(out, n, seed, target_bytes):
    """Generate and write the catalogue into out (replacing it); the params."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "programs").mkdir(parents=True)
    (tmp / "pathways").mkdir()
    t0 = time.monotonic()
    cat = catalog.generate(n, seed=seed, target_bytes=target_bytes,
                           dangling_pathway=False)
    total = 0
    (tmp / "uuids.json").write_bytes(catalog.to_json(cat["uuids"]))
    for u in cat["uuids"]:
        body = catalog.to_json(cat["programs"][u])
        total += len(body)
        (tmp / "programs" / ("%s.json" % u)).write_bytes(body)
    for i, p in enumerate(cat["pathways"]):
        (tmp / "pathways" / ("%06d.json" % i)).write_bytes(catalog.to_json(p))
    runs = sum(len(c["course_runs"]) for u in cat["uuids"]
               for c in cat["programs"][u]["courses"])
    params = wanted(n, seed, target_bytes)
    params.update({"pathways": len(cat["pathways"]), "detail_bytes": total,
                   "course_runs": runs,
                   "generate_seconds": round(time.monotonic() - t0, 1)})
    with open(tmp / "params.json", "w", encoding="utf-8") as f:
        json.dump(params, f, indent=1)
        f.write("\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return params


def ensure(out, n, seed=1, target_bytes=65000, log=None):
    """Make out hold the catalogue unless it already does; its params."""
    if not is_current(out, n, seed, target_bytes):
        if log:
            log("generating %d programs of ~%d bytes into %s" % (n, target_bytes, out))
        write(out, n, seed, target_bytes)
    return read_params(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a benchmark catalogue.")
    ap.add_argument("-n", "--programs", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-bytes", type=int, default=65000)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--force", action="store_true", help="write even if current")
    a = ap.parse_args(argv)
    if a.force:
        p = write(a.output, a.programs, a.seed, a.target_bytes)
    else:
        p = ensure(a.output, a.programs, a.seed, a.target_bytes,
                   log=lambda m: print(m, file=sys.stderr))
    json.dump(p, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
