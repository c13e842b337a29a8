# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible's linear strategy, its tasks run through Mitogen when Mitogen is installed (docs/performance.md)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rollcall_linear
short_description: Ansible's linear strategy, run through Mitogen when it is installed
description:
  - Runs a play exactly as C(ansible.builtin.linear) does (task by task, every host finishing a task before the
    next).
  - When the C(mitogen) Python package is importable on the controller (it is pinned in C(requirements.txt)), module
    runs go through Mitogen instead of a new Python process and AnsiballZ payload per task; a task then costs about a
    quarter less CPU on the controller and the hosts. Connections Mitogen handles C(local), C(ssh) and C(docker);
    any other connection runs as with the linear strategy.
  - Without Mitogen (a bare C(ansible-core), an execution environment without it) this is the linear strategy,
    unchanged. An ad hoc run (the C(ansible) command, one task) does not use Mitogen either; its start-up costs more
    than the one module run it would speed up.
  - Before the first task it loads the filter and test plugins (Ansible's and this collection's) in the
    controller's main process, so the task workers forked from it find them loaded. Without it every task that
    uses a filter loads them again in its worker (0.1-0.3 s of CPU per host and task; docs/performance.md).
  - A task whose C(when) is false on a host is skipped in the controller's main process, with the same result,
    registered value and output as the linear strategy gives, instead of forking a task worker to find out
    (about 5-10 ms of CPU per host and task; docs/performance.md). The condition sees the variables it sees in the
    worker, the connection variables the play context adds included. The worker still decides for a task with a
    loop or C(delegate_to), and a condition that fails or warns when evaluated.
  - On a controller with fewer than four usable CPUs it turns off Mitogen's CPU pinning, which there put the
    controller, every task worker and every module run on one CPU and kept the other for Mitogen's multiplexer.
  - The project's C(ansible.cfg) selects it; C(ANSIBLE_STRATEGY=linear) turns it off for one run.
author:
  - Rollcall contributors (@rollcall)
