#!/usr/bin/python3
"""Rewrite the list of events in man/programs-cached.8 (under "Message IDs",
from its .Bl to its .El) with the one the table of events prints
(src/events.c, through build/print-events); test_logfmt fails until the
page is current.

    make man-events
    /usr/bin/python3 tools/man-events.py < list     (what make man-events runs)
"""
import sys
from pathlib import Path

page = Path(__file__).resolve().parents[1] / "man" / "programs-cached.8"
new = sys.stdin.read()
if not new.startswith(".Bl ") or not new.endswith(".El\n"):
    sys.exit("man-events: the list on stdin is not one .Bl ... .El list")
text = page.read_text()
start = text.index("\n.Bl ", text.index("\n.Ss Message IDs\n")) + 1
end = text.index("\n.El\n", start) + len("\n.El\n")
if text[start:end] != new:
    page.write_text(text[:start] + new + text[end:])
    print("man-events: %s rewritten" % page)
