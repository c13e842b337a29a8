# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/audit.py: the MariaDB audit of data changes (roles/database audit.yml)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.rollcall.ops.plugins.module_utils.audit import AuditError, plan, prune_sql


def mariadb_audit_plan(query_result, database, audit_database, definer, tables, enabled=True):
    """The statements that bring the audit to the wanted state, from the three answers of audit.yml's question
    (columns, triggers, whether the audit table exists)."""
    try:
        columns, triggers, exists = query_result
        return plan(database, audit_database, definer, tables, columns, triggers,
                    int((exists or [{"n": 0}])[0].get("n") or 0) > 0, enabled=bool(enabled))
    except (AuditError, ValueError, TypeError, KeyError) as exc:
        raise AnsibleFilterError("mariadb_audit_plan: %s" % exc) from None


def mariadb_audit_prune(audit_database, count=False):
    return prune_sql(audit_database, count=count)


class FilterModule:
    def filters(self):
        return {"mariadb_audit_plan": mariadb_audit_plan, "mariadb_audit_prune": mariadb_audit_prune}
