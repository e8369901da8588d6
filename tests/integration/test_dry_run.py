"""--dry-run: fetch and build, write nothing, say what would change."""

import copy
import json

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"


def summary(stdout):
    """{family: (keys, bytes, new, changed, same)} from the table."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[1].isdigit():
            rows[parts[0]] = tuple(int(x) for x in parts[1:])
    return rows


class DryRun(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(15, seed=21)
        self.fake = self.start_fake(self.cat)
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")]))
        self.expected = reference.expected_cache(
            [{"domain": SITE, "site_id": 1, "catalogue": self.cat}])

    def test_empty_cache_everything_new_nothing_written(self):
        res = self.d.run("--dry-run")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.mc.dump_keys(), set())
        rows = summary(res.stdout)
        self.assertEqual(rows["total"][0], len(self.expected))
        self.assertEqual(rows["total"][2], len(self.expected))
        self.assertEqual(rows["program"][:1], (15,))
        listed = [l.split(None, 3)[-1] for l in res.stdout.splitlines() if l.startswith("new ")]
        self.assertEqual(sorted(listed), sorted(self.expected))

    def test_after_a_publish_only_changes_are_listed(self):
        rc, _, stderr = self.d.run_once()
        self.assertEqual(rc, 0, stderr)
        before = {k: self.mc.get(k) for k in self.mc.dump_keys()}
        res = self.d.run("--dry-run")
        self.assertEqual(summary(res.stdout)["total"][4], len(self.expected))
        cat = copy.deepcopy(self.cat)
        uuid = cat["uuids"][4]
        cat["programs"][uuid]["title"] = "Renamed"
        self.fake.set_catalogue(cat)
        res = self.d.run("--dry-run")
        self.assertEqual(res.returncode, 0, res.stderr)
        changed = [l.split() for l in res.stdout.splitlines() if l.startswith("changed ")]
        self.assertEqual([c[-1] for c in changed], ["program-" + uuid])
        self.assertEqual(summary(res.stdout)["program"][3], 1)
        self.assertEqual({k: self.mc.get(k) for k in self.mc.dump_keys()}, before)

    def test_failed_site_exits_1(self):
        self.fake.set_fault(self.fake.uuids_path(), kind="status", status=500)
        res = self.d.run("--dry-run")
        self.assertEqual(res.returncode, 1)
        self.assertEqual(self.mc.dump_keys(), set())


def lines_of(stdout, word):
    """The listing lines that start with word, split: [kind, family, bytes,
    key, rest...]."""
    return [l.split(None, 4) for l in stdout.splitlines() if l.split(None, 1)[:1] == [word]]


def removed(cat, uuid):
    """cat without program uuid (from the list, its detail and pathways)."""
    cat = copy.deepcopy(cat)
    cat["uuids"].remove(uuid)
    del cat["programs"][uuid]
    return cat


class WouldDeleteOrHold(PcdTestCase):
    """What a publish would delete (stale keys, with their counts) and hold
    (the shrink guard, with its counts), read without writing."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(15, seed=21)
        self.fake = self.start_fake(self.cat)

    def publish(self, **daemon):
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")], daemon=daemon))
        rc, _, stderr = self.d.run_once()
        self.assertEqual(rc, 0, stderr)
        return {k: self.mc.get(k) for k in self.mc.dump_keys()}

    def expected(self, cat):
        return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])

    def test_stale_keys_counted_then_deleted(self):
        before = self.publish()
        uuid = self.cat["uuids"][9]
        cat = removed(self.cat, uuid)
        self.fake.set_catalogue(cat)
        gone = set(self.expected(self.cat)) - set(self.expected(cat))
        self.assertIn("program-" + uuid, gone)
        res = self.d.run("--dry-run")
        self.assertEqual(res.returncode, 0, res.stderr)
        stale = lines_of(res.stdout, "stale")
        self.assertEqual({s[3] for s in stale}, gone)
        self.assertEqual(lines_of(res.stdout, "delete"), [])
        prog = next(s for s in stale if s[3] == "program-" + uuid)
        self.assertEqual(prog[1], "program")
        self.assertEqual(int(prog[2]), len(before[self.d_wire("program-" + uuid)][1]))
        self.assertIn("(absent 1 of 3 full refreshes: deleted after 2 more complete full "
                      "refreshes, in about 30 min)", prog[4])
        self.assertIn("stale:   keys=%d delete=0 keep=%d stale_after=3" % (len(gone), len(gone)),
                      res.stdout)
        # With stale_after = 1 this refresh would delete them; still a dry run.
        self.d.sections["daemon"]["stale_after"] = 1
        self.d.write_config()
        res = self.d.run("--dry-run")
        self.assertEqual({s[3] for s in lines_of(res.stdout, "delete")}, gone)
        self.assertIn("(absent 1 full refreshes, stale_after 1)",
                      lines_of(res.stdout, "delete")[0][4])
        self.assertIn("delete=%d keep=0" % len(gone), res.stdout)
        self.assertEqual({k: self.mc.get(k) for k in self.mc.dump_keys()}, before)
        # And --once does delete exactly those.
        self.assertEqual(self.d.run_once()[0], 0)
        self.assertEqual(set(before) - self.mc.dump_keys(), {self.d_wire(k) for k in gone})

    def test_a_failed_site_counts_nothing(self):
        self.publish()
        cat = removed(self.cat, self.cat["uuids"][2])
        self.fake.set_catalogue(cat)
        self.fake.set_fault(self.fake.program_path(cat["uuids"][0]), kind="status", status=500)
        res = self.d.run("--dry-run")
        self.assertEqual(res.returncode, 1)
        stale = lines_of(res.stdout, "stale")
        self.assertIn("program-" + self.cat["uuids"][2], {s[3] for s in stale})
        self.assertTrue(all("absent 0 of 3 full refreshes; this one does not count" in s[4]
                            for s in stale), stale)

    def test_shrink_guard_holds_with_counts(self):
        before = self.publish()
        cat = copy.deepcopy(self.cat)
        for u in cat["uuids"][1:]:
            del cat["programs"][u]
        cat["uuids"] = cat["uuids"][:1]
        self.fake.set_catalogue(cat)
        res = self.d.run("--dry-run")
        self.assertEqual(res.returncode, 1)
        held = [l for l in res.stdout.splitlines() if l.startswith("held ")]
        self.assertEqual(held, ["held     site=%s programs_before=15 programs_now=1 "
                                "max_shrink=0.1 (nothing of the site would be written; "
                                "--force publishes it)" % SITE])
        self.assertIn("held:    sites=1", res.stdout)
        # Held: the site stays as it was, nothing would change or go stale.
        self.assertEqual(lines_of(res.stdout, "stale") + lines_of(res.stdout, "changed") +
                         lines_of(res.stdout, "new"), [])
        # Forced: nothing held, and the 14 programs' keys are stale.
        res = self.d.run("--dry-run", "--force")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("held:    sites=0", res.stdout)
        self.assertGreaterEqual(len(lines_of(res.stdout, "stale")), 14)
        self.assertEqual({k: self.mc.get(k) for k in self.mc.dump_keys()}, before)

    def d_wire(self, key):
        return self.reader([self.mc]).make_key(key)


