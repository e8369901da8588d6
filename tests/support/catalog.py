"""catalog.py: deterministic, Discovery-shaped catalogues for the tests.

A catalogue is a plain JSON-compatible dict:

    {
      "uuids":    ["<uuid>", ...],          # what /programs/?uuids_only=1 returns, in order
      "programs": {"<uuid>": <detail>, ...}, # what /programs/<uuid>/ returns
      "pathways": [<pathway>, ...],          # what /pathways/ pages return, in order
    }

Each detail has the fields of edx-platform's ProgramFactory, in its order
(openedx/core/djangoapps/catalog/tests/factories.py), nested CurriculumFactory / CourseFactory /
CourseRunFactory / OrganizationFactory / PersonFactory shapes, and each
pathway the PathwayFactory fields with ``programs`` as a list of small program
dicts (uuid, title, ... as Discovery's pathway serializer nests them).
One deviation from the factory: ``expected_learning_items`` is a list of
strings, as Discovery serialises it (the factory fills it with courses).

The same arguments and seed always give the same catalogue, byte for byte
(``to_json``), so failures reproduce.  With ``quirks=True`` (the default) the
catalogue contains every case the programs cache treats specially; see
``generate``.  ``python3 catalog.py --help`` writes catalogues to files; the
bundled tests/data/sample_catalogue.json is ``sample()``.
"""

import argparse
import copy
import json
import random
import sys
import uuid as uuidlib

__all__ = ["generate", "sample", "to_json", "SAMPLE_PARAMS", "PROGRAM_TYPES",
           "UNICODE_ORG_KEY", "quirks_of", "revise", "add_program", "pad",
           "without_spaces"]

# Program types (type name, type_attrs.slug).  Names with a space and with
# non-ASCII letters exercise quote_plus and str.lower() in the keys; the
# "MicroBachelors" slug keeps its capitals (slugs are not lower-cased).
PROGRAM_TYPES = [
    ("MicroMasters", "micromasters"),
    ("Professional Certificate", "professional-certificate"),
    ("XSeries", "xseries"),
    ("Masters", "masters"),
    ("Zertifikat Ökonomie", "zertifikat-okonomie"),
    ("MicroBachelors", "MicroBachelors"),
]

# An organisation key with non-ASCII letters and a space (quote_plus: %XX, +).
UNICODE_ORG_KEY = "Ünïcode Org"
UNICODE_ORG_NAME = "Ünïcode Organisation — Ελληνικά 中文 🎓"

ORGS = [("edX", "edX"), ("MITx", "Massachusetts Institute of Technology"),
        ("HarvardX", "Harvard University"), ("UQx", "The University of Queensland"),
        ("DelftX", "Delft University of Technology")]

WORDS = ("data science analytics python machine learning statistics finance "
         "history physics biology design writing ethics supply chain logistics "
         "marketing cloud security algorithms networks economics law music art "
         "chemistry energy climate health nutrition leadership business").split()

UNICODE_WORDS = ["Ünïcode", "café", "naïve", "Straße", "中文", "日本語",
                 "Ελληνικά", "😀", "é", "\u00a0", "Ω", ""]

LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim "
         "ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut "
         "aliquip ex ea commodo consequat. ")

# The parameters of the bundled sample (tests/data/sample_catalogue.json).
SAMPLE_PARAMS = dict(n_programs=12, seed=2025, n_pathways=3,
                     runs_per_course=2, courses_per_program=2, fanout=1)


def to_json(obj, indent=None):
    """Serialise like Discovery (DRF's JSONRenderer): compact, UTF-8, not
    ASCII-escaped.  Returns bytes.  With indent, pretty-printed (for files)."""
    if indent is None:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False)
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=indent,
                          allow_nan=False) + "\n"
    return text.encode("utf-8")


