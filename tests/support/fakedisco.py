"""fakedisco.py: a fake Open edX Discovery (and LMS OAuth2 endpoint) over real HTTP.

It serves a catalogue (see catalog.py: {"uuids", "programs", "pathways"})
at exactly the URLs cache_programs uses, checks the query strings
strictly, records every request, and injects faults on demand.

    fake = FakeDiscovery(catalogue)          # or sites={"": cat1, "/b": cat2}
    fake.start()
    fake.base_url()        -> "http://127.0.0.1:PORT/api/v1"
    fake.base_url("/b")    -> "http://127.0.0.1:PORT/b/api/v1"
    fake.oauth_url         -> "http://127.0.0.1:PORT"   (POST /oauth2/access_token)
    fake.set_fault(fake.program_path(uuid), "status", status=503,
                   headers={"Retry-After": "1"}, times=2)
    ...
    fake.requests          -> [Request, ...] (a snapshot)
    fake.stop()

URLs, relative to base = {prefix}/api/v1 (query parameters may come in any
order, but the multiset must be exactly this; anything else is a 400 whose
JSON body says what was wrong):
    GET {base}/programs/?exclude_utm=1&status=active&status=retired&uuids_only=1
        -> JSON list of UUIDs; with uuids_page_size=N a DRF page envelope
           {count, next, previous, results}, "&page=N" accepted then.
    GET {base}/programs/?exclude_utm=1&status=active&status=retired&timestamp=T
        (timestamps=True only; kind "filtered") -> a DRF page envelope of
        minimal programs {uuid, title, type, status, data_modified_timestamp}
        whose data_modified_timestamp >= T, page_size per page, "&page=N"
        accepted (with "&uuids_only=1" too: the UUID list so filtered); an unparsable T is a 400 as Django's filter answers.  With
        timestamp_filter=False the parameter is ignored (every program).
    GET {base}/programs/{uuid}/?exclude_utm=1      -> the detail, 404 if unknown
        (with timestamps=True it carries "data_modified_timestamp": the fake's
        clock, plus clock_skew seconds, when set_catalogue last saw the
        program change; a program's own value of that key wins)
    GET {base}/pathways/?status=published&exclude_utm=1&page=N
        -> {count, next, previous, results}, page_size per page (default 20);
           next/previous absolute URLs (DRF style) or null; 404 past the end.
    POST /oauth2/access_token   (also {prefix}/oauth2/access_token)
        form grant_type=client_credentials, client_id, client_secret,
        token_type=jwt -> {"access_token", "expires_in", "token_type": "JWT",
        "scope"}; 401 {"error": "invalid_client"} on bad credentials.
With require_auth=True every API request needs "Authorization: JWT <token>"
with a token this server issued and that has not expired (or one listed in
static_tokens); otherwise 401.

Responses are compact UTF-8 JSON (like DRF), application/json, with a
Content-Length; gzip-encoded when the request accepts gzip and gzip=True.

Faults (set_fault): the first fault whose match fits the request and whose
``times`` budget is not used up applies.  Fault responses are not gzipped
except for the kinds "headers" and "content_type", which are the normal
response with something changed.  Kinds:
    "status"        status (default 500), body (default {"detail": ...}),
                    content_type, headers
    "headers"       the normal response plus ``headers``
    "body"          status (default 200) with ``body`` (bytes, str, or a JSON
                    value that is serialised)
    "malformed"     the normal body with its last byte removed (or ``body``),
                    correctly framed: invalid JSON
    "content_type"  the normal body labelled content_type (default text/html)
    "hang"          never answer until fault.release(), fake.release_hangs()
                    or stop(); then close the connection.  after_headers=True
                    sends the status line and headers (full Content-Length)
                    first, then hangs before the body.
    "trickle"       the normal body, chunk_size bytes every interval seconds
    "truncate"      framing="length": Content-Length of the full body, part
                    sent, then close; "chunked": chunks without the final
                    0-chunk, then close; "close": no length, Connection:
                    close, part sent, then close.  keep = bytes or fraction
                    of the body sent (default 0.5).
    "reset"         close the connection at once, without any answer (RST)
``match`` is a path string ("/api/v1/programs/<uuid>/": any query), a
path?query string (query compared as a multiset), a compiled regex
(re.search on "path?query"), or a callable(Request) -> bool.
``times`` None = always, N = the first N matching requests.

Run as a program (for make demo and benchmarks):
    /usr/bin/python3 tests/support/fakedisco.py --catalogue FILE [--port 0]
        [--latency-ms N] [--page-size 20] [--site PREFIX=FILE ...]
prints "READY http://127.0.0.1:PORT/api/v1" as the first line of stdout
(then one "SITE <prefix> <base url>" line per --site) and serves until
SIGTERM or SIGINT.
"""

