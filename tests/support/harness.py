"""harness.py: processes for the integration tests (memcached, the daemon) and
PcdTestCase, which cleans up every process a test starts.

    class MyTest(PcdTestCase):
        def test_something(self):
            mc = self.start_memcached()
            fake = self.start_fake(catalog.sample())
            d = self.daemon(self.config(fake, [mc], [("lms.example.com", 1, "")]))
            rc, events, stderr = d.run_once()
            ...

Event dicts are the daemon's JSON log lines, parsed as they are:
{"ts": "...", "level": "info", "event": "refresh_succeeded", <fields>...}.
"""

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from . import reader as _reader

__all__ = ["free_port", "Memcached", "Daemon", "RunResult", "NotifySocket", "JournalSocket",
           "PcdTestCase", "daemon_binary", "REPO", "MEMCACHED"]

REPO = Path(__file__).resolve().parents[2]
MEMCACHED = os.environ.get("PCD_MEMCACHED", "/usr/bin/memcached")

_live = set()  # everything with a process still to reap (removed when stopped)


@atexit.register
def _reap_all():
    for obj in list(_live):
        try:
            obj._kill_quietly()
        except Exception:
            pass


def _die_with_parent():
    """preexec_fn: SIGKILL the child when the test process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _preexec():
    """_die_with_parent, but only from the main thread: PR_SET_PDEATHSIG
    fires when the forking *thread* exits, which would kill a memcached
    restarted from a helper thread."""
    if threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None


def daemon_binary():
    """$PCD_BUILD/programs-cached (PCD_BUILD defaults to build, relative to
    the repository root)."""
    build = Path(os.environ.get("PCD_BUILD", "build"))
    if not build.is_absolute():
        build = REPO / build
    return str(build / "programs-cached")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parse_size(v):
    """Bytes from 65536, "64k", "1m" (memcached's -I units)."""
    if isinstance(v, int):
        return v
    v = str(v).strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(v[-1:], 1)
    return int(v[:-1] if mult != 1 else v) * mult


# --- memcached ----------------------------------------------------------------

class Memcached:
    """A real memcached on 127.0.0.1 (-U 0).  item_size: -I (e.g. "64k").
    start() returns once it answers "version"; restart() keeps the port."""

    def __init__(self, port=None, memory_mb=64, item_size=None, extra_args=(),
                 threads=2, host="127.0.0.1"):
        self.host = host
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.memory_mb = memory_mb
        self.item_size = item_size
        self.extra_args = list(extra_args)
        self.threads = threads
        self.proc = None
        self._log = None

    @property
    def address(self):
        """"host:port", as in [memcached] servers and Django's LOCATION."""
        return "%s:%d" % (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def args(self):
        a = [MEMCACHED, "-l", self.host, "-p", str(self.port), "-U", "0",
             "-m", str(self.memory_mb), "-t", str(self.threads)]
        if self.item_size:
            size = _parse_size(self.item_size)
            a += ["-I", str(size)]
            if size < 1024 * 1024:  # memcached insists slab_chunk_max <= -I
                a += ["-o", "slab_chunk_max=%d" % (size // 2)]
        if os.geteuid() == 0:
            a += ["-u", "root"]
        return a + self.extra_args

    def start(self, timeout=5.0):
        if self.running:
            return self
        for attempt in range(5):
            self._log = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT,
                                         preexec_fn=_preexec())
            _live.add(self)
            if self._wait_ready(timeout):
                return self
            err = self._read_log()
            self._kill_quietly()
            self._reaped()
            if "Address already in use" in err and not self._fixed_port:
                self.port = free_port()
                continue
            if "Address already in use" in err and attempt < 4:
                time.sleep(0.2)  # same port after a restart: let it go
                continue
            raise RuntimeError("memcached did not start: %s" % err.strip())
        raise RuntimeError("memcached: no free port")

    def _read_log(self):
        if not self._log:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.sendall(b"version\r\n")
                    if s.recv(64).startswith(b"VERSION"):
                        return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def stop(self, timeout=5.0):
        """SIGTERM and wait (SIGKILL if it lingers)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reaped()

    def kill9(self):
        """SIGKILL: the cache content is gone, like a crash."""
        self._kill_quietly()
        self._reaped()

    def _reaped(self):
        _live.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, timeout=5.0):
        """Stop (if running) and start again on the same port: empty cache,
        new pid, uptime from zero."""
        self.stop()
        self._fixed_port = True
        return self.start(timeout)

    def _kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # conveniences over reader's raw helpers
    def stats(self, group=None):
        """`stats` (or `stats settings`, ...) as a dict."""
        return _reader.stats(self.host, self.port, group)

    def flush(self):
        _reader.flush_all(self.host, self.port)

    def dump_keys(self):
        return _reader.dump_keys(self.host, self.port)

    def get(self, wire_key):
        return _reader.raw_get(self.host, self.port, wire_key)

    def set(self, wire_key, data, flags=0):
        return _reader.raw_set(self.host, self.port, wire_key, data, flags)

    def delete(self, wire_key):
        return _reader.raw_delete(self.host, self.port, wire_key)


# --- systemd notify socket ----------------------------------------------------------

class NotifySocket:
    """A $NOTIFY_SOCKET (AF_UNIX datagram) that records sd_notify messages.

    path: a filesystem path, or "@name" for a Linux abstract socket (the
    form systemd uses for containers); .path is what NOTIFY_SOCKET gets."""

    def __init__(self, path):
        self.path = str(path)
        self.messages = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # Python binds "\0name" as exactly that many bytes, as systemd does.
        self._sock.bind("\0" + self.path[1:] if self.path.startswith("@") else self.path)
        self._sock.settimeout(0.1)
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="notify")
        self._thread.start()

    def _loop(self):
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                self.messages.append(data.decode("utf-8", "replace"))
                self._cond.notify_all()

    def lines(self, since=0):
        """Every "NAME=value" line of the messages from index since on."""
        with self._cond:
            return [l for m in self.messages[since:] for l in m.split("\n") if l]

    @staticmethod
    def _matches(line, text, prefix):
        return line == text or ((prefix or text.endswith("=")) and line.startswith(text))

    def wait(self, text, timeout=10.0, since=0, prefix=False):
        """Wait for a line equal to text, or starting with it if text ends
        with "=" (e.g. "STATUS=") or prefix is true; return the line."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[since:]:
                    for line in m.split("\n"):
                        if self._matches(line, text, prefix):
                            return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %r from sd_notify within %.1fs; got %r"
                                         % (text, timeout, self.messages[-10:]))
                self._cond.wait(left)

    def index(self, text, since=0, prefix=False):
        """The index of the first message from since on with a line that
        matches text as for wait(), or None."""
        with self._cond:
            for i in range(since, len(self.messages)):
                for line in self.messages[i].split("\n"):
                    if self._matches(line, text, prefix):
                        return i
        return None

    def wait_message(self, text, timeout=10.0, since=0, prefix=False):
        """Like wait(), but return (index, whole message)."""
        self.wait(text, timeout, since, prefix)
        i = self.index(text, since, prefix)
        with self._cond:
            return i, self.messages[i]

    def count(self, text, since=0):
        """How many messages from since on have a line equal to text."""
        with self._cond:
            return sum(1 for m in self.messages[since:] if text in m.split("\n"))

    def close(self):
        self._stop = True
        self._thread.join(1)
        self._sock.close()
        if not self.path.startswith("@"):
            try:
                os.unlink(self.path)
            except OSError:
                pass


class JournalSocket:
    """A stand-in for journald's native socket (PCD_JOURNAL_SOCKET): records
    each datagram as a dict of fields, decoding both the KEY=value form and
    the binary KEY\\n<u64 LE length><bytes> form (JOURNAL_NATIVE_PROTOCOL)."""

    def __init__(self, path):
        self.path = str(path)
        self.entries = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.1)
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="journal")
        self._thread.start()

    @staticmethod
    def parse(data):
        """One datagram as {NAME: str}; ValueError if it is malformed."""
        fields, i = {}, 0
        while i < len(data):
            nl = data.index(b"\n", i)
            line = data[i:nl]
            if b"=" in line:
                name, _, value = line.partition(b"=")
                i = nl + 1
            else:
                name = line
                size = int.from_bytes(data[nl + 1:nl + 9], "little")
                value = data[nl + 9:nl + 9 + size]
                if len(value) != size or data[nl + 9 + size:nl + 10 + size] != b"\n":
                    raise ValueError("bad binary field %r" % name)
                i = nl + 10 + size
            name = name.decode("ascii")
            if not name or not all(c.isupper() or c.isdigit() or c == "_" for c in name) \
                    or name[0] == "_":
                raise ValueError("bad field name %r" % name)
            fields[name] = value.decode("utf-8")
        return fields

    def _loop(self):
        while not self._stop:
            try:
                data = self._sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                self.entries.append(self.parse(data))
                self._cond.notify_all()

    def named(self, event):
        """The entries with EVENT=event."""
        with self._cond:
            return [e for e in self.entries if e.get("EVENT") == event]

    def close(self):
        self._stop = True
        self._thread.join(1)
        self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# --- the daemon ----------------------------------------------------------------------

