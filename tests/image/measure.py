"""measure.py: how long the image takes from `podman run` to the first
publish of the sample catalogue (tests/data/sample_catalogue.json, served
by the fake Discovery) into a loopback redis-server.  Prints figures;
asserts nothing (make check-image runs it after the tests).

    CONTAINERS_CONF=tests/image/containers.conf \\
        /usr/bin/python3 -m tests.image.measure [RUNS]
"""

import statistics
import sys
import tempfile
import time

from tests.image.container import IMAGE, Container, require_image
from tests.support import catalog
from tests.support.fakedisco import FakeDiscovery
from tests.support.rediscache import RedisServer


def one_run(tmp, fake, srv, n):
    c = Container(tmp, {"discovery": {"auth": "none"},
                        "redis": {"url": srv.url(1)},
                        "daemon": {"refresh_interval": "1h"},
                        "site lms.example.com": {"site_id": 1,
                                                 "catalog_api_url": fake.base_url()}},
                  name="measure%d" % n)
    try:
        t0 = time.monotonic()
        c.start()
        c.wait_event("config_loaded", timeout=60)
        t1 = time.monotonic()
        ev = c.wait_event("refresh_succeeded", timeout=60)
        t2 = time.monotonic()
        c.stop()
        return t1 - t0, t2 - t0, ev["programs"], ev["duration_ms"]
    finally:
        c.close()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    require_image()
    fake = FakeDiscovery(catalog.sample()).start()
    srv = RedisServer().start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="pcd-measure-") as tmp:
            for n in range(runs):
                srv.flushdb(1)
                results.append(one_run(tmp, fake, srv, n))
    finally:
        fake.stop()
        srv.close()
    for start, publish, programs, ms in results:
        print("measure: podman run -> config_loaded %.2f s, -> first publish %.2f s "
              "(%d programs, refresh %d ms)" % (start, publish, programs, ms))
    print("measure: %s: podman run to the first publish of the sample catalogue: "
          "median %.2f s over %d runs" % (IMAGE, statistics.median(r[1] for r in results),
                                         runs))


if __name__ == "__main__":
    main()
