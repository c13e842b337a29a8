"""The integration files run side by side (pytest -n, --dist loadfile): two of them publishing a stack on the same
127.0.0.1 port fail each other with "port is already allocated" (a fresh clone's make test: test_release_edges.py's
new stack took test_health_playbooks.py's 18297). Every literal port a file gives its stacks is its own."""

import collections
import glob
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
# rollcall_app_port=18297, PORT = 18297, drill_app_port=..., ("127.0.0.1", 18297)
LITERAL = re.compile(r"(?:_port\s*=\s*|PORT\s*=\s*|_PORT\s*=\s*|\"127\.0\.0\.1\",\s*)(1[89][0-9]{3})\b")


def test_no_two_integration_files_publish_on_the_same_port():
    owners = collections.defaultdict(set)
    for path in glob.glob(os.path.join(HERE, "..", "integration", "*.py")):
        with open(path, encoding="utf-8") as handle:
            for port in LITERAL.findall(handle.read()):
                owners[int(port)].add(os.path.basename(path))
    shared = {port: sorted(files) for port, files in owners.items() if len(files) > 1}
    assert len(owners) > 10, "the pattern found too few ports to mean anything: %r" % dict(owners)
    assert shared == {}, shared