version_added: 1.0.0
"""

import contextlib

from ansible import constants as C
from ansible import context
from ansible._internal import _display_utils
from ansible._internal._templating._engine import TemplateEngine
from ansible.executor.task_result import _RawTaskResult
from ansible.plugins.loader import filter_loader, test_loader
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy

# Collections whose filters and tests the playbooks and roles use (ansible.builtin's come with all()).
PRELOAD_COLLECTIONS = ("rollcall.ops",)
_preloaded = False


def preload_template_plugins():
    """Load every filter and test plugin once, in this (the controller's main) process.

    Ansible loads them lazily, when a template first names one, and a task's template is rendered in a worker forked
    for that task and host: whatever the worker loaded is gone when it exits, so every task that used a filter paid
    for loading all of Ansible's filter files and, for a collection's filter, every filter file of that collection
    (each imports its module_utils). Loaded here, before the first worker forks, they are inherited. Idempotent;
    a collection that is not installed is skipped."""
    global _preloaded  # pylint: disable=global-statement
    if _preloaded:
        return
    _preloaded = True
    for loader in (filter_loader, test_loader):
        list(loader.all())
        for collection in PRELOAD_COLLECTIONS:
            # a name no file defines: the lookup still loads every plugin file of the collection; a failure here
            # (the collection missing) costs only the speed-up: the task loads them as before and says why
            with contextlib.suppress(Exception):
                loader.get_with_context(collection + "._rollcall_preload")


def ad_hoc():
    """An ad hoc run (the ``ansible`` command: one task), where neither the preloading nor Mitogen pays off."""
    return bool(context.CLIARGS.get("module_name"))


class _PreloadMixin:
    def run(self, iterator, play_context, *args, **kwargs):
        if not ad_hoc():
            preload_template_plugins()
        return super().run(iterator, play_context, *args, **kwargs)


def skipped_here(task, task_vars, host, play_context, loader):
    """The result a task worker would return for ``task`` on ``host`` when its ``when`` is false, or None when the
    worker must decide (no ``when``, a loop, a delegation, an error or a warning while evaluating it). Evaluated
    here, in the controller's process, a skip costs no forked worker.

    The condition sees what it sees in the worker (TaskExecutor): the task's variables, the search path, and the
    connection variables the play context adds (``ansible_connection`` set by ``-c``, ``ansible_host``, ...)."""
    when = task.when
    if not when or task.loop is not None or task.loop_with or task.delegate_to or task.action in C._ACTION_META:
        return None
    try:
        variables = dict(task_vars)
        search_path = task.get_search_path()
        if loader.get_basedir() not in search_path:
            search_path.append(loader.get_basedir())
        variables["ansible_search_path"] = search_path
        templar = TemplateEngine(loader=loader, variables=variables)
        connection = play_context.set_task_and_variable_override(task=task, variables=variables, templar=templar)
        connection.post_validate(templar=templar)
        if not connection.remote_addr:
            connection.remote_addr = host.address
        connection.update_vars(variables)
        with _display_utils.DeferredWarningContext(variables=variables) as warnings:
            result_context = {}
            if task._resolve_conditional(when, variables, result_context=result_context):
                return None
        if warnings.get_warnings() or warnings.get_deprecation_warnings():
            return None
        result = dict(changed=False, skipped=True, skip_reason="Conditional result was False") | result_context
        task.update_result_no_log(templar, result)
        return result
    except Exception:  # pylint: disable=broad-exception-caught  # the worker evaluates it again and reports it
        return None


class _SkipHereMixin:
    def _queue_task(self, host, task, task_vars, play_context):
        result = skipped_here(task, task_vars, host, play_context, self._loader)
        if result is None:
            return super()._queue_task(host, task, task_vars, play_context)
        self._queued_task_cache[(host.name, task._uuid)] = {
            "host": host, "task": task, "task_vars": task_vars, "play_context": play_context}
        self._tqm.send_callback("v2_runner_on_start", host, task)
        self._final_q.send_task_result(_RawTaskResult(host=host, task=task, return_data=result,
                                                      task_fields=task.dump_attrs()))
        self._pending_results += 1
        return None


try:
    if ad_hoc():
        # One module run: starting Mitogen (importing it, its connection multiplexer, the host's interpreter) costs
        # more than the one AnsiballZ run it would replace (docs/performance.md), so it is not even imported.
        raise ImportError("an ad hoc run does not use Mitogen")
    import ansible_mitogen.strategy
except ImportError:  # Mitogen not installed, or an ad hoc run: the linear strategy as it is (plugins preloaded)
    class StrategyModule(_SkipHereMixin, _PreloadMixin, LinearStrategy):
        pass
else:
    import os

    import ansible_mitogen.affinity
    import ansible_mitogen.planner
    from ansible.collections.list import list_collection_dirs

    # Mitogen pins processes to CPUs. Below four, it keeps one CPU for its connection multiplexer and puts the
    # controller, every task worker and every module run on the others: on two CPUs, all of Ansible's own work on
    # one of them while the multiplexer's CPU stays nearly idle (docs/decisions/mitogen.md). Unpinned, the kernel
    # spreads them: 40 set_fact tasks on 8 hosts 4.5 -> 2.7 s, the fleet bench's re-run deploy on 8 hosts
    # 14.0 -> 9.9 s. From four CPUs up Mitogen's layout (the multiplexer and the controller one CPU each, workers
    # spread over the rest) is kept.
    UNPINNED_BELOW_CPUS = 4

    def usable_cpus():
        """The CPUs this process may run on (a cpuset or taskset can allow fewer than the machine has)."""
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 1

    def unpin_if_small(cpus=None):
        """Replace Mitogen's CPU pinning with its no-op policy on a machine with fewer than UNPINNED_BELOW_CPUS
        usable CPUs; True when it did."""
        if (usable_cpus() if cpus is None else cpus) >= UNPINNED_BELOW_CPUS:
            return False
        ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()
        return True

    _collection_dirs = None

    def _load_collections(invocation):
        """Mitogen's planner, for every module of a collection, lists the installed collections so that the target
        can import them: in a forked task worker that imports each collection's package again (about 0.5 s of CPU
        per module run with the ``ansible`` package's 90-odd collections; docs/performance.md). The list depends
        only on the collection paths, set when the run starts, so it is made once, before the workers fork."""
        invocation._extra_sys_paths.update(_collection_dirs)

    def cache_collection_dirs():
        """List the collections once in this process and give Mitogen's planner the list (idempotent)."""
        global _collection_dirs  # pylint: disable=global-statement
        if _collection_dirs is None:
            _collection_dirs = frozenset(path.decode("utf-8") for path in list_collection_dirs())
            ansible_mitogen.planner._load_collections = _load_collections
        return _collection_dirs

    class StrategyModule(_SkipHereMixin, _PreloadMixin, ansible_mitogen.strategy.StrategyMixin, LinearStrategy):
        def run(self, iterator, play_context, *args, **kwargs):
            cache_collection_dirs()
            unpin_if_small()
            return super().run(iterator, play_context, *args, **kwargs)
