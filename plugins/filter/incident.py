# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filter over plugins/module_utils/incident.py: what incident.yml -e restart=true restarts."""

from ansible.errors import AnsibleFilterError

from ansible_collections.rollcall.ops.plugins.module_utils.incident import not_restartable, restart_plan


def incident_restarts(health_result, present, db_container, app_container, done=None, db_down_elsewhere=False):
    try:
        return restart_plan((health_result or {}).get("checks", []), present, db_container, app_container,
                            done or [], bool(db_down_elsewhere))
    except (AttributeError, TypeError) as exc:
        raise AnsibleFilterError("incident_restarts: %s" % exc) from None


def incident_not_restartable(health_result, present):
    try:
        return not_restartable((health_result or {}).get("checks", []), present)
    except (AttributeError, TypeError) as exc:
        raise AnsibleFilterError("incident_not_restartable: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"incident_restarts": incident_restarts, "incident_not_restartable": incident_not_restartable}
