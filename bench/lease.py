#!/usr/bin/python3
"""Discovery requests with several daemons sharing one writer (the lease)
against one daemon, and against several daemons without the lease; scaled
down: refresh_interval 2 s, 20 s each, 20 programs.

    PCD_BUILD=build /usr/bin/python3 bench/lease.py
"""
import sys, time, tempfile
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests.support.harness import Daemon, Memcached
from tests.support import catalog
from tests.support.fakedisco import FakeDiscovery

def run(n, lease, secs=20):
    tmp = tempfile.mkdtemp()
    mc = Memcached().start()
    fake = FakeDiscovery(catalog.generate(20, seed=5)).start()
    ds = []
    for i in range(n):
        sec = {"discovery": {"auth": "none"}, "memcached": {"servers": mc.address},
               "daemon": {"refresh_interval": "2s", "incremental_interval": "0"},
               "site lms.example.com": {"site_id": 1, "catalog_api_url": fake.base_url()}}
        if lease:
            sec["lease"] = {"enabled": True, "ttl": "3s"}
        ds.append(Daemon(tmp, sec, name="d%d" % i).start())
    time.sleep(secs)
    uu = len(fake.requests_of("uuids")); det = len(fake.requests_of("program"))
    for d in ds: d.stop()
    mc.stop(); fake.stop()
    return uu, det

for n, lease in ((1, False), (10, True), (10, False)):
    uu, det = run(n, lease)
    print("daemons=%d lease=%s: uuid lists %d, details %d in 20 s" % (n, lease, uu, det))
