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
  - A task that only templates in the controller (C(set_fact), C(debug), C(assert), C(fail), C(include_tasks),
    C(include_role); without a loop, delegation, retries, async or timeout) runs in the controller's main process,
    with the same result, instead of in a task worker forked for it.
  - A Jinja template or condition is compiled once per run instead of each time it is rendered (for every host and
    task); the compiled code is shared the way Jinja's own bytecode cache shares it.
  - Mitogen's loading of a task's plugins before a worker forks is done once per action and connection.
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
from ansible.executor.task_executor import TaskExecutor
from ansible.executor.task_result import _RawTaskResult
from ansible.plugins import loader as plugin_loader
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


# How many compiled templates cache_template_compiles keeps (a playbook's distinct template strings; a few MB).
COMPILED_TEMPLATES_KEPT = 4096
_compiled = {}


def cache_template_compiles():
    """Compile a Jinja template or condition once per process instead of every time it is rendered.

    ansible-core compiles a template each time one is rendered: for every host and task, the same strings again (a
    fifth of the controller's time in an 8-host deploy). The compiled Python code depends only on the source, the
    environment's syntax settings and whether backslashes are escaped, as for Jinja's own bytecode cache; each
    environment still builds its own template from the shared code. Task workers forked after a compile inherit
    it. Idempotent; only compiles of a source string are cached (not a file's or a parsed tree's, nor with
    Ansible's template debugging on)."""
    # pylint: disable=import-outside-toplevel,protected-access
    import threading

    import jinja2.environment
    from ansible._internal._templating import _jinja_bits

    environment = _jinja_bits.AnsibleEnvironment
    if getattr(environment.compile, "rollcall_cached", False):
        return
    original, original_expression = environment.compile, environment.compile_expression
    fields = _jinja_bits._TEMPLATE_OVERRIDE_FIELD_NAMES
    escaping = _jinja_bits._TemplateCompileContext
    capture = threading.local()

    def settings(env):
        return (type(env), env.optimized, env.autoescape, env.finalize, tuple(getattr(env, field) for field in fields))

    def keep(key, code):
        if len(_compiled) < COMPILED_TEMPLATES_KEPT:
            _compiled[key] = code

    def compile_once(self, source, name=None, filename=None, raw=False, defer_init=False):
        if (not isinstance(source, str) or name is not None or filename is not None or raw or defer_init
                or self._debuggable_template_source):
            code = original(self, source, name, filename, raw, defer_init)
            if getattr(capture, "expression", None) is not None and not raw:
                capture.code = code  # compile_expression_once's tree
            return code
        current = escaping.current(optional=True)
        key = ("template", str(source), bool(current and current.escape_backslashes)) + settings(self)
        code = _compiled.get(key)
        if code is None:
            code = original(self, source, name, filename, raw, defer_init)
            keep(key, code)
        return code

    def compile_expression_once(self, source, undefined_to_none=True):
        # a condition (when, changed_when, ...): Jinja parses it into a tree and compiles the tree, which
        # compile_once cannot key; its code is kept under the expression's source here instead
        if not isinstance(source, str) or self._debuggable_template_source:
            return original_expression(self, source, undefined_to_none)
        key = ("expression", str(source)) + settings(self)
        code = _compiled.get(key)
        if code is not None:
            template = self.template_class.from_code(self, code, self.make_globals(None), None)
            return jinja2.environment.TemplateExpression(template, undefined_to_none)
        capture.expression, capture.code = source, None
        try:
            expression = original_expression(self, source, undefined_to_none)
        finally:
            code, capture.expression, capture.code = capture.code, None, None
        if code is not None:
            keep(key, code)
        return expression

    compile_once.rollcall_cached = True
    environment.compile = compile_once
    environment.compile_expression = compile_expression_once


def ad_hoc():
    """An ad hoc run (the ``ansible`` command: one task), where neither the preloading nor Mitogen pays off."""
    return bool(context.CLIARGS.get("module_name"))


class _PreloadMixin:
    def run(self, iterator, play_context, *args, **kwargs):
        if not ad_hoc():
            preload_template_plugins()
            cache_template_compiles()
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


# Actions that only template and compare the task's variables in the controller (no connection, no file, no
# module): a task worker forked for them costs more than running them. An include returns only which file or role to
# include; the controller's process loads it anyway.
IN_PROCESS_ACTIONS = frozenset("ansible.builtin." + name for name in (
    "set_fact", "debug", "assert", "fail", "include_tasks", "include_role"))


def runs_here(task):
    """Whether ``task`` runs in the controller's process instead of a forked task worker: one of
    IN_PROCESS_ACTIONS (by its fully qualified name, so a local plugin of the same short name is never taken for it),
    without a loop, delegation, retries, async or timeout (each of which would wait or sleep in the controller, or
    needs the worker's handling of another host)."""
    action = task._resolved_action or task.action  # pylint: disable=protected-access
    return (action in IN_PROCESS_ACTIONS and task.loop is None and not task.loop_with and not task.delegate_to
            and not task.until and task.retries is None and not task.async_val and not task.timeout)


def run_here(task, task_vars, host, play_context, loader, final_q, variable_manager):
    """The result a task worker would return for ``task`` on ``host`` (runs_here(task) is true), computed in this
    process. The worker runs TaskExecutor on its forked copy of the task, which post-validation templates in place;
    here it runs on a copy (the task's blocks included), so the task the other hosts run is left as it was."""
    own = task.copy(exclude_parent=False, exclude_tasks=True)
    result = TaskExecutor(host, own, task_vars, play_context, loader, plugin_loader.get_plugin_loader_namespace(),
                          final_q, variable_manager).run()
    return own, result


class _SkipHereMixin:
    def _queue_task(self, host, task, task_vars, play_context):
        # a task run here evaluates its own condition in TaskExecutor, as the worker would: not a second time first
        if runs_here(task):
            ran, result = run_here(task, task_vars, host, play_context, self._loader, self._final_q,
                                   self._variable_manager)
        else:
            ran, result = task, skipped_here(task, task_vars, host, play_context, self._loader)
        if result is None:
            return super()._queue_task(host, task, task_vars, play_context)
        self._queued_task_cache[(host.name, task._uuid)] = {
            "host": host, "task": task, "task_vars": task_vars, "play_context": play_context}
        self._tqm.send_callback("v2_runner_on_start", host, task)
        self._final_q.send_task_result(_RawTaskResult(host=host, task=task, return_data=result,
                                                      task_fields=ran.dump_attrs()))
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

    _touched = set()

    class _TouchOnceMixin:
        """Mitogen's _queue_task loads the task's module, action and connection plugins in this process before
        each worker forks, so that the worker finds them loaded; once loaded they stay, so it is done once per
        action and connection instead of for every host and task (6 % of the controller's time on 8 hosts)."""

        def _queue_task(self, host, task, task_vars, play_context):
            key = (task.action, play_context.connection)
            if key in _touched:
                return LinearStrategy._queue_task(self, host, task, task_vars, play_context)
            result = super()._queue_task(host, task, task_vars, play_context)
            _touched.add(key)
            return result

    class StrategyModule(_SkipHereMixin, _PreloadMixin, _TouchOnceMixin, ansible_mitogen.strategy.StrategyMixin,
                         LinearStrategy):
        def run(self, iterator, play_context, *args, **kwargs):
            cache_collection_dirs()
            unpin_if_small()
            return super().run(iterator, play_context, *args, **kwargs)