import argparse
import email.utils
import gzip
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import datetime, timezone
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

__all__ = ["FakeDiscovery", "Fault", "Request", "http_date", "dumps"]

API = "/api/v1"

UUIDS_QUERY = [("exclude_utm", "1"), ("status", "active"), ("status", "retired"),
               ("uuids_only", "1")]
LIST_QUERY = [("exclude_utm", "1"), ("status", "active"), ("status", "retired")]
DETAIL_QUERY = [("exclude_utm", "1")]
PATHWAYS_QUERY = [("status", "published"), ("exclude_utm", "1")]  # + page=N

REASONS = {200: "OK", 301: "Moved Permanently", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


def dumps(obj):
    """Compact UTF-8 JSON bytes, as DRF's JSONRenderer writes them."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def http_date(seconds_from_now=0.0):
    """An HTTP-date (for Retry-After) seconds_from_now in the future."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@dataclass
class Request:
    """One request as the fake server saw it.

    kind: "uuids", "program", "pathways", "token", or "other";
    prefix: the site prefix ("" for the default site); uuid / page when the
    kind has one; headers: lower-cased names -> value; time: time.monotonic()
    when the request line was read; status: the status answered (None when
    no status line was sent: hang, reset); fault: the Fault applied or None;
    conn: a number per TCP connection (keep-alive reuse shows as repeats).
    """
    method: str
    path: str
    query: list
    target: str
    headers: dict
    body: bytes
    time: float
    wall_time: float
    conn: int
    client: tuple
    kind: str = "other"
    prefix: str = ""
    uuid: str = None
    page: int = None
    status: int = None
    fault: "Fault" = None

    def query_dict(self):
        """The query as {name: [values]} (like urllib.parse.parse_qs)."""
        out = {}
        for k, v in self.query:
            out.setdefault(k, []).append(v)
        return out


@dataclass
class Fault:
    """A fault rule (see the module docstring).  hits counts applications."""
    match: object
    kind: str = "status"
    status: int = None
    body: object = None
    headers: dict = None
    content_type: str = None
    times: int = None
    framing: str = "length"
    keep: float = 0.5
    chunk_size: int = 16
    interval: float = 0.05
    after_headers: bool = False
    hits: int = 0
    _release: threading.Event = field(default_factory=threading.Event, repr=False)

    KINDS = ("status", "headers", "body", "malformed", "content_type", "hang",
             "trickle", "truncate", "reset")

    def release(self):
        """Let hung requests of this fault go (their connections close)."""
        self._release.set()

    def matches(self, req):
        m = self.match
        if callable(m) and not isinstance(m, (str, re.Pattern)):
            return bool(m(req))
        if isinstance(m, re.Pattern):
            return m.search(req.target) is not None
        if "?" in m:
            path, _, query = m.partition("?")
            return path == req.path and sorted(parse_qsl(query, keep_blank_values=True)) \
                == sorted(req.query)
        return m == req.path


class _Blob:
    """A serialised response body with its gzip form made once, on demand."""

    __slots__ = ("raw", "_gz")

    def __init__(self, raw):
        self.raw = raw
        self._gz = None

    def gz(self):
        if self._gz is None:
            self._gz = gzip.compress(self.raw, compresslevel=1, mtime=0)
        return self._gz


def _body_bytes(body):
    if isinstance(body, _Blob):
        return body.raw
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return dumps(body)


class _Site:
    """One catalogue served under a path prefix, with its serialisation cache."""

    def __init__(self, prefix, catalogue, fake=None):
        self.prefix = prefix
        self.fake = fake
        self.modified = {}      # uuid -> data_modified_timestamp
        self.serial = {}        # uuid -> the bytes it was stamped for
        self.set(catalogue)

    def set(self, catalogue):
        catalogue = catalogue or {"uuids": [], "programs": {}, "pathways": []}
        self.uuids = list(catalogue.get("uuids", []))
        self.programs = dict(catalogue.get("programs", {}))
        self.pathways = list(catalogue.get("pathways", []))
        self.cache = {}
        if self.fake is not None and self.fake.timestamps:
            now = self.fake.now_stamp()
            for uuid, p in self.programs.items():
                body = dumps(p) if isinstance(p, dict) else b""
                if self.serial.get(uuid) != body:
                    self.serial[uuid] = body
                    self.modified[uuid] = now
                if isinstance(p, dict) and isinstance(p.get("data_modified_timestamp"), str):
                    self.modified[uuid] = p["data_modified_timestamp"]

    def served(self, uuid):
        """The detail as served (with its data_modified_timestamp)."""
        p = self.programs[uuid]
        if self.fake is not None and self.fake.timestamps and isinstance(p, dict) \
                and "data_modified_timestamp" not in p and uuid in self.modified:
            p = dict(p, data_modified_timestamp=self.modified[uuid])
        return p


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler, fake):
        self.fake = fake
        self.conn_seq = 0
        self.conns = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):
        """A client that goes away mid-request (the daemon stopped, a
        timeout it enforced) is normal here: say nothing about it."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def get_request(self):
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.conn_lock:
            self.conn_seq += 1
            self.conns.add(sock)
        return sock, addr

    def shutdown_request(self, request):
        with self.conn_lock:
            self.conns.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakedisco/1"

    def setup(self):
        super().setup()
        with self.server.conn_lock:
            self.conn_id = self.server.conn_seq

    def log_message(self, fmt, *args):  # quiet unless verbose
        if self.server.fake.verbose:
            sys.stderr.write("fakedisco: %s\n" % (fmt % args))

    def do_GET(self):
        self.server.fake._handle(self)

    def do_POST(self):
        self.server.fake._handle(self)

    def do_HEAD(self):
        self.server.fake._handle(self)

    do_PUT = do_DELETE = do_PATCH = do_POST

    # -- raw writing ------------------------------------------------------
    def write_head(self, status, headers):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
        # Discovery's clock, the one its timestamps are stamped with (none
        # with send_date False, as behind a proxy that drops the header).
        if self.server.fake.send_date:
            lines.append("Date: %s" % email.utils.formatdate(
                time.time() + self.server.fake.clock_skew, usegmt=True))
        lines.append("Server: fakedisco/1")
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send_all(self, data):
        self.wfile.write(data)
        self.wfile.flush()


class FakeDiscovery:
    """A fake Discovery service; see the module docstring."""

    def __init__(self, catalogue=None, *, sites=None, host="127.0.0.1", port=0,
                 page_size=20, uuids_page_size=None, gzip=True, latency=0.0,
                 require_auth=False, client_id="programs-cached",
                 client_secret="fake-secret", token_expires_in=3600,
                 static_tokens=(), verbose=False, timestamps=False,
                 timestamp_filter=True, clock_skew=0.0):
        self.host, self.port = host, port
        self.page_size = page_size
        self.uuids_page_size = uuids_page_size
        self.gzip = gzip
        self.latency = latency
        self.require_auth = require_auth
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_expires_in = token_expires_in
        self.static_tokens = set(static_tokens)
        self.verbose = verbose
        self.timestamps = timestamps
        self.timestamp_filter = timestamp_filter
        self.clock_skew = clock_skew
        self.send_date = True
        self._lock = threading.RLock()
        self._sites = {}
        self._faults = []
        self._latencies = []
        self._requests = []
        self._tokens = {}            # token -> expiry (monotonic)
        self._token_seq = 0
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        if sites:
            for prefix, cat in sites.items():
                self.set_catalogue(cat, prefix)
        else:
            self.set_catalogue(catalogue, "")

    # -- life cycle ---------------------------------------------------------
    def start(self):
        """Bind (port 0 picks a free one) and serve in a daemon thread."""
        self._stopping.clear()
        self._server = _HTTPServer((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fakedisco", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, release hangs and close every open connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._server.conn_lock:
            conns = list(self._server.conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- URLs -----------------------------------------------------------------
    @property
    def root_url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def oauth_url(self):
        """What goes into [discovery] oauth_url."""
        return self.root_url

    def base_url(self, prefix=""):
        """The catalog API URL of a site: http://127.0.0.1:PORT{prefix}/api/v1."""
        return self.root_url + prefix + API

    def uuids_path(self, prefix=""):
        return prefix + API + "/programs/"

    def program_path(self, uuid, prefix=""):
        return prefix + API + "/programs/%s/" % uuid

    def pathways_path(self, prefix=""):
        return prefix + API + "/pathways/"

    def uuids_target(self, prefix=""):
        """The full path?query of the UUID list (a fault match)."""
        return self.uuids_path(prefix) + "?exclude_utm=1&status=active&status=retired&uuids_only=1"

    def program_target(self, uuid, prefix=""):
        return self.program_path(uuid, prefix) + "?exclude_utm=1"

    def pathways_target(self, page, prefix=""):
        return self.pathways_path(prefix) + "?status=published&exclude_utm=1&page=%d" % page

    token_path = "/oauth2/access_token"

    # -- control API (thread-safe) --------------------------------------------------
    def set_catalogue(self, catalogue, prefix=""):
        """Serve catalogue (a catalog.py dict, or None for an empty one) under
        prefix ("" or "/something"); replaces what that prefix served."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError("prefix must be '' or '/name'")
        with self._lock:
            if prefix in self._sites:
                self._sites[prefix].set(catalogue)
            else:
                self._sites[prefix] = _Site(prefix, catalogue, self)

    def now_stamp(self):
        """Discovery's clock (the host's plus clock_skew), as DRF writes it."""
        t = datetime.fromtimestamp(time.time() + self.clock_skew, tz=timezone.utc)
        return t.isoformat(timespec="microseconds").replace("+00:00", "Z")

    def served_catalogue(self, prefix=""):
        """The catalogue as served: details with their timestamps (for
        reference.py)."""
        with self._lock:
            s = self._sites[prefix]
            return {"uuids": list(s.uuids),
                    "programs": {u: s.served(u) for u in s.programs},
                    "pathways": list(s.pathways)}

    def edit_program(self, uuid, changes, prefix=""):
        """Update one program's fields (a Discovery edit) without
        re-serialising the catalogue; with timestamps its
        data_modified_timestamp is bumped."""
        with self._lock:
            s = self._sites[prefix]
            p = dict(s.programs[uuid])
            p.update(changes)
            if self.timestamps:
                p.pop("data_modified_timestamp", None)
                s.serial[uuid] = dumps(p)
                s.modified[uuid] = self.now_stamp()
            s.programs[uuid] = p
            s.cache.pop(("program", uuid), None)
            s.cache.pop(("uuids",), None)

    def modified(self, uuid, prefix=""):
        """The data_modified_timestamp a program is served with."""
        with self._lock:
            return self._sites[prefix].modified.get(uuid)

    def catalogue(self, prefix=""):
        """The catalogue served under prefix (the live dicts; after changing
        them call set_catalogue again so cached serialisations are dropped)."""
        with self._lock:
            s = self._sites[prefix]
            return {"uuids": s.uuids, "programs": s.programs, "pathways": s.pathways}

    def set_fault(self, match, kind="status", **kw):
        """Add a fault rule and return it (see the module docstring)."""
        if kind not in Fault.KINDS:
            raise ValueError("unknown fault kind %r" % kind)
        if kind == "truncate" and kw.get("framing", "length") not in ("length", "chunked", "close"):
            raise ValueError("framing must be length, chunked or close")
        f = Fault(match=match, kind=kind, **kw)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self):
        """Remove every fault and release any hung request."""
        with self._lock:
            faults, self._faults = self._faults, []
        for f in faults:
            f.release()

    def release_hangs(self):
        with self._lock:
            for f in self._faults:
                if f.kind == "hang":
                    f.release()

    def set_latency(self, seconds, match=None):
        """Delay answers: every request (match None) or those matching
        ``match`` (as for faults; adds up with the global latency)."""
        with self._lock:
            if match is None:
                self.latency = seconds
            else:
                self._latencies = [(m, s) for m, s in self._latencies if m is not match]
                self._latencies.append((match, seconds))

    def clear_latency(self):
        with self._lock:
            self.latency = 0.0
            self._latencies = []

    def expire_tokens(self):
        """Make every issued token invalid (the next API call gets a 401)."""
        with self._lock:
            self._tokens.clear()

    @property
    def tokens(self):
        """The tokens issued so far that are still valid."""
        with self._lock:
            now = time.monotonic()
            return [t for t, exp in self._tokens.items() if exp > now]

    @property
    def requests(self):
        """A snapshot list of every Request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_of(self, kind=None, prefix=None):
        return [r for r in self.requests if (kind is None or r.kind == kind)
                and (prefix is None or r.prefix == prefix)]

    def reset_requests(self):
        with self._lock:
            self._requests = []

    def wait_requests(self, predicate=lambda r: True, count=1, timeout=10.0):
        """Wait until count recorded requests satisfy predicate; return them."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.requests if predicate(r)]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("fakedisco: %d of %d requests after %.1fs"
                                     % (len(got), count, timeout))
            time.sleep(0.01)

    # -- request handling -------------------------------------------------------
    def _handle(self, h):
        t0 = time.monotonic()
        split = urlsplit(h.path)
        try:
            query = parse_qsl(split.query, keep_blank_values=True, strict_parsing=bool(split.query))
            query_error = None
        except ValueError as e:
            query, query_error = [], str(e)
        body = b""
        length = h.headers.get("Content-Length")
        if length:
            try:
                body = h.rfile.read(int(length))
            except (ValueError, OSError):
                h.close_connection = True
                return
        req = Request(method=h.command, path=split.path, query=query, target=h.path,
                      headers={k.lower(): v for k, v in h.headers.items()}, body=body,
                      time=t0, wall_time=time.time(), conn=h.conn_id,
                      client=h.client_address)
        route = self._classify(req)
        with self._lock:
            self._requests.append(req)
            fault = None
            for f in self._faults:
                if (f.times is None or f.hits < f.times) and f.matches(req):
                    f.hits += 1
                    fault = f
                    break
            delay = self.latency + sum(s for m, s in self._latencies
                                       if Fault(match=m).matches(req))
        req.fault = fault
        if delay > 0:
            self._stopping.wait(delay)
        if fault is not None and (fault.kind in ("reset", "status", "body") or
                                  (fault.kind == "hang" and not fault.after_headers)):
            return self._apply_fault(h, req, fault, None)
        status, payload, extra = self._route(h, req, route, query_error)
        if fault is not None:
            return self._apply_fault(h, req, fault, (status, payload, extra))
        self._send(h, req, status, payload, extra)

    def _classify(self, req):
        """Set req.kind/prefix/uuid from the path; return the site or None."""
        path = req.path
        if path == self.token_path or path.endswith(self.token_path):
            req.kind = "token"
            req.prefix = path[:-len(self.token_path)]
            return None
        with self._lock:
            prefixes = sorted(self._sites, key=len, reverse=True)
            for prefix in prefixes:
                if path.startswith(prefix + API + "/"):
                    req.prefix = prefix
                    rest = path[len(prefix + API):]
                    if rest in ("/programs/", "/programs"):
                        req.kind = "uuids"
                        if any(k == "timestamp" for k, _ in req.query):
                            req.kind = "filtered"
                    elif rest in ("/pathways/", "/pathways"):
                        req.kind = "pathways"
                        try:
                            req.page = int(req.query_dict().get("page", ["x"])[0])
                        except ValueError:
                            pass
                    else:
                        m = re.fullmatch(r"/programs/([^/]+)/?", rest)
                        if m:
                            req.kind = "program"
                            req.uuid = m.group(1)
                    return self._sites[prefix]
        return None

    def _route(self, h, req, site, query_error):
        """The normal answer: (status, body bytes or JSON value, headers)."""
        if req.kind == "token":
            return self._token(req)
        if req.kind == "other" or site is None:
            return 404, {"detail": "Not found.", "path": req.path}, []
        if req.method != "GET":
            return 405, {"detail": 'Method "%s" not allowed.' % req.method}, [("Allow", "GET")]
        if not req.path.endswith("/"):
            return 404, {"detail": "Not found.", "error": "path must end with '/'",
                         "path": req.path}, []
        if query_error:
            return 400, {"error": "bad query string: %s" % query_error, "path": req.path}, []
        if self.require_auth:
            auth = req.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            with self._lock:
                ok = token in self.static_tokens or \
                    self._tokens.get(token, 0) > time.monotonic()
            if scheme != "JWT" or not ok:
                return 401, {"detail": "Authentication credentials were not provided."
                             if not auth else "Invalid or expired token.",
                             "got": auth[:16] + ("..." if len(auth) > 16 else "")}, \
                    [("WWW-Authenticate", 'JWT realm="api"')]
        with self._lock:
            if req.kind == "uuids":
                return self._uuids(h, req, site)
            if req.kind == "filtered":
                return self._filtered(h, req, site)
            if req.kind == "program":
                return self._program(req, site)
            return self._pathways(h, req, site)

    @staticmethod
    def _query_problem(got, expected, optional=()):
        """None if the multiset got equals expected (plus optional names at
        most once each); else a message naming what was missing/unexpected."""
        rest = list(got)
        missing = []
        for p in expected:
            if p in rest:
                rest.remove(p)
            else:
                missing.append(p)
        unexpected = []
        seen = set()
        for p in rest:
            if p[0] in optional and p[0] not in seen:
                seen.add(p[0])
            else:
                unexpected.append(p)
        if not missing and not unexpected:
            return None
        parts = []
        if missing:
            parts.append("missing " + "&".join("%s=%s" % p for p in missing))
        if unexpected:
            parts.append("unexpected " + "&".join("%s=%s" % p for p in unexpected))
        return "; ".join(parts)

    def _bad_query(self, req, expected, problem):
        return 400, {"error": "bad query string: " + problem, "path": req.path,
                     "expected": "&".join("%s=%s" % p for p in expected),
                     "got": urlsplit(req.target).query}, []

    def _abs(self, h, path, params):
        host = h.headers.get("Host") or "%s:%d" % (self.host, self.port)
        return "http://%s%s?%s" % (host, quote(path), urlencode(sorted(params), doseq=True))

    def _page_envelope(self, h, req, items, page, size, base_params):
        """A DRF PageNumberPagination body; None if the page does not exist."""
        count = len(items)
        pages = max(1, -(-count // size))
        if page < 1 or page > pages:
            return None
        nxt = self._abs(h, req.path, base_params + [("page", str(page + 1))]) \
            if page < pages else None
        if page == 1:
            prev = None
        elif page == 2:  # DRF drops page=1 from "previous"
            prev = self._abs(h, req.path, base_params)
        else:
            prev = self._abs(h, req.path, base_params + [("page", str(page - 1))])
        return {"count": count, "next": nxt, "previous": prev,
                "results": items[(page - 1) * size:page * size]}

    def _uuids(self, h, req, site):
        if self.uuids_page_size:
            problem = self._query_problem(req.query, UUIDS_QUERY, optional=("page",))
            if problem:
                return self._bad_query(req, UUIDS_QUERY, problem)
            try:
                page = int(req.query_dict().get("page", ["1"])[0])
            except ValueError:
                return 404, {"detail": "Invalid page."}, []
            env = self._page_envelope(h, req, site.uuids, page, self.uuids_page_size,
                                      UUIDS_QUERY)
            if env is None:
                return 404, {"detail": "Invalid page."}, []
            return 200, env, []
        problem = self._query_problem(req.query, UUIDS_QUERY)
        if problem:
            return self._bad_query(req, UUIDS_QUERY, problem)
        key = ("uuids",)
        if key not in site.cache:
            site.cache[key] = _Blob(dumps(site.uuids))
        return 200, site.cache[key], []

    def _filtered(self, h, req, site):
        """The minimal program list filtered by timestamp."""
        if not self.timestamps:
            return self._bad_query(req, UUIDS_QUERY, "timestamp (timestamps=False)")
        stamp = req.query_dict()["timestamp"][0]
        base = LIST_QUERY + [("timestamp", stamp)]
        uuids_only = ("uuids_only", "1") in req.query
        if uuids_only:
            base = base + [("uuids_only", "1")]
        problem = self._query_problem(req.query, base, optional=("page",))
        if problem:
            return self._bad_query(req, base, problem)
        since = None
        if self.timestamp_filter:
            try:
                since = datetime.fromisoformat(stamp)
            except ValueError:
                return 400, {"timestamp": ["Enter a valid date/time."]}, []
            if since.tzinfo is None:
                since = since.replace(tzinfo=timezone.utc)
        items = []
        for uuid in site.uuids:
            p = site.programs.get(uuid)
            ts = site.modified.get(uuid)
            if not isinstance(p, dict) or ts is None:
                continue
            if since is not None and datetime.fromisoformat(ts) < since:
                continue
            items.append({"uuid": uuid, "title": p.get("title"), "type": p.get("type"),
                          "status": p.get("status"), "data_modified_timestamp": ts})
        if uuids_only and not self.uuids_page_size:
            return 200, [i["uuid"] for i in items], []
        if uuids_only:
            items = [i["uuid"] for i in items]
        try:
            page = int(req.query_dict().get("page", ["1"])[0])
        except ValueError:
            return 404, {"detail": "Invalid page."}, []
        env = self._page_envelope(h, req, items, page, self.uuids_page_size if uuids_only
                                  else self.page_size, base)
        if env is None:
            return 404, {"detail": "Invalid page."}, []
        return 200, env, []

    def _program(self, req, site):
        problem = self._query_problem(req.query, DETAIL_QUERY)
        if problem:
            return self._bad_query(req, DETAIL_QUERY, problem)
        uuid = req.uuid
        if uuid not in site.programs and unquote(uuid) in site.programs:
            uuid = unquote(uuid)  # a UUID with characters the client escaped
        if uuid not in site.programs:
            return 404, {"detail": "Not found."}, []
        key = ("program", uuid)
        if key not in site.cache:
            site.cache[key] = _Blob(dumps(site.served(uuid)))
        return 200, site.cache[key], []

    def _pathways(self, h, req, site):
        problem = self._query_problem(req.query, PATHWAYS_QUERY + [("page", str(req.page))]) \
            if req.page is not None else "missing page=N"
        if problem:
            return self._bad_query(req, PATHWAYS_QUERY + [("page", "N")], problem)
        env = self._page_envelope(h, req, site.pathways, req.page, self.page_size,
                                  PATHWAYS_QUERY)
        if env is None:
            return 404, {"detail": "Invalid page."}, []
        return 200, env, []

    def _token(self, req):
        if req.method != "POST":
            return 405, {"detail": 'Method "%s" not allowed.' % req.method}, [("Allow", "POST")]
        ctype = req.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request",
                         "error_description": "content type %r, expected "
                         "application/x-www-form-urlencoded" % ctype}, []
        try:
            form = parse_qs(req.body.decode("utf-8"), keep_blank_values=True,
                            strict_parsing=bool(req.body))
        except (UnicodeDecodeError, ValueError) as e:
            return 400, {"error": "invalid_request", "error_description": str(e)}, []
        one = lambda k: form.get(k, [None])[0] if len(form.get(k, [])) <= 1 else "<repeated>"
        if one("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "grant_type=%r" % one("grant_type")}, []
        if one("token_type") not in ("jwt", "JWT"):
            return 400, {"error": "invalid_request",
                         "error_description": "token_type=%r, expected jwt" % one("token_type")}, []
        if one("client_id") != self.client_id or one("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}, []
        with self._lock:
            self._token_seq += 1
            token = "fake-jwt-%d-%x" % (self._token_seq, int(time.time() * 1000))
            self._tokens[token] = time.monotonic() + self.token_expires_in
        return 200, {"access_token": token, "expires_in": self.token_expires_in,
                     "token_type": "JWT", "scope": "read write"}, []

    # -- sending -------------------------------------------------------------------
    def _finish(self, h, req, status, data, headers):
        req.status = status
        if req.method == "HEAD":
            data = b""
        try:
            h.send_all(h.write_head(status, headers) + data)
        except OSError:
            h.close_connection = True

    def _send(self, h, req, status, payload, extra, content_type="application/json",
              allow_gzip=True):
        data = _body_bytes(payload)
        headers = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
        if allow_gzip and self.gzip and data and \
                "gzip" in req.headers.get("accept-encoding", "").lower():
            data = payload.gz() if isinstance(payload, _Blob) else \
                gzip.compress(data, compresslevel=1, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(data))))
        headers.extend(extra)
        self._finish(h, req, status, data, headers)

    def _apply_fault(self, h, req, f, normal):
        extra = list((f.headers or {}).items())
        ctype = f.content_type or "application/json"
        if f.kind == "status":
            body = f.body if f.body is not None else {"detail": "injected %d" % (f.status or 500)}
            return self._send(h, req, f.status or 500, body, extra, ctype, allow_gzip=False)
        if f.kind == "body":
            return self._send(h, req, f.status or 200, f.body, extra, ctype, allow_gzip=False)
        if f.kind == "reset":
            h.close_connection = True
            try:
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                h.connection.close()
            except OSError:
                pass
            return None
        if f.kind == "hang":
            h.close_connection = True
            if f.after_headers:
                status, payload, nextra = normal if normal else (200, b"", [])
                data = _body_bytes(payload)
                req.status = status
                try:
                    h.send_all(h.write_head(status, [("Content-Type", ctype),
                                                     ("Content-Length", str(len(data)))]
                                            + extra))
                except OSError:
                    return None
            while not (f._release.is_set() or self._stopping.is_set()):
                f._release.wait(0.05)
            return None
        status, payload, nextra = normal
        data = _body_bytes(payload)
        if f.kind == "headers":
            return self._send(h, req, status, payload, nextra + extra)
        if f.kind == "content_type":
            return self._send(h, req, status, payload, nextra + extra,
                              f.content_type or "text/html; charset=utf-8")
        if f.kind == "malformed":
            bad = _body_bytes(f.body) if f.body is not None else data[:-1]
            return self._send(h, req, f.status or status, bad, nextra + extra, ctype,
                              allow_gzip=False)
        if f.kind == "trickle":
            req.status = status
            head = h.write_head(status, [("Content-Type", ctype),
                                         ("Content-Length", str(len(data)))] + extra)
            try:
                h.send_all(head)
                for i in range(0, len(data), f.chunk_size):
                    if self._stopping.wait(f.interval):
                        h.close_connection = True
                        return None
                    h.send_all(data[i:i + f.chunk_size])
            except OSError:
                h.close_connection = True
            return None
        if f.kind == "truncate":
            keep = int(f.keep) if f.keep >= 1 else int(len(data) * f.keep)
            keep = max(0, min(keep, len(data) - 1))
            part = data[:keep]
            req.status = status
            h.close_connection = True
            if f.framing == "length":
                out = h.write_head(status, [("Content-Type", ctype),
                                            ("Content-Length", str(len(data)))] + extra) + part
            elif f.framing == "chunked":
                out = h.write_head(status, [("Content-Type", ctype),
                                            ("Transfer-Encoding", "chunked")] + extra)
                for i in range(0, len(part), 1024):
                    piece = part[i:i + 1024]
                    out += b"%x\r\n%s\r\n" % (len(piece), piece)
            else:
                out = h.write_head(status, [("Content-Type", ctype),
                                            ("Connection", "close")] + extra) + part
            try:
                h.send_all(out)
            except OSError:
                pass
            return None
        raise AssertionError("unhandled fault kind %r" % f.kind)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Serve a catalogue as a fake Discovery.")
    ap.add_argument("--catalogue", required=True, help="catalogue JSON (catalog.py format)")
    ap.add_argument("--site", action="append", default=[], metavar="PREFIX=FILE",
                    help="serve another catalogue under PREFIX (e.g. /b=other.json)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--page-size", type=int, default=20)
    ap.add_argument("--uuids-page-size", type=int, default=None)
    ap.add_argument("--no-gzip", action="store_true")
    ap.add_argument("--require-auth", action="store_true")
    ap.add_argument("--client-id", default="programs-cached")
    ap.add_argument("--client-secret", default="fake-secret")
    ap.add_argument("--token-expires-in", type=int, default=3600)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--timestamps", action="store_true",
                    help="data_modified_timestamp and the timestamp filter")
    a = ap.parse_args(argv)
    sites = {}
    with open(a.catalogue, "rb") as f:
        sites[""] = json.load(f)
    for spec in a.site:
        prefix, _, path = spec.partition("=")
        with open(path, "rb") as f:
            sites[prefix] = json.load(f)
    fake = FakeDiscovery(sites=sites, host=a.host, port=a.port, page_size=a.page_size,
                         uuids_page_size=a.uuids_page_size, gzip=not a.no_gzip,
                         latency=a.latency_ms / 1000.0, require_auth=a.require_auth,
                         client_id=a.client_id, client_secret=a.client_secret,
                         token_expires_in=a.token_expires_in, verbose=a.verbose,
                         timestamps=a.timestamps)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    fake.start()
    print("READY %s" % fake.base_url(), flush=True)
    for prefix in sites:
        if prefix:
            print("SITE %s %s" % (prefix, fake.base_url(prefix)), flush=True)
    while not done.wait(0.1):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
