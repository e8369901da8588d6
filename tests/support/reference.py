"""reference.py: an independent Python port of cache_programs (the oracle).

The functions below follow openedx-platform's
openedx/core/djangoapps/catalog/management/commands/cache_programs.py and the
utils.py helpers it calls, with
Discovery replaced by catalogue dicts (catalog.py format) and the Django
cache by a dict.  What the command would leave in the cache after one run:

    expected = expected_cache([
        {"domain": "a.example.com", "site_id": 1, "catalogue": cat_a},
        {"domain": "b.example.com", "site_id": 2, "catalogue": None},  # unconfigured
    ])
    expected["program-<uuid>"]            -> dict
    expected["program-uuids-a.example.com"] -> [uuid, ...]

``sites`` are given in domain order (Site.Meta.ordering), as the command
iterates them.  Every response is passed through JSON (to_json + json.loads)
as the command would see it, so the caller's catalogue is never mutated.

To model upstream's failure paths a site dict may also carry:
    "fail_uuids": True            the UUID list request fails
    "fail_programs": {uuid, ...}  those detail requests fail (also: a UUID
                                  with no detail in the catalogue fails)
    "fail_pathways_page": N       pathway page N (1-based) fails
``run()`` returns the whole outcome (cache, failure flags, exit code); an
exception the command would not catch (type_attrs: null, no "uuid", ...)
is reported as ``crashed`` with the cache as it stood (only the per-site
lists written so far).
"""

import json
from collections import defaultdict

try:
    from .catalog import to_json
except ImportError:  # run as a script
    from catalog import to_json

__all__ = ["expected_cache", "run", "Outcome", "family_of", "FAMILIES",
           "course_run_keys_for_program", "course_uuids_for_program",
           "child_programs", "normalize_program_type"]

# Key templates, verbatim from openedx/core/djangoapps/catalog/cache.py.
PROGRAM_CACHE_KEY_TPL = 'program-{uuid}'
SITE_PROGRAM_UUIDS_CACHE_KEY_TPL = 'program-uuids-{domain}'
PATHWAY_CACHE_KEY_TPL = 'pathway-{id}'
SITE_PATHWAY_IDS_CACHE_KEY_TPL = 'pathway-ids-{domain}'
COURSE_PROGRAMS_CACHE_KEY_TPL = 'course-programs-{course_run_id}'
CATALOG_COURSE_PROGRAMS_CACHE_KEY_TPL = 'catalog-course-programs-{course_uuid}'
PROGRAMS_BY_TYPE_CACHE_KEY_TPL = 'programs-by-type-{site_id}-{program_type}'
PROGRAMS_BY_TYPE_SLUG_CACHE_KEY_TPL = 'programs-by-type-slug-{site_id}-{program_slug}'
PROGRAMS_BY_ORGANIZATION_CACHE_KEY_TPL = 'organization-programs-{org_key}'

# Family name -> key prefix, most specific first (family_of tries them in order).
FAMILIES = [
    ("program-uuids", "program-uuids-"),
    ("program", "program-"),
    ("pathway-ids", "pathway-ids-"),
    ("pathway", "pathway-"),
    ("catalog-course-programs", "catalog-course-programs-"),
    ("course-programs", "course-programs-"),
    ("programs-by-type-slug", "programs-by-type-slug-"),
    ("programs-by-type", "programs-by-type-"),
    ("organization-programs", "organization-programs-"),
]


def family_of(key):
    """The family name of an (unprefixed) cache key, or None."""
    for name, prefix in FAMILIES:
        if key.startswith(prefix):
            return name
    return None


def _wire(obj):
    """What requests' response.json() would give for obj served as JSON."""
    return json.loads(to_json(obj))


class _Failed(Exception):
    """A simulated failed HTTP request (non-2xx, connection error, bad JSON)."""


# --- utils.py helpers (verbatim logic) ---------------------------------------

def course_run_keys_for_program(parent_program):
    keys = set()
    for program in [parent_program] + child_programs(parent_program):
        curriculum = _primary_active_curriculum(program)
        if curriculum:
            keys.update(_course_runs_from_container(curriculum))
        keys.update(_course_runs_from_container(program))
    return keys


def course_uuids_for_program(parent_program):
    uuids = set()
    for program in [parent_program] + child_programs(parent_program):
        curriculum = _primary_active_curriculum(program)
        if curriculum:
            uuids.update(_courses_from_container(curriculum))
        uuids.update(_courses_from_container(program))
    return uuids


def child_programs(program):
    curriculum = _primary_active_curriculum(program)
    if not curriculum:
        return []
    result = []
    for child in curriculum.get("programs", []):
        result.append(child)
        result.extend(child_programs(child))
    return result


