"""make demo: run programs-cached once against the bundled sample catalogue
(served by the test suite's fake Discovery over real HTTP) and a throw-away
memcached, then show what it wrote, read back the way the LMS reads it
(Django's PyMemcacheCache with Open edX's safe_key).

make demo BACKEND=redis (or --redis): a throw-away redis-server on a free
loopback port instead, configured as Tutor's LMS reads it (db 1, Django's
key function), read back through django-redis's RedisCache."""

import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import catalog, reader as rd  # noqa: E402
from tests.support.fakedisco import FakeDiscovery  # noqa: E402
from tests.support.harness import Memcached  # noqa: E402
from tests.support.rediscache import RedisReader, RedisServer  # noqa: E402


def show(title):
    print("\n== %s" % title, flush=True)


def main():
    build = Path(os.environ.get("PCD_BUILD", "build"))
    binary = (build if build.is_absolute() else REPO / build) / "programs-cached"
    cat = catalog.sample()
    redis = "--redis" in sys.argv[1:] or os.environ.get("BACKEND") == "redis"
    with tempfile.TemporaryDirectory(prefix="pcd-demo-") as tmp:
        mc = RedisServer().start() if redis else Memcached().start()
        fake = FakeDiscovery(cat).start()
        try:
            conf = Path(tmp) / "programs-cached.conf"
            cache = ("[redis]\nurl = %s\n" % mc.url(1) if redis else
                     "[memcached]\nservers = %s\n" % mc.address)
            conf.write_text(
                "[discovery]\n# The fake Discovery wants no token.\nauth = none\n\n"
                "%s\n"
                "[daemon]\nlog_format = text\nstate_dir = %s\n\n"
                "[site lms.example.com]\nsite_id = 1\ncatalog_api_url = %s\n\n"
                "[site preview.example.com]\nsite_id = 2\n"
                % (cache, tmp, fake.base_url()))
            show("configuration (%s)" % conf)
            print(conf.read_text(), end="")
            show("programs-cached --once (%s %s, Discovery %s)"
                 % ("redis" if redis else "memcached",
                    mc.url(1) if redis else mc.address, fake.base_url()))
            rc = subprocess.run([str(binary), "-c", str(conf), "--once"]).returncode
            print("exit code %d" % rc)

            if redis:
                r = RedisReader(mc, db=1)
                keys = sorted(mc.keys(1))
            else:
                r = rd.Reader([mc.address])
                keys = sorted(mc.dump_keys())
            show("%d keys written, by family" % len(keys))
            by_family = collections.defaultdict(list)
            for k in keys:
                name = k.split(":", 2)[-1]
                fam = next((f for f in ("program-uuids", "pathway-ids",
                                        "programs-by-type-slug", "programs-by-type",
                                        "catalog-course-programs", "course-programs",
                                        "organization-programs", "program", "pathway")
                            if name.startswith(f + "-")), "other")
                by_family[fam].append(k)
            for fam, ks in sorted(by_family.items()):
                if redis:
                    c = mc.client(1)
                    data = c.get(ks[0])
                    c.close()
                    print("  %-24s %4d keys   e.g. %s (%d bytes)"
                          % (fam, len(ks), ks[0], len(data)))
                    continue
                flags, data = mc.get(ks[0])
                print("  %-24s %4d keys   e.g. %s (flags %d, %d bytes)"
                      % (fam, len(ks), ks[0], flags, len(data)))

            uuid = cat["uuids"][0]
            show("cache.get('program-%s') through Django%s"
                 % (uuid, " (django-redis)" if redis else ""))
            prog = r.get("program-" + uuid)
            for k, v in list(prog.items())[:8]:
                text = repr(v)
                print("  %-26s %s" % (k, text if len(text) < 70 else text[:67] + "..."))
            print("  ... %d keys in all; pathway_ids = %r" % (len(prog), prog["pathway_ids"]))
            site = r.get("program-uuids-lms.example.com")
            print("\ncache.get('program-uuids-lms.example.com') -> %d UUIDs" % len(site))
            print("cache.get('program-uuids-preview.example.com') -> %r"
                  % r.get("program-uuids-preview.example.com"))
            r.close()
            return rc
        finally:
            fake.stop()
            if redis:
                mc.close()
            else:
                mc.stop()


if __name__ == "__main__":
    sys.exit(main())
