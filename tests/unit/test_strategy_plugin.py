"""plugins/strategy/rollcall_linear.py: the collections Mitogen's planner gives a module run are listed once per
process and are the same list Mitogen would make for every module run.

Each check runs in a Python of its own, set up as ansible-playbook sets itself up (Ansible's collection finder
installed first): in this test process other tests have already imported ``ansible_collections`` without it."""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRELUDE = textwrap.dedent("""
    import importlib.util, json, os, sys
    from ansible import constants as C
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=C.COLLECTIONS_PATHS)._install()
    import ansible_mitogen.planner
    original = ansible_mitogen.planner._load_collections
    spec = importlib.util.spec_from_file_location("rollcall_linear", os.path.join(%r, "plugins", "strategy",
                                                                                  "rollcall_linear.py"))
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)

    class Invocation:
        def __init__(self):
            self._extra_sys_paths = set()
    """ % ROOT)


def run(body):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_cached_list_is_what_mitogen_lists_for_each_module_run():
    result = run("""
        by_mitogen = Invocation()
        original(by_mitogen)
        listed = plugin.cache_collection_dirs()
        cached = Invocation()
        ansible_mitogen.planner._load_collections(cached)
        print(json.dumps({"mitogen": sorted(by_mitogen._extra_sys_paths), "cached": sorted(cached._extra_sys_paths),
                          "listed": sorted(listed),
                          "patched": ansible_mitogen.planner._load_collections is plugin._load_collections}))
    """)
    assert any(path.endswith(os.path.join("community", "docker")) for path in result["mitogen"]), result["mitogen"]
    assert any(path.endswith(os.path.join("rollcall", "ops")) for path in result["mitogen"]), result["mitogen"]
    assert result["patched"] is True
    assert result["cached"] == result["mitogen"] == result["listed"]


def test_the_list_is_made_once():
    result = run("""
        first = plugin.cache_collection_dirs()
        def listed_again():
            raise AssertionError("listed twice")
        plugin.list_collection_dirs = listed_again
        print(json.dumps({"same": plugin.cache_collection_dirs() is first, "size": len(first)}))
    """)
    assert result["same"] is True and result["size"] > 50, result


def test_filters_and_tests_are_loaded_before_the_workers_fork():
    """After preload_template_plugins(), what a task worker (a fork of this process) looks up is already loaded:
    our filters, Ansible's and its tests import nothing more. Without it the same lookups import the filter files."""
    body = """
        import sys
        from ansible.plugins.loader import filter_loader, test_loader

        def lookups():
            before = set(sys.modules)
            found = [filter_loader.get_with_context(name).object is not None
                     for name in ("rollcall.ops.survey_inputs", "rollcall.ops.release_app_version", "to_json",
                                  "ansible.builtin.normpath")]
            found.append(test_loader.get_with_context("ansible.builtin.match").object is not None)
            return found, sorted(set(sys.modules) - before)

        %s
        found, imported = lookups()
        print(json.dumps({"found": found, "imported": imported}))
    """
    preloaded = run(body % "plugin.preload_template_plugins(); plugin.preload_template_plugins()")
    assert all(preloaded["found"]), preloaded
    assert preloaded["imported"] == [], preloaded["imported"]
    cold = run(body % "pass")
    assert all(cold["found"]), cold
    assert any("rollcall.ops.plugins.filter" in name for name in cold["imported"]), cold["imported"]


def test_an_ad_hoc_run_is_told_from_a_playbook_run():
    """The ``ansible`` command (module_name in its arguments) runs without Mitogen and without the preloading; a
    playbook run with both."""
    body = """
        from ansible import context
        before = plugin.ad_hoc()
        import argparse
        context._init_global_context(argparse.Namespace(module_name="rollcall.ops.db_restore", module_args="{}"))
        print(json.dumps({"playbook": before, "ad_hoc": plugin.ad_hoc()}))
    """
    assert run(body) == {"playbook": False, "ad_hoc": True}


def test_an_ad_hoc_run_does_not_import_mitogen():
    """Loaded for the ``ansible`` command, the plugin is the linear strategy and never imports Mitogen (its import
    alone cost ``ansible localhost -m rollcall.ops.db_restore`` about 0.1 s of its 0.9 s)."""
    code = textwrap.dedent("""
        import argparse, importlib.util, json, os, sys
        from ansible import context
        context._init_global_context(argparse.Namespace(module_name="rollcall.ops.db_restore", module_args="{}"))
        spec = importlib.util.spec_from_file_location("rollcall_linear", os.path.join(%r, "plugins", "strategy",
                                                                                      "rollcall_linear.py"))
        plugin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plugin)
        from ansible.plugins.strategy.linear import StrategyModule as Linear
        print(json.dumps({"mitogen": sorted(m for m in sys.modules if "mitogen" in m),
                          "linear": issubclass(plugin.StrategyModule, Linear),
                          "mro": [c.__module__ for c in plugin.StrategyModule.__mro__]}))
    """ % ROOT)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mitogen"] == [], result
    assert result["linear"] is True and not any("mitogen" in m for m in result["mro"]), result
    playbook = run("""
        print(json.dumps({"mro": [c.__module__ for c in plugin.StrategyModule.__mro__]}))
    """)
    assert "ansible_mitogen.strategy" in playbook["mro"], playbook


def test_mitogen_pins_no_cpu_below_four():
    """Below four usable CPUs Mitogen's pinning policy is replaced by its no-op one (on two it put the controller
    and every worker on one CPU); from four up Mitogen's own policy stays."""
    result = run("""
        import ansible_mitogen.affinity
        mitogens = ansible_mitogen.affinity.policy
        kept = plugin.unpin_if_small(4), ansible_mitogen.affinity.policy is mitogens
        replaced = plugin.unpin_if_small(2), type(ansible_mitogen.affinity.policy).__name__
        print(json.dumps({"kept": kept, "replaced": replaced, "pinning": type(mitogens).__name__,
                          "usable": plugin.usable_cpus(), "affinity": len(os.sched_getaffinity(0))}))
    """)
    assert result["pinning"] == "LinuxPolicy", result
    assert result["kept"] == [False, True], result
    assert result["replaced"] == [True, "Policy"], result
    assert result["usable"] == result["affinity"] >= 1, result
