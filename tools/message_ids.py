#!/usr/bin/python3
"""Rewrite the list of MESSAGE_IDs in man/programs-cached.8 from the events
logged in src/ (test_logfmt checks that the page lists every one).

    /usr/bin/python3 tools/message_ids.py
"""
import glob
import hashlib
import re
from pathlib import Path

top = Path(__file__).resolve().parents[1]
names = set()
for f in glob.glob(str(top / "src" / "*.c")):
    for m in re.finditer(r'log_event\(\s*[^,"]+,\s*"(\w+)"', Path(f).read_text()):
        names.add(m.group(1))
names.discard("debug")
rows = "".join(".It Li %s\n%s\n" % (n, hashlib.blake2b(("programs-cached:" + n).encode(),
                                                         digest_size=16).hexdigest())
               for n in sorted(names))
page = top / "man" / "programs-cached.8"
text = page.read_text()
start = text.index(".Bl -tag -width Ds -compact\n", text.index(".Ss Message IDs"))
start += len(".Bl -tag -width Ds -compact\n")
end = text.index(".El\n", start)
page.write_text(text[:start] + rows + text[end:])
print("%d events" % len(names))
