"""Make the repository importable as ``ansible_collections.rollcall.ops`` for the tests."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "rollcall", "ops")):
    raise RuntimeError("run `make setup` first: .collections/ansible_collections/rollcall/ops is missing")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
