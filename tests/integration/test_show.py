"""--show KEY: one LMS key, in the cache and in the snapshot, decoded.

Against a real memcached (and Redis) filled by --once from the fake
Discovery: the decoded values are the reference's (what cache_programs
would cache), the index keys listed for a program are exactly those whose
reference value names it, a value changed or deleted behind the daemon's
back is told apart from one that CPython pickled with other bytes, and
nothing is written anywhere (memcached's own counters, the state
directory's files)."""

import json
import os
import pickle

from tests.integration.test_redis import RedisCase
from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"
LISTS = ("course-programs-", "catalog-course-programs-", "programs-by-type-",
         "organization-programs-", "program-uuids-")


def listing(expected, uuid):
    """The keys whose reference value names program uuid."""
    out = set()
    for k, v in expected.items():
        if k.startswith(LISTS) and isinstance(v, list) and uuid in v:
            out.add(k)
        elif k.startswith("pathway-") and not k.startswith("pathway-ids-") \
                and uuid in v.get("program_uuids", []):
            out.add(k)
    return out


def tree(path):
    """Every file under path: {relative name: (size, mtime_ns, mode)}."""
    out = {}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


class Show(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(12, seed=8)
        self.fake = self.start_fake(self.cat)
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")]))
        self.expected = reference.expected_cache(
            [{"domain": SITE, "site_id": 1, "catalogue": self.cat}])
        rc, _, stderr = self.d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.reader_ = self.reader([self.mc])

    def show(self, key, *more):
        res = self.d.run("--show", key, "--json", *more)
        self.assertIn(res.returncode, (0, 1), res.stderr)
        return res.returncode, json.loads(res.stdout)

    def test_program_both_sides_and_its_indexes(self):
        uuid = self.cat["uuids"][3]
        key = "program-" + uuid
        rc, o = self.show(key)
        self.assertEqual(rc, 0)
        self.assertEqual((o["key"], o["family"], o["wire"]),
                         (key, "program", self.reader_.make_key(key)))
        self.assertEqual(len(o["cache"]), 1)
        c = o["cache"][0]
        self.assertEqual((c["where"], c["state"], c["flags"], c["agreement"]),
                         (self.mc.address, "hit", 1, "same bytes"))
        self.assertEqual(c["value"], self.expected[key])
        self.assertEqual(o["snapshot"]["value"], self.expected[key])
        self.assertEqual(c["bytes"], len(self.mc.get(self.reader_.make_key(key))[1]))
        self.assertTrue(o["agree"])
        want = listing(self.expected, uuid)
        self.assertGreater(len(want), 3)
        self.assertEqual({l["key"] for l in o["listed_by"]}, want)
        self.assertTrue(all(l["cache"] == "hit" and l["cache_lists"] for l in o["listed_by"]))

    def test_course_run_key_alone_and_text(self):
        run = next(k[len("course-programs-"):] for k in self.expected
                   if k.startswith("course-programs-"))
        rc, o = self.show(run)
        self.assertEqual(rc, 0)
        self.assertEqual(o["key"], "course-programs-" + run)
        self.assertEqual(o["cache"][0]["value"], self.expected[o["key"]])
        self.assertNotIn("listed_by", o)
        res = self.d.run("--show", run)
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0], "key       course-programs-" + run)
        self.assertIn("family    course_programs", lines)
        self.assertIn("agree     %s: same bytes" % self.mc.address, lines)
        # The decoded list is printed as JSON, indented.
        start = lines.index(next(l for l in lines if l.startswith("cache ")))
        end = lines.index(next(l for l in lines if l.startswith("snapshot ")))
        self.assertEqual(json.loads("\n".join(lines[start + 1:end])),
                         self.expected[o["key"]])

    def test_changed_deleted_and_other_bytes(self):
        uuid = self.cat["uuids"][0]
        key = "program-" + uuid
        wire = self.reader_.make_key(key)
        # The same value pickled by CPython with protocol 2: other bytes.
        self.mc.set(wire, pickle.dumps(self.expected[key], 2), flags=1)
        rc, o = self.show(key)
        self.assertEqual((rc, o["cache"][0]["agreement"]), (0, "same value (other bytes)"))
        changed = dict(self.expected[key], title="Edited behind our back")
        self.mc.set(wire, pickle.dumps(changed, 4), flags=1)
        rc, o = self.show(key)
        self.assertEqual((rc, o["cache"][0]["agreement"], o["agree"]), (1, "differs", False))
        self.assertEqual(o["cache"][0]["value"]["title"], "Edited behind our back")
        self.mc.set(wire, b"\x80\x04c__builtin__\neval\n.", flags=1)
        rc, o = self.show(key)
        self.assertEqual((rc, o["cache"][0]["agreement"]), (1, "differs"))
        self.assertIn("not one of a JSON-shaped value", o["cache"][0]["error"])
        self.mc.delete(wire)
        rc, o = self.show(key)
        self.assertEqual((rc, o["cache"][0]["state"], o["cache"][0]["agreement"]),
                         (1, "missing", "missing from the cache"))
        # An index that no longer names it: seen from the program.
        org = next(l for l in listing(self.expected, uuid) if l.startswith("organization-"))
        self.mc.set(self.reader_.make_key(org), pickle.dumps([], 4), flags=1)
        rc, o = self.show(key)
        lists = {l["key"]: l for l in o["listed_by"]}
        self.assertEqual((lists[org]["cache"], lists[org]["cache_lists"]), ("hit", False))

    def test_absent_everywhere_and_no_snapshot(self):
        rc, o = self.show("course-programs-course-v1:No+Such+Run")
        self.assertEqual((rc, o["cache"][0]["agreement"], o["snapshot"]["state"]),
                         (0, "in neither", "absent"))
        for f in os.listdir(self.d.state_dir):
            os.unlink(os.path.join(self.d.state_dir, f))
        rc, o = self.show("program-" + self.cat["uuids"][0])
        self.assertEqual((rc, o["snapshot"]["state"], o["cache"][0]["agreement"]),
                         (1, "no snapshot", "not in the snapshot"))

    def test_read_only(self):
        """No set, delete or touch reaches memcached; no file under the state
        directory is created, changed or removed."""
        before = self.mc.stats()
        files = tree(self.d.state_dir)
        self.assertIn("programs-cache.snapshot", files)
        for key in ["program-" + self.cat["uuids"][1], "course-v1:x+y+z",
                    "program-uuids-" + SITE]:
            self.show(key)
            self.d.run("--show", key)
        after = self.mc.stats()
        for counter in ("cmd_set", "cmd_touch", "delete_hits", "delete_misses",
                        "incr_misses", "incr_hits", "cas_misses", "cas_hits"):
            self.assertEqual(after.get(counter), before.get(counter), counter)
        self.assertGreater(after["cmd_get"], before["cmd_get"])
        self.assertEqual(tree(self.d.state_dir), files)

    def test_usage(self):
        for args in (["--show", ""], ["--show", "program-"], ["--json"],
                     ["--show", "program-x", "--once"], ["--show", "program-x", "--verify"],
                     ["--dry-run", "--show", "program-x"], ["--diff", "program-x"]):
            res = self.d.run(*args)
            self.assertEqual(res.returncode, 2, (args, res.stdout, res.stderr))
            self.assertIn("Try 'programs-cached --help'", res.stderr)