class Diff(PcdTestCase):
    """--dry-run --diff KEY: the field-level changes of one value."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(6, seed=3)
        self.fake = self.start_fake(self.cat)
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")]))

    def diff(self, key):
        res = self.d.run("--dry-run", "--diff", key)
        self.assertEqual(res.returncode, 0, res.stderr)
        full = key if key.startswith(("program-", "course-programs-")) \
            else "course-programs-" + key
        out = res.stdout.split("\ndiff %s\n" % full, 1)
        self.assertEqual(len(out), 2, res.stdout)
        return out[1].splitlines()

    def test_program_fields(self):
        self.assertEqual(self.d.run_once()[0], 0)
        uuid = self.cat["uuids"][1]
        cat = copy.deepcopy(self.cat)
        p = cat["programs"][uuid]
        old_title = p["title"]
        p["title"] = "Renamed / again"
        del p["subtitle"]
        p["new_field"] = {"a": [1, 2]}
        old_run = p["courses"][0]["course_runs"][0]["title"]
        p["courses"][0]["course_runs"][0]["title"] = "Run ~1"
        p["courses"][0]["course_runs"].append({"key": "course-v1:x+y+z", "title": "T"})
        self.fake.set_catalogue(cat)
        got = self.diff("program-" + uuid)
        self.assertEqual(got[0], "  the cache's value (%s) -> what this refresh would write"
                         % self.mc.address)
        n = len(self.cat["programs"][uuid]["courses"][0]["course_runs"])
        self.assertEqual(sorted(got[1:]), sorted([
            "~ /title: %s -> %s" % (json.dumps(old_title), json.dumps("Renamed / again")),
            "- /subtitle: %s" % json.dumps(self.cat["programs"][uuid]["subtitle"]),
            "+ /new_field: {\"a\":[1,2]}",
            "~ /courses/0/course_runs/0/title: %s -> \"Run ~1\"" % json.dumps(old_run),
            "+ /courses/0/course_runs/%d: {\"key\":\"course-v1:x+y+z\",\"title\":\"T\"}" % n,
        ]))
        # Unchanged: nothing differs; a run key alone means its index.
        self.assertEqual(self.diff("program-" + self.cat["uuids"][0])[1:], ["  no field differs"])
        run = p["courses"][0]["course_runs"][-1]["key"]
        got = self.diff(run)
        self.assertEqual(got[1:], ["  (not in the cache: all of it would be new)",
                                   "+ /0: %s" % json.dumps(uuid)])

    def test_empty_cache_and_unknown_key(self):
        uuid = self.cat["uuids"][0]
        got = self.diff("program-" + uuid)
        self.assertEqual(got[1], "  (not in the cache: all of it would be new)")
        fields = {l.split(":", 1)[0] for l in got[2:]}
        self.assertIn("+ /uuid", fields)
        self.assertIn("+ /pathway_ids", fields)
        self.assertEqual(self.diff("program-nope"),
                         ["  this refresh would not write it: no such key in what it "
                          "would publish"])
        self.assertEqual(self.mc.dump_keys(), set())
