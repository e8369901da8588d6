"""Full LMS parity: every key family, several sites, long keys, the key
functions, pickle protocols and JSON values, server placement on one and
three memcached servers, stale keys, values over the item limit.

The expected cache is cache_programs' own algorithm (tests/support/
reference.py); the reader is the LMS's cache client (Django + pymemcache,
or pylibmc for ketama)."""

import copy
import json
import pickle
import signal
import time

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase


def two_catalogues(long_run_key=True):
    """Site a and b share one Discovery (as in upstream's test); c has its
    own, which lists one of a's programs with other content (the last site
    in domain order wins), and d has no catalog URL."""
    a = catalog.generate(30, seed=1, n_pathways=43, long_run_key=long_run_key)
    c = catalog.generate(8, seed=2, pathway_start_id=100, quirks=False,
                         dangling_pathway=False)
    shared = a["uuids"][5]
    c["uuids"].insert(2, shared)
    c["programs"][shared] = copy.deepcopy(a["programs"][shared])
    c["programs"][shared]["title"] = "As site c sees it"
    # A type name that needs Unicode lower-casing, as str.lower() does.
    a["programs"][a["uuids"][7]]["type"] = "Ünïcode ÉTUDES Typé"
    return a, c


class Parity(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.a, self.c = two_catalogues()
        self.fake = self.start_fake(self.a)
        self.fake.set_catalogue(self.c, "/c")
        self.sites = [("a.example", 1, ""), ("b.example", 2, ""),
                      ("c.example", 3, "/c"), ("d.example", 4, None)]

    def expected(self, pathway_ids="keys"):
        return reference.expected_cache([
            {"domain": "a.example", "site_id": 1, "catalogue": self.a},
            {"domain": "b.example", "site_id": 2, "catalogue": self.a},
            {"domain": "c.example", "site_id": 3, "catalogue": self.c},
            {"domain": "d.example", "site_id": 4, "catalogue": None},
        ], pathway_ids=pathway_ids)

    def run_with(self, mcs, **memcached):
        d = self.daemon(self.config(self.fake, mcs, self.sites, memcached=memcached))
        return d.run_once()

    def check_all(self, mcs, reader_kw=None, **memcached):
        rc, events, stderr = self.run_with(mcs, **memcached)
        self.assertEqual(rc, 0, stderr)
        expected = self.expected(memcached.get("pathway_ids", "keys"))
        r = self.reader(mcs, **(reader_kw or {}))
        self.assertCacheMatches(r, expected)
        # Exactly these keys, each on one server (the one the LMS reads).
        found = []
        for m in mcs:
            found.extend(m.dump_keys())
        self.assertEqual(sorted(found), sorted(r.make_key(k) for k in expected))
        return expected, r, events

    def test_every_family_on_one_server(self):
        mc = self.start_memcached()
        expected, r, _ = self.check_all([mc])
        fams = {reference.family_of(k) for k in expected}
        self.assertEqual(len(fams), 9, fams)
        # The details of upstream's test_cache_programs.
        shared = self.a["uuids"][5]
        self.assertEqual(r.get("program-" + shared)["title"], "As site c sees it")
        self.assertEqual(len(r.get("pathway-ids-a.example")), 43)
        self.assertEqual(r.get("program-uuids-d.example"), [])
        self.assertEqual(r.get("pathway-ids-d.example"), [])
        # organization-programs-* is not site-aware: the last site wins.
        org = self.c["programs"][self.c["uuids"][0]]["authoring_organizations"][0]["key"]
        self.assertEqual(r.get("organization-programs-" + org),
                         expected["organization-programs-" + org])
        self.assertIsNotNone(r.get("programs-by-type-1-ünïcode études typé"))
        self.assertIsNotNone(r.get("programs-by-type-1-professional certificate"))
        self.assertIsNotNone(r.get("programs-by-type-slug-1-MicroBachelors") or
                             [k for k in expected if k.startswith("programs-by-type-slug-1-")])
        long_keys = [k for k in expected if len(r.make_key(k)) == 32 and ":" not in r.make_key(k)]
        self.assertTrue(long_keys, "the catalogue should have a key over 250 characters")

    def test_every_family_on_three_servers(self):
        mcs = [self.start_memcached() for _ in range(3)]
        expected, r, _ = self.check_all(mcs)
        per = [len(m.dump_keys()) for m in mcs]
        self.assertTrue(all(n > 0 for n in per), per)

    def test_long_keys_blake2b(self):
        mc = self.start_memcached()
        self.check_all([mc], reader_kw={"long_key_hash": "blake2b"},
                       long_key_hash="blake2b")

    def test_pickle_protocols(self):
        for proto in (2, 3, 4, 5):
            with self.subTest(proto=proto):
                mc = self.start_memcached()
                expected, r, _ = self.check_all([mc], pickle_protocol=proto)
                k = r.make_key("program-" + self.a["uuids"][0])
                flags, data = mc.get(k)
                self.assertEqual((flags, data[:2]), (1, bytes([0x80, proto])))

    def test_json_values(self):
        mc = self.start_memcached()
        rc, _, stderr = self.run_with([mc], value_format="json")
        self.assertEqual(rc, 0, stderr)
        r = self.reader([mc])
        for k, v in self.expected().items():
            flags, data = mc.get(r.make_key(k))
            self.assertEqual(flags, 0, k)
            self.assertEqual(json.loads(data), v, k)

    def test_pathway_ids_option(self):
        mc = self.start_memcached()
        expected, r, _ = self.check_all([mc], pathway_ids="ids")
        ids = r.get("pathway-ids-a.example")
        self.assertTrue(all(isinstance(i, int) for i in ids))
        # The LMS's get_pathways(site) finds every pathway this way.
        for i in ids:
            self.assertEqual(r.get("pathway-%d" % i)["id"], i)

    def test_all_distribution(self):
        mcs = [self.start_memcached() for _ in range(3)]
        rc, _, stderr = self.run_with(mcs, distribution="all")
        self.assertEqual(rc, 0, stderr)
        expected = self.expected()
        for m in mcs:
            self.assertCacheMatches(self.reader([m]), expected)

    def test_ketama_read_by_pylibmc(self):
        """distribution = ketama puts each key where libmemcached's ketama
        (pylibmc's behaviors={"ketama": True}, Django's PyLibMCCache) looks."""
        mcs = [self.start_memcached() for _ in range(3)]
        rc, _, stderr = self.run_with(mcs, distribution="ketama")
        self.assertEqual(rc, 0, stderr)
        from django.core.cache.backends.memcached import PyLibMCCache
        from tests.support.reader import safe_key
        cache = PyLibMCCache([m.address for m in mcs], {
            "KEY_PREFIX": "default", "VERSION": "1", "KEY_FUNCTION": safe_key,
            "OPTIONS": {"behaviors": {"ketama": True}}})
        expected = self.expected()
        got = cache.get_many(list(expected))
        self.assertEqual(sorted(got), sorted(expected))
        for k, v in expected.items():
            self.assertEqual(got[k], v, k)
        per = [len(m.dump_keys()) for m in mcs]
        self.assertEqual(sum(per), len(expected))
        self.assertTrue(all(n > 0 for n in per), per)


class KeyFunctionDjango(PcdTestCase):

    def test_unquoted_keys(self):
        """key_function = django (no KEY_FUNCTION, e.g. Tutor): keys as
        Django makes them, read by PyMemcacheCache without safe_key."""
        cat = catalog.generate(15, seed=6, quirks=False, dangling_pathway=False)
        for p in cat["programs"].values():
            # Django's key function leaves spaces in, and memcached (and
            # Django's own validate_key) refuses them.
            p["type"] = p["type"].replace(" ", "-")
        fake = self.start_fake(cat)
        mc = self.start_memcached()
        d = self.daemon(self.config(fake, [mc], [("lms.example.com", 1, "")],
                                    memcached={"key_function": "django"}))
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        expected = reference.expected_cache(
            [{"domain": "lms.example.com", "site_id": 1, "catalogue": cat}])
        r = self.reader([mc], key_function="django")
        self.assertCacheMatches(r, expected)
        self.assertTrue(any(":course-programs-course-v1:" in k for k in mc.dump_keys()))

    def test_keys_memcached_cannot_take_are_reported(self):
        """A key with a space cannot exist in memcached under Django's key
        function (Django itself raises InvalidCacheKey): reported, the rest
        written, exit 1."""
        cat = catalog.generate(15, seed=6)
        fake = self.start_fake(cat)
        mc = self.start_memcached()
        d = self.daemon(self.config(fake, [mc], [("lms.example.com", 1, "")],
                                    memcached={"key_function": "django"}))
        rc, events, _ = d.run_once()
        self.assertEqual(rc, 1)
        bad = [e["key"] for e in events if e["event"] == "memcached_error"]
        self.assertTrue(bad)
        self.assertTrue(all(" " in k for k in bad), bad)
        self.assertGreater(len(mc.dump_keys()), 50)


class ItemLimit(PcdTestCase):

    def test_value_over_the_item_limit_keeps_the_old_value(self):
        mc = self.start_memcached(item_size="128k")
        cat = catalog.generate(6, seed=8)
        fake = self.start_fake(cat)
        d = self.daemon(self.config(fake, [mc], [("lms.example.com", 1, "")]))
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        r = self.reader([mc])
        uuid = cat["uuids"][1]
        old = mc.get(r.make_key("program-" + uuid))
        big = copy.deepcopy(cat)
        big["programs"][uuid]["overview"] = "x" * 200000
        fake.set_catalogue(big)
        rc, events, _ = d.run_once()
        self.assertEqual(rc, 1)
        err = [e for e in events if e["event"] == "memcached_error"]
        self.assertEqual(len(err), 1)
        self.assertEqual(err[0]["key"], "program-" + uuid)
        self.assertGreater(err[0]["bytes"], 200000)
        self.assertEqual(mc.get(r.make_key("program-" + uuid)), old)


class StaleKeys(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(30, seed=12, dangling_pathway=False)
        self.fake = self.start_fake(self.cat)

    def start(self, stale_after):
        self.d = self.daemon(self.config(self.fake, [self.mc], [("lms.example.com", 1, "")],
                                         daemon={"refresh_interval": "1h",
                                                 "stale_after": stale_after}))
        self.d.start()
        self.d.wait_event("refresh_succeeded", timeout=20)
        self.r = self.reader([self.mc])

    def refresh(self, n):
        self.d.send_signal(signal.SIGHUP)
        return self.d.wait_events("refresh_succeeded", n, timeout=20)[-1]

    def drop_one(self):
        """Discovery stops listing one program (and so its runs and org)."""
        cat = copy.deepcopy(self.cat)
        gone = cat["uuids"].pop(9)
        self.fake.set_catalogue(cat)
        before = reference.expected_cache([{"domain": "lms.example.com", "site_id": 1,
                                            "catalogue": self.cat}])
        after = reference.expected_cache([{"domain": "lms.example.com", "site_id": 1,
                                           "catalogue": cat}])
        return gone, sorted(set(before) - set(after)), after

    def test_deleted_after_stale_after_successful_refreshes(self):
        self.start(2)
        gone, vanished, after = self.drop_one()
        self.assertIn("program-" + gone, vanished)
        ev = self.refresh(2)
        self.assertEqual(ev["keys_deleted"], 0)
        for k in vanished:
            self.assertIsNotNone(self.r.get(k), k)
        ev = self.refresh(3)
        self.assertEqual(ev["keys_deleted"], len(vanished))
        for k in vanished:
            self.assertIsNone(self.r.get(k), k)
        self.assertCacheMatches(self.r, after)
        self.assertEqual(len(self.mc.dump_keys()), len(after))
        self.assertEqual(self.d.events_named("stale_deleted")[0]["keys"], len(vanished))

    def test_a_key_that_comes_back_starts_again(self):
        self.start(2)
        gone, vanished, _ = self.drop_one()
        self.refresh(2)                       # absent once
        self.fake.set_catalogue(self.cat)
        self.refresh(3)                       # back: the count restarts
        self.drop_one()
        self.assertEqual(self.refresh(4)["keys_deleted"], 0)   # absent once again
        self.assertIsNotNone(self.r.get("program-" + gone))

    def test_zero_keeps_them_forever(self):
        self.start(0)
        gone, vanished, _ = self.drop_one()
        for n in (2, 3, 4):
            self.assertEqual(self.refresh(n)["keys_deleted"], 0)
        for k in vanished:
            self.assertIsNotNone(self.r.get(k), k)

    def test_failed_refreshes_do_not_count(self):
        self.start(1)
        gone, vanished, _ = self.drop_one()
        self.fake.set_fault(self.fake.pathways_target(1), kind="status", status=500, times=None)
        self.d.send_signal(signal.SIGHUP)
        self.d.wait_event("refresh_incomplete", timeout=20)
        time.sleep(0.2)
        self.assertIsNotNone(self.r.get("program-" + gone))


class UpstreamFailureAssertions(PcdTestCase):
    """The failure cases of upstream's test_cache_programs, on a first run
    (nothing published before, so nothing to keep)."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(10, seed=14, dangling_pathway=False)
        self.fake = self.start_fake(self.cat)
        self.d = self.daemon(self.config(self.fake, [self.mc], [("lms.example.com", 1, "")]))
        self.r = self.reader([self.mc])

    def test_missing_pathways_endpoint(self):
        """exit 1, and pathway-ids == [] (there were none before)."""
        self.fake.set_fault(self.fake.pathways_path(), kind="status", status=404)
        rc, _, _ = self.d.run_once()
        self.assertEqual(rc, 1)
        self.assertEqual(self.r.get("pathway-ids-lms.example.com"), [])
        self.assertEqual(self.r.get("program-uuids-lms.example.com"), self.cat["uuids"])

    def test_partial_program_failure(self):
        """exit 1; the other programs cached.  Unlike upstream, the UUID
        list does not name the program that is not in the cache (the failure rules:
        no index names a program whose value is missing)."""
        bad = self.cat["uuids"][3]
        self.fake.set_fault(self.fake.program_path(bad), kind="status", status=500)
        rc, _, _ = self.d.run_once()
        self.assertEqual(rc, 1)
        self.assertIsNone(self.r.get("program-" + bad))
        for u in self.cat["uuids"]:
            if u != bad:
                self.assertEqual(self.r.get("program-" + u)["uuid"], u)
        self.assertEqual(self.r.get("program-uuids-lms.example.com"),
                         [u for u in self.cat["uuids"] if u != bad])
