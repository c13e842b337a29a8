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
    unchanged.
  - The project's C(ansible.cfg) selects it; C(ANSIBLE_STRATEGY=linear) turns it off for one run.
author:
  - Rollcall contributors (@rollcall)
version_added: 1.0.0
"""

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy

try:
    import ansible_mitogen.strategy
except ImportError:  # Mitogen not installed: the linear strategy as it is
    StrategyModule = LinearStrategy
else:
    class StrategyModule(ansible_mitogen.strategy.StrategyMixin, LinearStrategy):
        pass