class _Gen:
    """One generator run: a seeded RNG plus counters for unique names."""

    def __init__(self, seed, runs_per_course, courses_per_program, fanout=3):
        self.rng = random.Random(seed)
        self.fanout = fanout
        self.seq = 0
        self.runs_per_course = runs_per_course
        self.courses_per_program = courses_per_program
        self.type_uuids = {name: self.uuid() for name, _ in PROGRAM_TYPES}
        self.orgs = [self.organization(k, n) for k, n in ORGS]
        self.unicode_org = self.organization(UNICODE_ORG_KEY, UNICODE_ORG_NAME)

    # -- atoms -------------------------------------------------------------
    def uuid(self):
        """A random (seeded) version-4 UUID string."""
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def next_seq(self):
        self.seq += 1
        return self.seq

    def word(self):
        return self.rng.choice(WORDS)

    def words(self, n):
        return " ".join(self.word() for _ in range(n))

    def title(self, n=3):
        return self.words(n).title()

    def date(self, year=None):
        """'YYYY-MM-DDTHH:MM:SSZ', as Discovery formats datetimes."""
        y = year if year is not None else self.rng.randint(2019, 2027)
        return "%04d-%02d-%02dT%02d:%02d:00Z" % (
            y, self.rng.randint(1, 12), self.rng.randint(1, 28),
            self.rng.randint(0, 23), self.rng.choice((0, 30)))

    def url(self, path):
        return "https://www.example.com/%s" % path

    def image(self):
        return {"height": 480, "width": 640, "description": self.words(3),
                "src": self.url("media/%s.jpg" % self.uuid()[:8])}

    # -- factories (field order as in edx-platform's factories.py) ----------
    def organization(self, key, name):
        return {"key": key, "name": name, "uuid": self.uuid(),
                "logo_image_url": self.url("media/org/%s.png" % self.uuid()[:8])}

    def person(self):
        return {"bio": self.words(6).capitalize() + ".",
                "given_name": self.word().title(),
                "family_name": self.word().title(),
                "profile_image_url": self.url("media/people/%s.jpg" % self.uuid()[:8]),
                "uuid": self.uuid()}

    def seat(self):
        return {"currency": "USD", "price": "%d.00" % self.rng.choice((49, 99, 149)),
                "sku": "%07X" % self.rng.getrandbits(28), "type": "verified",
                "upgrade_deadline": self.rng.choice((None, self.date()))}

    def course_run(self, run_key):
        start = self.date()
        return {
            "eligible_for_financial_aid": self.rng.random() < 0.7,
            "end": self.rng.choice((None, self.date(2028))),
            "enrollment_end": None,
            "enrollment_start": start,
            "is_enrollable": True,
            "is_marketable": self.rng.random() < 0.8,
            "image": self.image(),
            "key": run_key,
            "marketing_url": self.url("course/%s" % self.uuid()[:8]),
            "pacing_type": "self_paced",
            "seats": [self.seat() for _ in range(self.fanout)],
            "short_description": self.words(8).capitalize() + ".",
            "start": start,
            "status": "published",
            "title": self.title(),
            "type": "verified",
            "uuid": self.uuid(),
            "content_language": "en",
            "max_effort": 4,
            "weeks_to_complete": 10,
        }

    def course(self, org, n_runs=None, old_style=False, run_keys=None):
        """A course of org with n_runs runs; run keys 'course-v1:Org+Num+Run'
        (or 'Org/Num/Run' when old_style), unless run_keys gives them."""
        n_runs = self.runs_per_course if n_runs is None else n_runs
        org_key = org["key"] if org["key"].isascii() else "UnicodeX"
        org_key = org_key.replace(" ", "")
        number = "%s%d" % (self.word().upper()[:4], self.next_seq())
        if run_keys is None:
            run_keys = []
            for r in range(n_runs):
                run = "%dT%d" % (r % 3 + 1, 2024 + r // 3)
                if old_style:
                    run_keys.append("%s/%s/%s" % (org_key, number, run))
                else:
                    run_keys.append("course-v1:%s+%s+%s" % (org_key, number, run))
        entitlement = lambda: {"currency": "USD", "price": "%d.00" % self.rng.choice((50, 150)),
                               "sku": "%07X" % self.rng.getrandbits(28),
                               "mode": "verified", "expires": None}
        return {
            "course_runs": [self.course_run(k) for k in run_keys],
            "entitlements": [entitlement() for _ in range(self.fanout)],
            "image": self.image(),
            "key": "%s+%s" % (org_key, number),
            "owners": [copy.deepcopy(org)],
            "title": self.title(),
            "uuid": self.uuid(),
        }

    def curriculum(self, courses, is_active, programs=()):
        return {"uuid": self.uuid(), "name": self.title(2),
                "marketing_text": self.words(10), "marketing_text_brief": self.words(4),
                "is_active": is_active, "courses": copy.deepcopy(list(courses)),
                "programs": copy.deepcopy(list(programs))}

    def program(self, index, orgs, courses, curricula, type_index=None,
                price_total=500, price_float=False):
        ptype, slug = PROGRAM_TYPES[(index if type_index is None else type_index)
                                    % len(PROGRAM_TYPES)]
        title = self.title()
        marketing_slug = title.lower().replace(" ", "-") + "-%d" % index
        endorsement = lambda: {
            "corporation_name": self.title(2),
            "image": self.image(),
            "individual_endorsements": [{"endorser": self.person(),
                                         "quote": self.words(8)} for _ in range(self.fanout)]}
        price = {"currency": "USD", "max": 1000, "min": 100, "total": price_total}
        if price_float:
            price = {"currency": "USD", "max": 999.5, "min": 99.99, "total": 1.5e-7}
        return {
            "authoring_organizations": copy.deepcopy(orgs),
            "applicable_seat_types": [],
            "banner_image": {size: {"height": h, "width": w,
                                    "url": self.url("media/banner/%s-%s.jpg" % (index, size))}
                             for size, h, w in (("large", 480, 1440), ("medium", 240, 726),
                                                ("small", 120, 435), ("x-small", 60, 348))},
            "card_image_url": self.url("media/card/%d.jpg" % index),
            "corporate_endorsements": [endorsement() for _ in range(self.fanout)],
            "courses": copy.deepcopy(courses),
            "expected_learning_items": [self.words(5) for _ in range(self.fanout)],
            "faq": [{"answer": self.words(12), "question": self.words(6) + "?"}
                    for _ in range(self.fanout)],
            "hidden": False,
            "instructor_ordering": [self.person() for _ in range(self.fanout)],
            "is_program_eligible_for_one_click_purchase": True,
            "job_outlook_items": [{"value": self.words(6)} for _ in range(self.fanout)],
            "marketing_slug": marketing_slug,
            "marketing_url": self.url("%s/%s" % (slug, marketing_slug)),
            "max_hours_effort_per_week": self.rng.randint(6, 12),
            "min_hours_effort_per_week": self.rng.randint(1, 5),
            "overview": self.words(30),
            "price_ranges": [price],
            "staff": [self.person() for _ in range(self.fanout)],
            "status": "active",
            "subtitle": self.words(6),
            "title": title,
            "type": ptype,
            "type_attrs": {"uuid": self.type_uuids[ptype], "slug": slug},
            "uuid": self.uuid(),
            "video": {"src": self.url("video/%d" % index), "description": self.words(5)},
            "weeks_to_complete": self.rng.randint(8, 40),
            "curricula": curricula,
        }

    def pathway(self, pathway_id, programs):
        return {
            "id": pathway_id,
            "description": self.words(12),
            "destination_url": self.url("pathway/%d" % pathway_id),
            "email": "pathways+%d@example.com" % pathway_id,
            "name": self.title(2) + " Pathway",
            "org_name": self.rng.choice(ORGS)[1],
            "programs": [pathway_program(p) for p in programs],
            "pathway_type": "credit" if pathway_id % 2 else "industry",
            "status": "published",
        }


def pathway_program(detail):
    """The small program dict a pathway nests (Discovery's pathway
    serializer uses a minimal program serializer)."""
    keys = ("uuid", "title", "subtitle", "type", "type_attrs", "status",
            "marketing_slug", "marketing_url", "card_image_url", "hidden")
    return {k: copy.deepcopy(detail[k]) for k in keys if k in detail}


def _plain_program(g, index):
    """A program with one active curriculum that lists the same courses as the
    top-level ``courses`` (so every run is reachable both ways), followed by an
    inactive curriculum with a course of its own (whose runs must not count)."""
    org = g.orgs[index % len(g.orgs)]
    courses = [g.course(org) for _ in range(g.courses_per_program)]
    curricula = [g.curriculum(courses, True), g.curriculum([g.course(org, 1)], False)]
    return g.program(index, [org], courses, curricula)


def _quirky_program(g, index, n_programs, long_run_key):
    """Program ``index`` of a quirks catalogue; see generate()'s docstring."""
    org = g.orgs[index % len(g.orgs)]
    if index == 1:
        # First curriculum inactive (its course must not count), second active.
        courses = [g.course(org) for _ in range(g.courses_per_program)]
        curricula = [g.curriculum([g.course(org)], False), g.curriculum(courses, True),
                     g.curriculum([g.course(org, 1)], False)]
        return g.program(index, [org], courses, curricula, price_float=True)
    if index == 2:
        # The same organisation listed twice: its UUID appears twice under
        # organization-programs-<key>.  A big int exercises LONG1 pickling.
        courses = [g.course(org) for _ in range(g.courses_per_program)]
        return g.program(index, [org, copy.deepcopy(org)], courses,
                         [g.curriculum(courses, True)], price_total=2 ** 70 + 1)
    if index == 3:
        # Unicode org key and name, an old-style (slash) run key, and text
        # with non-BMP characters and one-character strings.
        org = g.unicode_org
        courses = [g.course(org, old_style=True)] + \
                  [g.course(org) for _ in range(g.courses_per_program - 1)]
        p = g.program(index, [org, g.orgs[0]], courses, [g.curriculum(courses, True)],
                      type_index=1)
        p["subtitle"] = " ".join(UNICODE_WORDS)
        p["job_outlook_items"].append({"value": "é"})
        p["job_outlook_items"].append({"value": ""})
        return p
    if index == 6 and long_run_key:
        # A run key that makes the memcached key longer than 250 characters.
        key = "course-v1:LongX+%s+1T2025" % ("L" * 240)
        courses = [g.course(org, run_keys=[key])] + \
                  [g.course(org) for _ in range(g.courses_per_program - 1)]
        return g.program(index, [org], courses, [g.curriculum(courses, True)])
    if index == 7:
        # No active curriculum: only the top-level courses count.
        courses = [g.course(org) for _ in range(g.courses_per_program)]
        curricula = [g.curriculum([g.course(org, 1)], False)]
        return g.program(index, [org], courses, curricula)
    if index == 8:
        # An active curriculum whose extra course is not among the top-level
        # courses: its runs are reachable through the curriculum only.
        courses = [g.course(org) for _ in range(g.courses_per_program)]
        extra = g.course(org)
        return g.program(index, [org], courses, [g.curriculum(courses + [extra], True)])
    if index == 9:
        # No curricula at all.
        courses = [g.course(org) for _ in range(g.courses_per_program)]
        return g.program(index, [org], courses, [])
    return _plain_program(g, index)


def _share_course(donor, receiver):
    """Make receiver also contain donor's first course (same course UUID and
    runs), at top level and in its active curriculum."""
    shared = copy.deepcopy(donor["courses"][0])
    receiver["courses"].append(shared)
    for c in receiver["curricula"]:
        if c["is_active"]:
            c["courses"].append(copy.deepcopy(shared))
            break


def _pad(detail, target_bytes, text):
    """Grow text fields so that to_json(detail) is about target_bytes long:
    40 % into the top-level course runs' short_description, 20 % into staff
    bios, the rest into overview (adjusted last, so the size is exact unless
    the detail is already larger)."""
    missing = target_bytes - len(to_json(detail))
    if missing <= 0:
        return
    runs = [r for c in detail["courses"] for r in c["course_runs"]]
    pos = 0

    def take(n):
        nonlocal pos
        n = max(0, n)
        if pos + n > len(text):
            pos = 0
        s = text[pos:pos + n]
        pos += n
        return s

    if runs:
        each = int(missing * 0.4) // len(runs)
        for r in runs:
            r["short_description"] += " " + take(each - 1)
    if detail["staff"]:
        each = int(missing * 0.2) // len(detail["staff"])
        for s in detail["staff"]:
            s["bio"] += " " + take(each - 1)
    missing = target_bytes - len(to_json(detail))
    if missing > 0:
        detail["overview"] += take(missing)


def generate(n_programs, seed=1, runs_per_course=3, courses_per_program=3,
             n_pathways=None, target_bytes=None, quirks=True, child_program=True,
             dangling_pathway=True, long_run_key=False, pathway_start_id=1,
             fanout=3):
    """Return a catalogue dict {"uuids", "programs", "pathways"} (see module doc).

    n_programs details are generated; ``uuids`` lists each once, in order.
    Each program has ``courses_per_program`` courses of ``runs_per_course``
    runs (the factory's 3 × 3 by default), listed at top level and again in
    its first active curriculum.  ``n_pathways`` (default n_programs // 4, at
    least 1) pathways with ids from ``pathway_start_id`` nest 1 to 3 programs.

    With ``quirks`` (programs that exist get the case; others are plain; the
    child, when there is one, is always the last program and plain):
      0  parent: its active curriculum nests the child program (the last UUID
         in the list, when ``child_program`` and n_programs >= 3), which nests
         a grandchild that is not in the list: runs of the child map to
         [parent, child], runs of the grandchild to [parent, child] too;
      1  curricula [inactive, active, inactive]; float prices;
      2  the same organisation twice in authoring_organizations; a big int;
      3  Unicode organisation key/name (UNICODE_ORG_KEY), type "Professional
         Certificate", an old-style "Org/Num/Run" run key, Unicode text;
      4, 5  share a course (same course UUID and runs);
      6  (only with ``long_run_key``) a run key whose memcached key is > 250;
      7  no active curriculum;  8  a curriculum-only course;  9  no curricula.
    Types cycle through PROGRAM_TYPES (spaces, non-ASCII, capitalised slug).
    With ``dangling_pathway`` the last pathway lists program 2, then a
    program that is not in ``uuids``, then program 3 (cache_programs caches
    that pathway unmodified and has appended its id to program 2 only).

    ``fanout`` is the length of the factory's other 3-item lists (seats,
    entitlements, endorsements, staff, faq, ...); 1 makes small catalogues.
    ``target_bytes`` pads text fields so that each detail's to_json() is
    about that many bytes (for benchmarks).
    """
    if n_programs < 0:
        raise ValueError("n_programs must be >= 0")
    g = _Gen(seed, runs_per_course, courses_per_program, fanout)
    details = []
    has_child = child_program and n_programs >= 3
    for i in range(n_programs):
        if has_child and i == n_programs - 1:
            details.append(_plain_program(g, i))  # the child (see below)
        elif quirks:
            details.append(_quirky_program(g, i, n_programs, long_run_key))
        else:
            details.append(_plain_program(g, i))

    if quirks and n_programs >= 6:
        _share_course(details[4], details[5])

    if has_child:
        parent, child = details[0], details[-1]
        grandchild = _plain_program(g, n_programs)
        child_active = next(c for c in child["curricula"] if c["is_active"])
        child_active["programs"].append(copy.deepcopy(grandchild))
        parent_active = next(c for c in parent["curricula"] if c["is_active"])
        parent_active["programs"].append(copy.deepcopy(child))

    if target_bytes:
        text = (LOREM * (target_bytes // len(LOREM) + 2))
        for d in details:
            _pad(d, target_bytes, text)

    if n_pathways is None:
        n_pathways = max(1, n_programs // 4)
    pathways = []
    for j in range(n_pathways):
        pid = pathway_start_id + j
        if n_programs == 0:
            members = []
        elif dangling_pathway and j == n_pathways - 1:
            missing = _plain_program(g, n_programs + 1)
            members = [details[2 % n_programs], missing, details[3 % n_programs]]
        else:
            count = 1 + (j % 3)
            members = [details[(j + k * 5) % n_programs] for k in range(count)]
            members = list({m["uuid"]: m for m in members}.values())
        pathways.append(g.pathway(pid, members))

    return {"uuids": [d["uuid"] for d in details],
            "programs": {d["uuid"]: d for d in details},
            "pathways": pathways}


def sample():
    """The bundled sample catalogue (tests/data/sample_catalogue.json)."""
    return generate(**SAMPLE_PARAMS)


def quirks_of(catalogue):
    """Name the special programs of a quirks catalogue made by generate():
    {"parent", "child", "inactive_first", "double_org", "unicode_org",
     "shared_a", "shared_b", "no_active", "curriculum_only", "no_curricula",
     "dangling_pathway", "missing_program"} -> UUID (pathway id for
    "dangling_pathway"); entries that do not exist are left out."""
    uuids = catalogue["uuids"]
    names = ["parent", "inactive_first", "double_org", "unicode_org", "shared_a",
             "shared_b", None, "no_active", "curriculum_only", "no_curricula"]
    out = {}
    for i, name in enumerate(names):
        if name and i < len(uuids):
            out[name] = uuids[i]
    if len(uuids) >= 3:
        parent = catalogue["programs"][uuids[0]]
        for c in parent["curricula"]:
            if c["is_active"] and c["programs"]:
                out["child"] = c["programs"][0]["uuid"]
    known = set(uuids)
    for p in catalogue["pathways"]:
        for prog in p["programs"]:
            if prog["uuid"] not in known:
                out["dangling_pathway"] = p["id"]
                out["missing_program"] = prog["uuid"]
    return out


def revise(catalogue, suffix=" (v2)", pathways=True):
    """The catalogue after an edit in Discovery (a deep copy): every
    program's title gets suffix; with pathways (and at least one pathway),
    the first pathway is renamed and gains the first listed program it did
    not have, and the last pathway with two programs or more loses its
    last one.  Pathways nest the programs' new small dicts."""
    cat = copy.deepcopy(catalogue)
    for p in cat["programs"].values():
        p["title"] = p["title"] + suffix
    pws = cat["pathways"]
    if pathways and pws:
        pws[0]["name"] = pws[0]["name"] + suffix
        have = {m["uuid"] for m in pws[0]["programs"]}
        extra = [u for u in cat["uuids"] if u not in have and u in cat["programs"]]
        if extra:
            pws[0]["programs"].append(pathway_program(cat["programs"][extra[0]]))
        for pw in reversed(pws):
            if len(pw["programs"]) >= 2:
                pw["programs"].pop()
                break
    for pw in pws:
        pw["programs"] = [pathway_program(cat["programs"][m["uuid"]])
                          if m["uuid"] in cat["programs"] else m
                          for m in pw["programs"]]
    return cat


def add_program(catalogue, like, uuid=None, title=None, target_bytes=None,
                seed=0):
    """A deep copy of catalogue with one more program, listed last: a copy
    of program ``like`` (same type, organisations and courses, so it joins
    that program's index keys and makes none of its own) with a new uuid
    (random from seed unless given), a new title and, with target_bytes,
    padded to that size.  Returns (catalogue, new uuid)."""
    cat = copy.deepcopy(catalogue)
    p = copy.deepcopy(cat["programs"][like])
    if uuid is None:
        uuid = str(uuidlib.UUID(int=random.Random(seed).getrandbits(128), version=4))
    p["uuid"] = uuid
    p["title"] = title if title is not None else "Added " + p["title"]
    if target_bytes:
        _pad(p, target_bytes, LOREM * (target_bytes // len(LOREM) + 2))
    cat["uuids"].append(uuid)
    cat["programs"][uuid] = p
    return cat, uuid


def pad(catalogue, target_bytes, uuids=None):
    """A deep copy with the details of uuids (default all) padded so that
    each to_json() is about target_bytes (see _pad)."""
    cat = copy.deepcopy(catalogue)
    text = LOREM * (target_bytes // len(LOREM) + 2)
    for u in (cat["programs"] if uuids is None else uuids):
        _pad(cat["programs"][u], target_bytes, text)
    return cat


def without_spaces(catalogue):
    """A deep copy whose program types and organisation keys have no
    spaces (" " becomes "_"), so that every cache key is valid under
    Django's own key function (memcached refuses a space)."""
    cat = copy.deepcopy(catalogue)

    def fix(p):
        if isinstance(p.get("type"), str):
            p["type"] = p["type"].replace(" ", "_")
        for o in p.get("authoring_organizations") or []:
            o["key"] = o["key"].replace(" ", "_")
        for c in p.get("curricula") or []:
            for child in c.get("programs") or []:
                fix(child)
    for p in cat["programs"].values():
        fix(p)
    for pw in cat["pathways"]:
        for m in pw["programs"]:
            if isinstance(m.get("type"), str):
                m["type"] = m["type"].replace(" ", "_")
    return cat


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a Discovery-shaped catalogue as JSON.")
    ap.add_argument("-n", "--programs", type=int, default=SAMPLE_PARAMS["n_programs"])
    ap.add_argument("--seed", type=int, default=SAMPLE_PARAMS["seed"])
    ap.add_argument("--pathways", type=int, default=None)
    ap.add_argument("--runs-per-course", type=int, default=3)
    ap.add_argument("--courses-per-program", type=int, default=3)
    ap.add_argument("--target-bytes", type=int, default=None)
    ap.add_argument("--fanout", type=int, default=3)
    ap.add_argument("--long-run-key", action="store_true")
    ap.add_argument("--no-quirks", action="store_true")
    ap.add_argument("--sample", action="store_true",
                    help="write the bundled sample (ignores the shape options)")
    ap.add_argument("--indent", type=int, default=None)
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args(argv)
    if a.sample:
        cat = sample()
        indent = 1 if a.indent is None else a.indent
    else:
        cat = generate(a.programs, seed=a.seed, n_pathways=a.pathways,
                       runs_per_course=a.runs_per_course,
                       courses_per_program=a.courses_per_program,
                       target_bytes=a.target_bytes, quirks=not a.no_quirks,
                       fanout=a.fanout,
                       long_run_key=a.long_run_key)
        indent = a.indent
    data = to_json(cat, indent=indent)
    if a.output == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(a.output, "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
