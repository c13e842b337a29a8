# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the app_release module, telling it which Ansible run on the controller takes the deploy lock."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.rollcall.ops.plugins.module_utils import controller


class ActionModule(ActionBase):
    """With ``action: lock`` and no ``controller`` given, adds ``controller.identity()`` of this run (read here, on
    the controller), so that a lock left by an interrupted run on this controller is known for what it is."""

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("action") == "lock" and not args.get("controller"):
            run = controller.identity()
            if run:
                args["controller"] = run
        result.update(self._execute_module(module_name="rollcall.ops.app_release", module_args=args,
                                           task_vars=task_vars))
        return result