def _primary_active_curriculum(program):
    try:
        return next(c for c in program.get("curricula", []) if c.get("is_active"))
    except StopIteration:
        return


def _course_runs_from_container(container):
    return [
        course_run.get("key") for course in container.get("courses", [])
        for course_run in course.get("course_runs", [])
    ]


def _courses_from_container(container):
    return [course.get("uuid") for course in container.get("courses", [])]


def normalize_program_type(program_type):
    return str(program_type).lower()


# --- the command ---------------------------------------------------------------

class _Site:
    def __init__(self, spec):
        self.domain = spec["domain"]
        self.id = spec["site_id"]
        self.catalogue = spec.get("catalogue")
        self.fail_uuids = spec.get("fail_uuids", False)
        self.fail_programs = set(spec.get("fail_programs", ()))
        self.fail_pathways_page = spec.get("fail_pathways_page")
        self.page_size = spec.get("page_size", 20)


class _Command:
    """cache_programs.Command with the HTTP client replaced by catalogue lookups."""

    def __init__(self, pathway_ids):
        self.pathway_ids_mode = pathway_ids
        self.cache = {}
        self.failed_sites = []

    def handle(self, sites):
        failure = False
        programs = {}
        pathways = {}
        courses = {}
        catalog_courses = {}
        programs_by_type = {}
        programs_by_type_slug = {}
        organizations = {}

        for site in sites:
            if site.catalogue is None:
                self.cache[SITE_PROGRAM_UUIDS_CACHE_KEY_TPL.format(domain=site.domain)] = []
                self.cache[SITE_PATHWAY_IDS_CACHE_KEY_TPL.format(domain=site.domain)] = []
                continue

            uuids, program_uuids_failed = self.get_site_program_uuids(site)
            new_programs, program_details_failed = self.fetch_program_details(site, uuids)
            new_pathways, pathways_failed = self.get_pathways(site)
            new_pathways, new_programs, pathway_processing_failed = self.process_pathways(
                site, new_pathways, new_programs
            )

            failure = any([
                program_uuids_failed,
                program_details_failed,
                pathways_failed,
                pathway_processing_failed,
            ])
            if failure:
                self.failed_sites.append(site.domain)

            programs.update(new_programs)
            pathways.update(new_pathways)
            courses.update(self.get_courses(new_programs))
            catalog_courses.update(self.get_catalog_courses(new_programs))
            programs_by_type.update(self.get_programs_by_type(site, new_programs))
            programs_by_type_slug.update(self.get_programs_by_type_slug(site, new_programs))
            organizations.update(self.get_programs_by_organization(new_programs))

            self.cache[SITE_PROGRAM_UUIDS_CACHE_KEY_TPL.format(domain=site.domain)] = uuids

            pathway_ids = list(new_pathways.keys())
            if self.pathway_ids_mode == "ids":
                pathway_ids = [self._pathway_id_of[k] for k in pathway_ids]
            self.cache[SITE_PATHWAY_IDS_CACHE_KEY_TPL.format(domain=site.domain)] = pathway_ids

        for family in (programs, pathways, courses, catalog_courses, programs_by_type,
                       programs_by_type_slug, organizations):
            self.cache.update(family)
        return failure

    def get_site_program_uuids(self, site):
        failure = False
        uuids = []
        try:
            if site.fail_uuids:
                raise _Failed("uuids")
            uuids = _wire(site.catalogue["uuids"])
        except Exception:  # the command's bare except
            failure = True
        return uuids, failure

    def fetch_program_details(self, site, uuids):
        programs = {}
        failure = False
        for uuid in uuids:
            try:
                cache_key = PROGRAM_CACHE_KEY_TPL.format(uuid=uuid)
                if uuid in site.fail_programs or uuid not in site.catalogue["programs"]:
                    raise _Failed(uuid)
                program = _wire(site.catalogue["programs"][uuid])
                # pathways get added in process_pathways
                program['pathway_ids'] = []
                programs[cache_key] = program
            except Exception:
                failure = True
                continue
        return programs, failure

    def get_pathways(self, site):
        pathways = []
        failure = False
        try:
            all_pathways = site.catalogue.get("pathways", [])
            size = site.page_size
            next_page = 1
            while next_page:
                if next_page == site.fail_pathways_page:
                    raise _Failed("pathways page %d" % next_page)
                start = (next_page - 1) * size
                if next_page > 1 and start >= len(all_pathways):
                    raise _Failed("404 Invalid page")
                page = all_pathways[start:start + size]
                new_pathways = _wire({"results": page,
                                      "next": "x" if start + size < len(all_pathways) else None})
                pathways.extend(new_pathways['results'])
                next_page = next_page + 1 if new_pathways['next'] else None
        except Exception:
            failure = True
        return pathways, failure

    def process_pathways(self, site, pathways, programs):
        processed_pathways = {}
        self._pathway_id_of = getattr(self, "_pathway_id_of", {})
        failure = False
        for pathway in pathways:
            try:
                pathway_id = pathway['id']
                pathway_cache_key = PATHWAY_CACHE_KEY_TPL.format(id=pathway_id)
                processed_pathways[pathway_cache_key] = pathway
                self._pathway_id_of[pathway_cache_key] = pathway_id
                uuids = []

                for program in pathway['programs']:
                    program_uuid = program['uuid']
                    program_cache_key = PROGRAM_CACHE_KEY_TPL.format(uuid=program_uuid)
                    programs[program_cache_key]['pathway_ids'].append(pathway_id)
                    uuids.append(program_uuid)

                del pathway['programs']
                pathway['program_uuids'] = uuids
            except Exception:
                failure = True
        return processed_pathways, programs, failure

    def get_courses(self, programs):
        course_runs = defaultdict(list)
        for program in programs.values():
            for course_run_key in course_run_keys_for_program(program):
                course_run_cache_key = COURSE_PROGRAMS_CACHE_KEY_TPL.format(course_run_id=course_run_key)
                course_runs[course_run_cache_key].append(program['uuid'])
        return course_runs

    def get_catalog_courses(self, programs):
        courses = defaultdict(list)
        for program in programs.values():
            for course_uuid in course_uuids_for_program(program):
                course_cache_key = CATALOG_COURSE_PROGRAMS_CACHE_KEY_TPL.format(course_uuid=course_uuid)
                courses[course_cache_key].append(program['uuid'])
        return courses

    def get_programs_by_type(self, site, programs):
        programs_by_type = defaultdict(list)
        for program in programs.values():
            program_type = normalize_program_type(program.get('type'))
            cache_key = PROGRAMS_BY_TYPE_CACHE_KEY_TPL.format(site_id=site.id, program_type=program_type)
            programs_by_type[cache_key].append(program['uuid'])
        return programs_by_type

    def get_programs_by_type_slug(self, site, programs):
        programs_by_type_slug = defaultdict(list)
        for program in programs.values():
            program_slug = program.get('type_attrs', {}).get('slug')
            cache_key = PROGRAMS_BY_TYPE_SLUG_CACHE_KEY_TPL.format(site_id=site.id, program_slug=program_slug)
            programs_by_type_slug[cache_key].append(program['uuid'])
        return programs_by_type_slug

    def get_programs_by_organization(self, programs):
        organizations = defaultdict(list)
        for program in programs.values():
            for org in program['authoring_organizations']:
                org_cache_key = PROGRAMS_BY_ORGANIZATION_CACHE_KEY_TPL.format(org_key=org['key'])
                organizations[org_cache_key].append(program['uuid'])
        return organizations


