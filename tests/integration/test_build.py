"""The Makefile's dependencies, on a copy of the sources built into a
throw-away directory: a header rebuilds only the objects that include it
(the compiler's -MMD -MP files), a change of flags rebuilds everything (the
recorded build/flags), and a package pkg-config cannot find stops the
build with its name, while targets that build nothing never ask."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.harness import REPO, PcdTestCase


class Makefile(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.tree = Path(self.tmpdir) / "tree"
        self.tree.mkdir()
        shutil.copy(REPO / "Makefile", self.tree)
        for d in ("src", "include"):
            shutil.copytree(REPO / d, self.tree / d)
        # Nothing of an outer make (make check's variables, such as BUILD,
        # SAN or WERROR, are in the environment) or of the caller's flags
        # reaches this one.
        self.env = {k: v for k, v in os.environ.items()
                    if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}

    def make(self, *args, ok=True):
        """make -C the copy BUILD=b args...: (returncode, output)."""
        p = subprocess.run(["make", "-C", str(self.tree), "-j2", "BUILD=b",
                            "CFLAGS=-O0", "REVISION=test", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=self.env, timeout=600)
        out = p.stdout.decode("utf-8", "replace")
        if ok:
            self.assertEqual(p.returncode, 0, out)
        return p.returncode, out

    def compiled(self, *args):
        """The objects a make of b/libpcd.a compiles, as a set of names."""
        _, out = self.make("b/libpcd.a", *args)
        return set(re.findall(r"-c -o b/obj/(\w+)\.o", out))

    def touch(self, path):
        """Make path newer than everything built so far."""
        time.sleep(0.01)
        os.utime(self.tree / path)

    def test_dependencies_and_flags(self):
        every = {p.stem for p in (self.tree / "src").glob("*.c")} - {"main"}
        self.assertEqual(self.compiled(), every)
        self.assertEqual(self.compiled(), set())
        # journal.h is included by journal.c and log.c, nothing else.
        self.touch("include/journal.h")
        self.assertEqual(self.compiled(), {"journal", "log"})
        self.assertEqual(self.compiled(), set())
        # Other flags: everything again, then nothing.
        self.assertEqual(self.compiled("CFLAGS=-O1"), every)
        self.assertEqual(self.compiled("CFLAGS=-O1"), set())
        self.assertEqual(self.compiled("CFLAGS=-O1", "WERROR=-Werror"), every)
        self.assertEqual((self.tree / "b" / "flags").read_text().count("-Werror"), 1)

    def test_removed_header_is_no_error(self):
        self.assertTrue(self.compiled())
        # A header journal.c stops including, then removed: -MP's empty
        # rules keep make from stopping at "No rule to make target".
        src = (self.tree / "src" / "journal.c").read_text()
        (self.tree / "include" / "gone.h").write_text("/* gone.h */\n")
        (self.tree / "src" / "journal.c").write_text(
            src.replace('#include "journal.h"', '#include "gone.h"\n#include "journal.h"'))
        self.assertEqual(self.compiled(), {"journal"})
        (self.tree / "src" / "journal.c").write_text(src)
        (self.tree / "include" / "gone.h").unlink()
        self.assertEqual(self.compiled(), {"journal"})

    def test_missing_package_is_named(self):
        rc, out = self.make("PKGS=libcurl no-such-package-pc", ok=False)
        self.assertNotEqual(rc, 0)
        tail = out[-2000:]
        self.assertTrue("pkg-config cannot find no-such-package-pc (no .pc file)" in out, tail)
        self.assertTrue("tools/deps.sh build" in out, tail)
        self.assertFalse("-c -o" in out, tail)
        rc, out = self.make("PKG_CONFIG=/nonexistent/pkg-config", ok=False)
        self.assertNotEqual(rc, 0)
        self.assertTrue("/nonexistent/pkg-config is not installed" in out, out[-2000:])
        # Targets that compile nothing never ask pkg-config.
        self.make("PKGS=no-such-package-pc", "clean")
        self.make("PKGS=no-such-package-pc", "uninstall",
                  "DESTDIR=%s/root" % self.tmpdir)
