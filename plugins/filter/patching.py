# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/patching.py (issue 13): the playbook's decisions (may this host be
patched now, does it reboot) come from the pure functions there, not from chains of set_fact."""

from ansible.errors import AnsibleFilterError

from ansible_collections.rollcall.ops.plugins.module_utils import patching


def _number(value, what):
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s must be a whole number, not %r" % (what, value)) from None


def patching_precheck(host, health, backup_age_s=None, max_backup_age_s=86400, free_bytes=0, needed_bytes=0,
                      lock_holder=None, is_db=False, backup_planned=False, controller=False, controller_allowed=False,
                      check_mode=False):
    """{checks: [...], stops: "one line, empty when the host may be patched"}."""
    try:
        checks = patching.precheck(host, health, _number(backup_age_s, "backup_age_s"),
                                   _number(max_backup_age_s, "max_backup_age_s"), _number(free_bytes, "free_bytes"),
                                   _number(needed_bytes, "needed_bytes"), lock_holder or None, bool(is_db),
                                   bool(backup_planned), bool(controller), bool(controller_allowed),
                                   bool(check_mode))
    except patching.PatchError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return {"checks": checks, "stops": patching.stops(checks)}


def patching_reboot(policy, needed=False, why=""):
    """{reboot: bool, why: str} after the upgrade, by the reboot policy (auto, never, always)."""
    try:
        reboot, reason = patching.should_reboot(policy, bool(needed), why or "")
    except patching.PatchError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return {"reboot": reboot, "why": reason}


def patching_failure_reason(lines, fallback="the upgrade failed"):
    """Why an apt upgrade failed, in dpkg's and apt's own words (one line)."""
    return patching.failure_reason(lines, fallback)


def patching_pool(lb, host, is_app=False, changes=0, inventory_hosts=(), server=None):
    """What to tell the load balancer about this host before patching it (``pool_plan``): drain, why, errors."""
    return patching.pool_plan(lb if isinstance(lb, dict) else {}, host, bool(is_app), _number(changes, "changes") or 0,
                              list(inventory_hosts or []), server or None)


def patching_pool_entry(plan, drained_at=None, back_at=None, now=None):
    """The report's time out of the pool for one host (``pool_entry``)."""
    return patching.pool_entry(plan, drained_at, back_at, now)


def patching_engine(changes, engine_packages=patching.ENGINE_PACKAGES, is_db=False, backup_ok=True):
    """Does this upgrade touch the Docker engine (``engine_plan``): upgrade, packages, why, errors."""
    return patching.engine_plan(changes or [], engine_packages or [], bool(is_db), bool(backup_ok))


def patching_engine_containers(containers, project, names=()):
    """The names of the project's containers in Docker's container list (``project_containers``)."""
    return patching.project_containers(containers or [], project, names or ())


def patching_engine_precheck(containers):
    """The running containers (Docker's inspect data) an engine restart would leave stopped (``engine_precheck``)."""
    return patching.engine_precheck([c for c in containers or [] if c])


def patching_containers_back(before, running):
    """The containers of ``before`` that do not run now (``containers_back``)."""
    return patching.containers_back(before or [], running or [])


def patching_engine_entry(plan, containers=(), seconds=None, missing=()):
    """The report's view of the Docker engine (``engine_entry``)."""
    return patching.engine_entry(plan, containers or [], seconds, missing or [])


class FilterModule:
    def filters(self):
        return {"patching_precheck": patching_precheck, "patching_reboot": patching_reboot,
                "patching_failure_reason": patching_failure_reason, "patching_pool": patching_pool,
                "patching_pool_entry": patching_pool_entry, "patching_engine": patching_engine,
                "patching_engine_containers": patching_engine_containers,
                "patching_engine_precheck": patching_engine_precheck,
                "patching_containers_back": patching_containers_back, "patching_engine_entry": patching_engine_entry}
