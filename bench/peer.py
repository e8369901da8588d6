"""peer.py: upstream's cache_programs, for one site, as the benchmark's peer.

    /usr/bin/python3 bench/peer.py --base http://127.0.0.1:PORT/api/v1 \\
        --servers 127.0.0.1:11211 [--domain lms.example.com] [--site-id 1]

The command's handle() and helpers (edx-platform's cache_programs.py) with
only what needs a Django project replaced: the site loop has one site,
whose catalog URL is --base; the API client is a requests.Session with the
headers edx-rest-api-client sets (User-Agent, Authorization: JWT); the cache
is Django's PyMemcacheCache configured as the LMS's CACHES['default']
(pymemcache HashClient, pickle serde, Open edX's safe_key), built by
tests/support/reader.py.  So the requests are serial, each response is
decoded with response.json(), and the writes are cache.set for the two
site lists and one set_many per family, exactly as upstream does them.

Prints one JSON object on stdout: seconds spent fetching, building the
families, writing, in total, and the number of keys written.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import reader  # noqa: E402
from tests.support.reference import _Command as Families  # noqa: E402

# openedx/core/djangoapps/catalog/cache.py
PROGRAM_CACHE_KEY_TPL = 'program-{uuid}'
SITE_PROGRAM_UUIDS_CACHE_KEY_TPL = 'program-uuids-{domain}'
PATHWAY_CACHE_KEY_TPL = 'pathway-{id}'
SITE_PATHWAY_IDS_CACHE_KEY_TPL = 'pathway-ids-{domain}'
COURSE_PROGRAMS_CACHE_KEY_TPL = 'course-programs-{course_run_id}'
CATALOG_COURSE_PROGRAMS_CACHE_KEY_TPL = 'catalog-course-programs-{course_uuid}'
PROGRAMS_BY_TYPE_CACHE_KEY_TPL = 'programs-by-type-{site_id}-{program_type}'
PROGRAMS_BY_TYPE_SLUG_CACHE_KEY_TPL = 'programs-by-type-slug-{site_id}-{program_slug}'
PROGRAMS_BY_ORGANIZATION_CACHE_KEY_TPL = 'organization-programs-{org_key}'

logger = logging.getLogger("cache_programs")


class Site:
    """The fields of django.contrib.sites Site the command reads."""

    def __init__(self, domain, site_id, base):
        self.domain = domain
        self.id = site_id
        self.base = base


class Command(Families):
    """cache_programs.Command.handle and its methods (upstream @ e57a655d);
    get_courses, get_catalog_courses and the three by-type/org methods,
    verbatim upstream too, are the test reference's own copy."""

    def __init__(self, cache, client):
        self.cache = cache
        self.client = client
        self.keys = 0
        self.t = {}

    def handle(self, sites):
        failure = False
        t0 = time.monotonic()

        programs = {}
        pathways = {}
        courses = {}
        catalog_courses = {}
        programs_by_type = {}
        programs_by_type_slug = {}
        organizations = {}
        site_lists = []

        fetch = build = 0.0
        for site in sites:
            t = time.monotonic()
            client = self.client
            api_base_url = site.base
            uuids, program_uuids_failed = self.get_site_program_uuids(client, site, api_base_url)
            new_programs, program_details_failed = self.fetch_program_details(client, uuids, api_base_url)
            new_pathways, pathways_failed = self.get_pathways(client, site, api_base_url)
            fetch += time.monotonic() - t
            t = time.monotonic()
            new_pathways, new_programs, pathway_processing_failed = self.process_pathways(
                site, new_pathways, new_programs
            )

            failure = any([
                program_uuids_failed,
                program_details_failed,
                pathways_failed,
                pathway_processing_failed,
            ])

            programs.update(new_programs)
            pathways.update(new_pathways)
            courses.update(self.get_courses(new_programs))
            catalog_courses.update(self.get_catalog_courses(new_programs))
            programs_by_type.update(self.get_programs_by_type(site, new_programs))
            programs_by_type_slug.update(self.get_programs_by_type_slug(site, new_programs))
            organizations.update(self.get_programs_by_organization(new_programs))
            build += time.monotonic() - t

            # upstream writes the two site lists here, inside the loop
            self.cache.set(SITE_PROGRAM_UUIDS_CACHE_KEY_TPL.format(domain=site.domain), uuids, None)
            pathway_ids = list(new_pathways.keys())
            self.cache.set(SITE_PATHWAY_IDS_CACHE_KEY_TPL.format(domain=site.domain), pathway_ids, None)
            site_lists.append(2)

        t = time.monotonic()
        for family in (programs, pathways, courses, catalog_courses, programs_by_type,
                       programs_by_type_slug, organizations):
            failed = self.cache.set_many(family, None)
            if failed:
                raise SystemExit("set_many failed for %d keys" % len(failed))
        write = time.monotonic() - t

        self.keys = sum(site_lists) + sum(len(f) for f in (
            programs, pathways, courses, catalog_courses, programs_by_type,
            programs_by_type_slug, organizations))
        self.t = {"fetch_s": fetch, "build_s": build, "write_s": write,
                  "total_s": time.monotonic() - t0}
        return failure

    def get_site_program_uuids(self, client, site, api_base_url):
        failure = False
        uuids = []
        try:
            querystring = {
                'exclude_utm': 1,
                'status': ('active', 'retired'),
                'uuids_only': 1,
            }
            api_url = urljoin(f"{api_base_url}/", "programs/")
            logger.info(f'Requesting program UUIDs for {site.domain}.')
            response = client.get(api_url, params=querystring)
            response.raise_for_status()
            uuids = response.json()
        except:  # noqa: E722  pylint: disable=bare-except
            logger.exception(f'Failed to retrieve program UUIDs for site: {site.domain}.')
            failure = True

        logger.info('Received {total} UUIDs for site {domain}'.format(
            total=len(uuids),
            domain=site.domain
        ))
        return uuids, failure

    def fetch_program_details(self, client, uuids, api_base_url):
        programs = {}
        failure = False
        for uuid in uuids:
            try:
                cache_key = PROGRAM_CACHE_KEY_TPL.format(uuid=uuid)
                logger.info(f'Requesting details for program {uuid}.')
                api_url = urljoin(f"{api_base_url}/", f"programs/{uuid}/")
                response = client.get(api_url, params={"exclude_utm": 1})
                response.raise_for_status()
                program = response.json()
                # pathways get added in process_pathways
                program['pathway_ids'] = []
                programs[cache_key] = program
            except:  # noqa: E722  pylint: disable=bare-except
                logger.exception(f'Failed to retrieve details for program {uuid}.')
                failure = True
                continue
        return programs, failure

    def get_pathways(self, client, site, api_base_url):
        pathways = []
        failure = False
        logger.info(f'Requesting pathways for {site.domain}.')
        try:
            api_url = urljoin(f"{api_base_url}/", "pathways/?status=published")
            next_page = 1
            while next_page:
                response = client.get(api_url, params=dict(exclude_utm=1, page=next_page))
                response.raise_for_status()
                new_pathways = response.json()
                pathways.extend(new_pathways['results'])
                next_page = next_page + 1 if new_pathways['next'] else None
        except:  # noqa: E722  pylint: disable=bare-except
            logger.exception(
                msg=f'Failed to retrieve pathways for site: {site.domain}.',
            )
            failure = True

        logger.info('Received {total} pathways for site {domain}'.format(
            total=len(pathways),
            domain=site.domain
        ))

        return pathways, failure

    def process_pathways(self, site, pathways, programs):
        processed_pathways = {}
        failure = False
        for pathway in pathways:
            try:
                pathway_id = pathway['id']
                pathway_cache_key = PATHWAY_CACHE_KEY_TPL.format(id=pathway_id)
                processed_pathways[pathway_cache_key] = pathway
                uuids = []

                for program in pathway['programs']:
                    program_uuid = program['uuid']
                    program_cache_key = PROGRAM_CACHE_KEY_TPL.format(uuid=program_uuid)
                    programs[program_cache_key]['pathway_ids'].append(pathway_id)
                    uuids.append(program_uuid)

                del pathway['programs']
                pathway['program_uuids'] = uuids
            except:  # noqa: E722  pylint: disable=bare-except
                logger.exception(f'Failed to process pathways for {site.domain}')
                failure = True
        return processed_pathways, programs, failure


def main(argv=None):
    ap = argparse.ArgumentParser(description="upstream cache_programs, one site")
    ap.add_argument("--base", required=True, help="the site's catalog API URL")
    ap.add_argument("--servers", required=True, help="host:port[,host:port...]")
    ap.add_argument("--domain", default="lms.example.com")
    ap.add_argument("--site-id", type=int, default=1)
    a = ap.parse_args(argv)

    t0 = time.monotonic()
    r = reader.Reader(a.servers.split(","))
    cache = r.cache
    client = requests.Session()
    # edx_rest_api_client: its User-Agent, and SuppliedJwtAuth's header.
    client.headers.update({"User-Agent": "%s edx-rest-api-client/5.6.1 lms"
                           % requests.utils.default_user_agent(),
                           "Authorization": "JWT bench-token"})
    setup = time.monotonic() - t0
    cmd = Command(cache, client)
    failure = cmd.handle([Site(a.domain, a.site_id, a.base)])
    r.close()
    out = dict(cmd.t, setup_s=setup, keys=cmd.keys, failure=failure)
    json.dump(out, sys.stdout)
    print()
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
