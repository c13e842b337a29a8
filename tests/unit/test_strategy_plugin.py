"""plugins/strategy/rollcall_linear.py: the collections Mitogen's planner gives a module run are listed once per
process and are the same list Mitogen would make for every module run."""

import importlib.util
import os

import ansible_mitogen.planner
import pytest
from ansible import constants as C
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Invocation:
    def __init__(self):
        self._extra_sys_paths = set()


@pytest.fixture()
def plugin(monkeypatch):
    finder = _AnsibleCollectionFinder(paths=C.COLLECTIONS_PATHS)
    finder._install()
    original = ansible_mitogen.planner._load_collections
    spec = importlib.util.spec_from_file_location("rollcall_linear_under_test",
                                                  os.path.join(ROOT, "plugins", "strategy", "rollcall_linear.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module, original
    monkeypatch.setattr(ansible_mitogen.planner, "_load_collections", original)
    finder._remove()


def test_the_cached_list_is_what_mitogen_lists_for_each_module_run(plugin):
    module, original = plugin
    by_mitogen = Invocation()
    original(by_mitogen)
    assert any(path.endswith(os.path.join("community", "docker")) for path in by_mitogen._extra_sys_paths)

    listed = module.cache_collection_dirs()
    assert ansible_mitogen.planner._load_collections is module._load_collections
    cached = Invocation()
    ansible_mitogen.planner._load_collections(cached)
    assert cached._extra_sys_paths == by_mitogen._extra_sys_paths == set(listed)


def test_the_list_is_made_once(plugin, monkeypatch):
    module, _ = plugin
    first = module.cache_collection_dirs()
    monkeypatch.setattr(module, "list_collection_dirs", lambda: pytest.fail("listed twice"))
    assert module.cache_collection_dirs() is first