class ShowValueFormatJson(PcdTestCase):

    def test_raw_json_values(self):
        mc = self.start_memcached()
        cat = catalog.generate(4, seed=2)
        fake = self.start_fake(cat)
        d = self.daemon(self.config(fake, [mc], [(SITE, 1, "")],
                                    memcached={"value_format": "json"}))
        self.assertEqual(d.run_once()[0], 0)
        key = "program-" + cat["uuids"][0]
        res = d.run("--show", key, "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        o = json.loads(res.stdout)
        self.assertEqual(o["cache"][0]["flags"], 0)
        want = reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])
        self.assertEqual(o["cache"][0]["value"], want[key])


class ShowRedis(RedisCase):

    def test_redis_protocol_5(self):
        cat = catalog.generate(6, seed=4)
        fake = self.start_fake(cat)
        srv = self.start_redis()
        d = self.daemon(self.redis_config(fake, srv, [(SITE, 1, "")],
                                          redis={"pickle_protocol": 5}))
        self.assertEqual(d.run_once()[0], 0)
        want = reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])
        uuid = cat["uuids"][2]
        res = d.run("--show", "program-" + uuid, "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        o = json.loads(res.stdout)
        self.assertEqual((o["wire"], o["cache"][0]["where"], o["cache"][0]["agreement"]),
                         ("default:1:program-" + uuid, srv.url(1), "same bytes"))
        self.assertEqual(o["cache"][0]["value"], want["program-" + uuid])
        self.assertEqual({l["key"] for l in o["listed_by"]}, listing(want, uuid))


if __name__ == "__main__":
    import unittest
    unittest.main()
