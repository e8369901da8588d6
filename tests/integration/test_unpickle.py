"""Differential test: build/unpickle_json (src/unpickle.c, what --show and
--dry-run --diff read the cache with) against CPython's own pickles.

Every document of the pickler's differential test, pickled by CPython with
protocols 2 to 5, reads back to the same value, keys in the same order
(json.dumps of both agree byte for byte).  Ints past 64 bits, inf and the
shapes the daemon never writes are checked one by one: what is not a
JSON-shaped value (a tuple, bytes, a set, a class, a reduce that would run
a command) is refused with a reason and never run; so are NaN, a list
referred to twice, nesting past 200 and every truncation of a pickle.
"""

import json
import math
import os
import pickle
import struct
import subprocess
import tempfile
import unittest

from tests.integration.test_pickle_diff import documents

TOOL = os.path.join(os.environ.get("PCD_BUILD", "build"), "unpickle_json")
PROTOS = (2, 3, 4, 5)


def decode_all(blobs):
    """One unpickle_json -n run over every blob: [("ok", value) or
    ("error", reason)] in order."""
    data = b"".join(struct.pack("<I", len(b)) + b for b in blobs)
    r = subprocess.run([TOOL, "-n"], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True)
    out = []
    for line in r.stdout.decode("utf-8").split("\n")[:-1]:
        tag, _, rest = line.partition(" ")
        out.append((tag, json.loads(rest) if tag == "ok" else rest))
    assert len(out) == len(blobs), (len(out), len(blobs), r.stderr)
    return out


class Evil:
    """A pickle that would run a command when CPython loads it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, ("touch " + self.path,))


class UnpickleTest(unittest.TestCase):

    def test_cpython_pickles_of_every_document(self):
        values = [json.loads(d) for d in documents()]
        blobs = [pickle.dumps(v, p) for v in values for p in PROTOS]
        got = decode_all(blobs)
        for i, (tag, v) in enumerate(got):
            want = values[i // len(PROTOS)]
            with self.subTest(doc=i // len(PROTOS), proto=PROTOS[i % len(PROTOS)]):
                self.assertEqual(tag, "ok", v)
                self.assertEqual(json.dumps(v), json.dumps(want))

    def test_numbers(self):
        """Ints of any size (LONG1, LONG4, redundant sign bytes), the
        BININT boundaries, floats and inf (read as 1e999, Python's json's
        inf)."""
        nums = [0, 1, -1, 255, 256, 65535, 65536, 2 ** 31 - 1, -2 ** 31, 2 ** 31,
                2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1, 2 ** 64, -2 ** 64,
                10 ** 40, -10 ** 40, 2 ** 2047, -2 ** 2047, 10 ** 4299,
                -(10 ** 4299), 0.5, -0.0, 5e-324, 1.7976931348623157e308]
        blobs = [pickle.dumps(n, p) for n in nums for p in PROTOS]
        blobs += [pickle.dumps([math.inf, -math.inf], 4)]
        # LONG1 with bytes that repeat the sign: still small ints.
        blobs += [b"\x80\x04\x8a\x09" + (5).to_bytes(9, "little", signed=True) + b".",
                  b"\x80\x04\x8a\x09" + (-5).to_bytes(9, "little", signed=True) + b"."]
        got = decode_all(blobs)
        for i, n in enumerate(nums):
            for j in range(len(PROTOS)):
                self.assertEqual(got[i * len(PROTOS) + j], ("ok", n), n)
        self.assertEqual(got[-3], ("ok", [math.inf, -math.inf]))
        self.assertEqual(got[-2:], [("ok", 5), ("ok", -5)])
        # Past JSON's 4300 digits: refused, as Python's json refuses them.
        self.assertEqual(decode_all([pickle.dumps(10 ** 4300, 4)])[0][0], "error")

    def test_refused_never_run(self):
        with tempfile.TemporaryDirectory() as d:
            marker = os.path.join(d, "ran")
            shared = ["x"]
            ok_deep = []                # 200 lists, one in the other,
            for _ in range(199):        # as deep as pickle.c writes
                ok_deep = [ok_deep]
            deep = [ok_deep]
            cases = {
                "reduce": pickle.dumps(Evil(marker), 4),
                "tuple": pickle.dumps({"a": (1, 2)}, 4),
                "bytes": pickle.dumps([b"x"], 4),
                "set": pickle.dumps({1, 2}, 4),
                "nan": pickle.dumps([math.nan], 4),
                "shared list": pickle.dumps([shared, shared], 4),
                "deep": pickle.dumps(deep, 4),
                "int key": pickle.dumps({1: "a"}, 4),
                "protocol 0": pickle.dumps({"a": 1}, 0),
                "empty": b"",
                "two values": b"\x80\x04K\x01K\x02.",
                "bad utf-8": b"\x80\x04\x8c\x02\xff\xfe.",
            }
            got = decode_all(list(cases.values()))
            for (name, _), (tag, why) in zip(cases.items(), got):
                with self.subTest(name):
                    self.assertEqual(tag, "error", why)
                    self.assertRegex(why, r"^byte \d+: ")
            self.assertFalse(os.path.exists(marker))
            self.assertIn("not one of a JSON-shaped value", got[0][1])
            self.assertIn("referred to twice", got[5][1])
            self.assertIn("nested more than 200", got[6][1])
            # 200 deep is fine; a string shared twice too; protocol 1 has
            # the same opcodes (without PROTO).
            self.assertEqual(decode_all([pickle.dumps(ok_deep, 4)])[0], ("ok", ok_deep))
            self.assertEqual(decode_all([pickle.dumps({"a": [1.5]}, 1)])[0],
                             ("ok", {"a": [1.5]}))
            s = "shared" * 3
            self.assertEqual(decode_all([pickle.dumps([s, s, {s: s}], 4)])[0],
                             ("ok", [s, s, {s: s}]))
            # Bytes after STOP are ignored, as pickle.loads ignores them.
            self.assertEqual(decode_all([pickle.dumps([1], 4) + b"junk"])[0], ("ok", [1]))

    def test_every_truncation_is_refused(self):
        value = json.loads(documents()[30])
        for proto in PROTOS:
            whole = pickle.dumps({"v": value, "s": "é" * 300, "n": 2 ** 70}, proto)
            cuts = [whole[:n] for n in range(len(whole))]
            got = decode_all(cuts)
            self.assertEqual([t for t, _ in got], ["error"] * len(cuts))


if __name__ == "__main__":
    unittest.main()
