"""Unit tests keep the host's lock files (backup.live_lock, scratch_lock) in a directory of their own, not in
/run/lock: each test's engine is its own server there, and the files would pile up."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import backup


@pytest.fixture(autouse=True, scope="session")
def _lock_directory(tmp_path_factory):
    backup.LOCK_DIRECTORY = str(tmp_path_factory.mktemp("locks"))
    yield
    backup.LOCK_DIRECTORY = None