class RunResult(tuple):
    """(returncode, events, stderr_text) of a finished run; .stdout too."""

    def __new__(cls, returncode, events, stderr, stdout):
        self = super().__new__(cls, (returncode, events, stderr))
        self.stdout = stdout
        return self

    returncode = property(lambda self: self[0])
    events = property(lambda self: self[1])
    stderr = property(lambda self: self[2])

    def named(self, name):
        """The events called name, in order."""
        return [e for e in self[1] if e.get("event") == name]


def parse_events(text):
    """The JSON objects among the lines of text (other lines are skipped)."""
    events = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                events.append(obj)
    return events


def _ini_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ", ".join(_ini_value(x) for x in v)
    return str(v)


class Daemon:
    """programs-cached with a config written from sections:
    {"discovery": {...}, "memcached": {...}, "daemon": {...},
     "site lms.example.com": {...}} (dict order is file order; True/False
    become true/false, lists are joined with ", ").  [daemon] gets
    log_format = json and state_dir = <tmpdir>/state unless given.

    binary: a path or an argv list (default daemon_binary()).  env: extra
    environment (JOURNAL_STREAM, NOTIFY_SOCKET, CREDENTIALS_DIRECTORY are
    removed from the inherited one).  notify=True provides a NOTIFY_SOCKET
    (self.notify, a NotifySocket); notify="@name" an abstract one.
    """

    def __init__(self, tmpdir, config_sections, binary=None, env=None, name="pcd",
                 notify=False):
        self.tmpdir = Path(tmpdir)
        self.name = name
        self.config_path = self.tmpdir / ("%s.conf" % name)
        self.binary = binary or daemon_binary()
        self.env = dict(env or {})
        self.sections = {}
        self.proc = None
        self.events = []
        self.raw_lines = []
        self._stdout = []
        self._cond = threading.Condition()
        self._threads = []
        self._stderr_file = self.tmpdir / ("%s.stderr" % name)
        self.notify = None
        if notify:
            where = notify if isinstance(notify, str) else self.tmpdir / ("%s.notify" % name)
            self.notify = NotifySocket(where)
            self.env.setdefault("NOTIFY_SOCKET", self.notify.path)
        self.write_config(config_sections)

    # -- config ----------------------------------------------------------------
    def write_config(self, sections=None):
        """(Re)write the config file, from sections if given."""
        if sections is not None:
            self.sections = {k: dict(v) for k, v in sections.items()}
        d = self.sections.setdefault("daemon", {})
        d.setdefault("log_format", "json")
        # PCD_TEST_WORKERS=N runs every test with that many parse threads.
        if os.environ.get("PCD_TEST_WORKERS"):
            d.setdefault("workers", os.environ["PCD_TEST_WORKERS"])
        if "state_dir" not in d:
            state = self.tmpdir / ("%s-state" % self.name)
            state.mkdir(mode=0o700, parents=True, exist_ok=True)
            d["state_dir"] = str(state)
        lines = ["# written by tests/support/harness.py"]
        for section, kv in self.sections.items():
            lines.append("")
            lines.append("[%s]" % section)
            for k, v in kv.items():
                if v is None:
                    continue
                lines.append("%s = %s" % (k, _ini_value(v)))
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path

    @property
    def state_dir(self):
        return Path(self.sections["daemon"]["state_dir"])

    def argv(self, *args):
        b = [self.binary] if isinstance(self.binary, str) else list(self.binary)
        return b + ["-c", str(self.config_path)] + [str(a) for a in args]

    def _environ(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY",
                            "WATCHDOG_USEC", "WATCHDOG_PID")}
        env.update(self.env)
        return env

    def _check_binary(self):
        b = self.binary if isinstance(self.binary, str) else self.binary[0]
        if not os.access(b, os.X_OK):
            raise FileNotFoundError("%s is not built (make, or set PCD_BUILD)" % b)

    # -- one-shot runs -----------------------------------------------------------
    def run(self, *args, timeout=60, input=None):
        """Run with args to completion; RunResult (returncode, events, stderr)."""
        self._check_binary()
        p = subprocess.Popen(self.argv(*args), stdin=subprocess.PIPE if input else
                             subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self._environ(),
                             preexec_fn=_preexec())
        try:
            out, err = p.communicate(input=input.encode() if isinstance(input, str) else input,
                                     timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise AssertionError("%s did not finish within %ss; stderr tail:\n%s"
                                 % (" ".join(self.argv(*args)), timeout,
                                    err.decode("utf-8", "replace")[-3000:]))
        stderr = err.decode("utf-8", "replace")
        with open(self._stderr_file, "a", encoding="utf-8") as f:
            f.write("### %s -> %d\n%s" % (" ".join(args), p.returncode, stderr))
        return RunResult(p.returncode, parse_events(stderr), stderr,
                         out.decode("utf-8", "replace"))

    def run_once(self, *args, timeout=60):
        """run("--once", *args)."""
        return self.run("--once", *args, timeout=timeout)

    # -- background --------------------------------------------------------------
    def start(self, *args):
        """Start in the background; events are collected as they come."""
        self._check_binary()
        if self.running:
            raise RuntimeError("daemon already running")
        with self._cond:
            self.events = []
            self.raw_lines = []
            self._stdout = []
        self.proc = subprocess.Popen(self.argv(*args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=self._environ(), preexec_fn=_preexec())
        _live.add(self)
        self._threads = [
            threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True),
            threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def _read_stderr(self, proc):
        with open(self._stderr_file, "a", encoding="utf-8") as log:
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace")
                log.write(line)
                log.flush()
                evs = parse_events(line)
                with self._cond:
                    self.raw_lines.append(line.rstrip("\n"))
                    self.events.extend(evs)
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_stdout(self, proc):
        for raw in proc.stdout:
            with self._cond:
                self._stdout.append(raw.decode("utf-8", "replace"))

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def stderr_text(self):
        with self._cond:
            return "\n".join(self.raw_lines)

    @property
    def stdout_text(self):
        with self._cond:
            return "".join(self._stdout)

    def mark(self):
        """The number of events so far: pass as since= to wait for new ones."""
        with self._cond:
            return len(self.events)

    def events_named(self, name, since=0):
        with self._cond:
            return [e for e in self.events[since:] if e.get("event") == name]

    def wait_event(self, name, timeout=10.0, predicate=None, since=0):
        """The first event called name (from index since) for which
        predicate(event) holds; AssertionError on timeout or if the daemon
        exits first."""
        return self.wait_events(name, 1, timeout, predicate, since)[0]

    def wait_events(self, name, count, timeout=10.0, predicate=None, since=0):
        """The first count such events."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [e for e in self.events[since:] if e.get("event") == name
                       and (predicate is None or predicate(e))]
                if len(got) >= count:
                    return got[:count]
                exited = self.proc is None or (self.proc.poll() is not None and
                                               not any(t.is_alive() for t in self._threads))
                left = deadline - time.monotonic()
                if exited or left <= 0:
                    why = "exited with %s" % (self.proc.returncode if self.proc else None) \
                        if exited else "timed out after %.1fs" % timeout
                    tail = "\n".join(self.raw_lines[-25:])
                    raise AssertionError("waiting for %d %r event(s), got %d: daemon %s; "
                                         "stderr tail:\n%s" % (count, name, len(got), why, tail))
                self._cond.wait(min(left, 0.1))

    def send_signal(self, sig):
        if not self.running:
            raise AssertionError("daemon not running (exit %s)" % (
                self.proc.returncode if self.proc else None))
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, wait, return the exit code (AssertionError, after SIGKILL,
        if it does not exit within timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._join()
                raise AssertionError("daemon did not exit within %ss of SIGTERM" % timeout)
        self._join()
        _live.discard(self)
        return self.proc.returncode

    def wait_exit(self, timeout=10.0):
        """Wait for the daemon to exit by itself; its exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("daemon still running after %ss" % timeout)
        self._join()
        _live.discard(self)
        return self.proc.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._join()
        _live.discard(self)

    def _join(self):
        for t in self._threads:
            t.join(5)
        if self.proc is not None:
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None and not f.closed:
                    f.close()

    def _kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _live.discard(self)

    def close(self):
        """Kill if still running and close the notify socket."""
        self.kill9()
        if self.notify:
            self.notify.close()
            self.notify = None


# --- the test case base ---------------------------------------------------------------

class PcdTestCase(unittest.TestCase):
    """A TestCase with self.tmpdir and helpers whose processes are always
    cleaned up (addCleanup runs even when the test or setUp fails).
    PCD_KEEP_TMP=1 keeps the temporary directories; PCD_TEST_VERBOSE=1
    prints each daemon's stderr at cleanup."""

    def setUp(self):
        super().setUp()
        self.tmpdir = tempfile.mkdtemp(prefix="pcd-test-")
        self.addCleanup(self._remove_tmpdir)

    def _remove_tmpdir(self):
        if os.environ.get("PCD_KEEP_TMP"):
            print("\nkept %s" % self.tmpdir)
            return
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def start_memcached(self, **kw):
        """A started Memcached(**kw), stopped at cleanup."""
        m = Memcached(**kw)
        self.addCleanup(m.kill9)
        return m.start()

    def start_fake(self, catalogue=None, **kw):
        """A started FakeDiscovery(catalogue, **kw), stopped at cleanup."""
        from .fakedisco import FakeDiscovery
        f = FakeDiscovery(catalogue, **kw)
        self.addCleanup(f.stop)
        return f.start()

    def daemon(self, sections, **kw):
        """A Daemon(self.tmpdir, sections, **kw), killed at cleanup."""
        d = Daemon(self.tmpdir, sections, **kw)

        def cleanup():
            if os.environ.get("PCD_TEST_VERBOSE") and d._stderr_file.exists():
                print("\n--- %s stderr ---\n%s" % (d.name, d._stderr_file.read_text()))
            d.close()
            # A ThreadSanitizer build (make check-tsan) reports on stderr.
            text = (d._stderr_file.read_text("utf-8", "replace")
                    if d._stderr_file.exists() else "")
            at = text.find("WARNING: ThreadSanitizer")
            if at >= 0:
                raise AssertionError("%s: ThreadSanitizer:\n%s" % (d.name, text[at:at + 6000]))
        self.addCleanup(cleanup)
        return d

    def reader(self, servers, **kw):
        """A Reader(servers, **kw), closed at cleanup."""
        r = _reader.Reader(servers, **kw)
        self.addCleanup(r.close)
        return r

    def write_file(self, name, text, mode=0o600):
        """Write a file under tmpdir (e.g. a client secret); its path."""
        p = Path(self.tmpdir) / name
        p.write_text(text, encoding="utf-8")
        p.chmod(mode)
        return str(p)

    def config(self, fake, memcacheds, sites, auth=None, discovery=None,
               memcached=None, daemon=None):
        """Config sections for the daemon against fake and memcacheds.
        sites: (domain, site_id, prefix) tuples or {"domain", "site_id",
        "prefix"} dicts, prefix None meaning unconfigured (no
        catalog_api_url).  auth (default fake.require_auth): set oauth_url,
        client_id and client_secret_file; without it (and without a
        client_id or token_file in discovery), auth = none.
        discovery/memcached/daemon: extra or overriding keys (a None value
        drops a key)."""
        if auth is None:
            auth = bool(fake is not None and fake.require_auth)
        disc = {}
        if auth:
            disc["oauth_url"] = fake.oauth_url
            disc["client_id"] = fake.client_id
            disc["client_secret_file"] = self.write_file("client-secret", fake.client_secret)
        disc.update(discovery or {})
        # A Discovery that wants no token is said to be one (auth = none):
        # the daemon refuses a site it has no way to get a token for.
        if not auth and "auth" not in disc and not disc.get("client_id") \
                and not disc.get("token_file"):
            disc["auth"] = "none"
        mem = {"servers": [m.address if hasattr(m, "address") else str(m) for m in memcacheds]}
        mem.update(memcached or {})
        sections = {"discovery": disc, "memcached": mem, "daemon": dict(daemon or {})}
        for s in sites:
            if isinstance(s, dict):
                domain, site_id, prefix = s["domain"], s["site_id"], s.get("prefix")
            else:
                domain, site_id, prefix = s
            sec = {"site_id": site_id}
            if prefix is not None:
                sec["catalog_api_url"] = fake.base_url(prefix)
            sections["site %s" % domain] = sec
        for sec in sections.values():
            for k in [k for k, v in sec.items() if v is None]:
                del sec[k]
        return sections

    def assertCacheMatches(self, reader, expected, msg=None):
        """Fail listing (up to 20) differences between the cache and expected."""
        diffs = reader.compare(expected, limit=20)
        if diffs:
            self.fail((msg + ": " if msg else "") + "%d+ differences:\n  %s"
                      % (len(diffs), "\n  ".join(diffs)))
