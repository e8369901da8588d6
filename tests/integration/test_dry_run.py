"""--dry-run: fetch and build, write nothing, say what would change."""

import copy

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