class Outcome:
    """The result of one simulated cache_programs run.

    cache: {key: value} as left in the cache, in write order (values are
    plain lists/dicts); failed_sites: domains whose failure flag was set;
    failure: the flag of the last configured site (what decides the exit
    code upstream); exit_code: 0 or 1; crashed: the exception that escaped
    the command (upstream exits 1 with a traceback; cache then holds only
    the per-site lists written before it), else None.
    """

    def __init__(self, cache, failed_sites, failure, crashed):
        self.cache = cache
        self.failed_sites = failed_sites
        self.failure = failure
        self.crashed = crashed
        self.exit_code = 1 if (failure or crashed) else 0

    def __repr__(self):
        return "Outcome(keys=%d, failed_sites=%r, exit_code=%d, crashed=%r)" % (
            len(self.cache), self.failed_sites, self.exit_code, self.crashed)


def run(sites, pathway_ids="keys", domain=None):
    """Simulate one run over sites (domain order); see the module docstring.
    domain: like --domain, only that site.  pathway_ids: "keys" (upstream:
    "pathway-<id>" strings) or "ids" (the ids themselves)."""
    if pathway_ids not in ("keys", "ids"):
        raise ValueError("pathway_ids must be 'keys' or 'ids'")
    chosen = [_Site(s) for s in sites if domain is None or s["domain"] == domain]
    cmd = _Command(pathway_ids)
    try:
        failure = cmd.handle(chosen)
        crashed = None
    except Exception as e:  # what upstream does not catch
        failure, crashed = True, e
    return Outcome(cmd.cache, cmd.failed_sites, failure, crashed)


def expected_cache(sites, pathway_ids="keys", domain=None):
    """{unprefixed cache key: value} that cache_programs leaves for sites.
    Raises the escaping exception if upstream would crash."""
    out = run(sites, pathway_ids=pathway_ids, domain=domain)
    if out.crashed is not None:
        raise out.crashed
    return out.cache
